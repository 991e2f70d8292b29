"""Run one case from a shell, without pytest: the seam a launcher (accelerate, torchrun) uses.

    python -m ftbench.run --checkpoint minilm-l6 --padding dynamic --max-steps 25 \
        --data-dir ../shared/data/glue
    ftbench run --job finetune --padding bucketed --data-dir ../shared/data/glue

Options not given come from the profile's job (default: smoke's). One record is written under
--results-dir/runs/<run>/ and its path printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

from ftbench.errors import FtbenchError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="smoke", help="profile to take defaults from")
    parser.add_argument(
        "--job", default="throughput", help="job of the profile: finetune, throughput"
    )
    parser.add_argument("--checkpoint", help="Hub id, directory, minilm-l6 or <arch>@random")
    parser.add_argument("--padding", help="static, dynamic, bucketed or dynamic-x8")
    parser.add_argument("--device", help="cpu, cuda or mps")
    parser.add_argument("--precision", help="fp32, bf16 or fp16")
    parser.add_argument("--method", help="full, lora or qlora (LoRA settings from the profile)")
    parser.add_argument("--epochs", type=float)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--data-dir", help="GLUE directory holding MRPC/train.tsv")
    parser.add_argument("--train-file")
    parser.add_argument("--validation-file")
    parser.add_argument("--text-columns", default="sentence1,sentence2")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--json", action="store_true", help="print the whole record as JSON")


def main(argv: list[str] | None = None, args: argparse.Namespace | None = None) -> int:
    if args is None:
        parser = argparse.ArgumentParser(prog="python -m ftbench.run", description=__doc__)
        add_arguments(parser)
        args = parser.parse_args(argv)
    try:
        result, path = _run(args)
    except FtbenchError as exc:
        print(f"ftbench: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_record(), indent=2, default=str))
    t, m = result.throughput, result.metrics
    print(
        f"{result.case_id}: {t['train_samples_per_second']:.2f} train samples/s "
        f"({t['timed_steps']} timed steps), padding efficiency "
        f"{result.padding['efficiency']:.3f}, accuracy {m['eval_accuracy']}, F1 {m['eval_f1']}"
    )
    print(f"record: {path}")
    return 0


def _run(args: argparse.Namespace):
    from ftbench.data import DataSource
    from ftbench.devices import device_problem, precision_problem
    from ftbench.errors import ConfigError
    from ftbench.methods import method_problem
    from ftbench.profiles import Training, get_profile
    from ftbench.results import RunStore
    from ftbench.runner import CaseSpec, run

    job = get_profile(args.profile).job(args.job)
    overrides = {
        "epochs": args.epochs,
        "max_steps": args.max_steps,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
    }
    method = args.method or job.methods[0]
    training: Training = replace(
        job.training_for(method), **{k: v for k, v in overrides.items() if v is not None}
    )
    spec = CaseSpec(
        job=job.name,
        checkpoint=args.checkpoint or job.checkpoints[0],
        padding=args.padding or job.paddings[0],
        device=args.device or job.devices[0],
        precision=args.precision or job.precisions[0],
        method=method,
        training=training,
        profile=args.profile,
        lora=job.lora if method != "full" else None,
    )
    problem = (
        device_problem(spec.device)
        or precision_problem(spec.device, spec.precision)
        or method_problem(spec.method, spec.device)
    )
    if problem:
        raise ConfigError(f"{spec.device}/{spec.precision}/{spec.method}: {problem}")
    columns = tuple(c.strip() for c in args.text_columns.split(","))
    if len(columns) != 2:
        raise ConfigError(f"--text-columns needs two names, A,B; got {args.text_columns!r}")
    source = DataSource(
        data_dir=args.data_dir,
        train_file=args.train_file,
        validation_file=args.validation_file,
        text_columns=columns,
        label_column=args.label_column,
    )
    result = run(spec, source, report=lambda line: print(line, flush=True), show_progress_bar=False)
    return result, RunStore.create(args.results_dir).write(result)


if __name__ == "__main__":
    sys.exit(main())
