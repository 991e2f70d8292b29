"""Run one case from a shell, without pytest: the seam a launcher (accelerate, torchrun) uses.

    python -m ftbench.run --checkpoint minilm-l6 --padding dynamic --max-steps 25 \
        --data-dir ../shared/data
    ftbench run --job sft --data-dir ../shared/data --max-steps 6

Options are pytest's `--ftb-*` options without the prefix (one table, `ftbench.options`); those
not given come from the profile's job (default: smoke's). One record is written under
--results-dir/runs/<run>/ and its path printed.
"""

from __future__ import annotations

import argparse
import json
import sys

from ftbench.errors import FtbenchError
from ftbench.options import OPTIONS, overrides_from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for option in OPTIONS:
        if option.pytest_only:
            continue
        kwargs = option.kwargs()
        if option.name == "profile":
            kwargs["default"] = "smoke"
        if option.name == "job":  # one case: one job
            kwargs.update(type=str, default="throughput")
        parser.add_argument(f"--{option.name}", dest=option.dest, **kwargs)
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
    t = result.throughput
    quality = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items() if isinstance(v, float))
    print(
        f"{result.case_id}: {t['train_samples_per_second']:.2f} train samples/s, "
        f"{t['train_tokens_per_second']:.0f} tokens/s ({t['timed_steps']} timed steps), padding "
        f"efficiency {result.padding['efficiency']:.3f}; {quality}"
    )
    print(f"record: {path}")
    return 0


def _run(args: argparse.Namespace):
    from ftbench.data import DataSource
    from ftbench.devices import device_problem, precision_problem
    from ftbench.errors import ConfigError
    from ftbench.methods import method_problem
    from ftbench.profiles import apply_overrides, get_profile
    from ftbench.results import RunStore
    from ftbench.runner import CaseSpec, run
    from ftbench.tasks import get_task

    overrides = overrides_from(lambda dest: getattr(args, dest, None))
    one = {k: overrides.pop(k) for k in ("checkpoints", "paddings", "devices", "precisions",
                                         "methods", "jobs")}  # fmt: skip
    profile = apply_overrides(get_profile(args.ftb_profile), **overrides)
    job = profile.job(one["jobs"] or "throughput")
    method = (one["methods"] or job.methods)[0]
    spec = CaseSpec(
        job=job.name,
        checkpoint=(one["checkpoints"] or job.checkpoints)[0],
        padding=(one["paddings"] or job.paddings)[0],
        device=(one["devices"] or job.devices)[0],
        precision=(one["precisions"] or job.precisions)[0],
        method=method,
        training=job.training_for(method),
        profile=profile.name,
        max_length=job.max_length or profile.max_length,
        lora=job.lora if method != "full" else None,
        task=job.task,
    )
    problem = (
        device_problem(spec.device)
        or precision_problem(spec.device, spec.precision)
        or method_problem(spec.method, spec.device)
        or get_task(spec.task).problem()
        or get_task(spec.task).case_problem(spec)
    )
    if problem:
        raise ConfigError(f"{spec.device}/{spec.precision}/{spec.method}: {problem}")
    if spec.padding not in get_task(spec.task).paddings:
        raise ConfigError(
            f"task {spec.task} has no padding strategy {spec.padding!r}; it has "
            + ", ".join(get_task(spec.task).paddings)
        )
    option = vars(args)
    source = DataSource(
        data_dir=option["ftb_data_dir"],
        train_file=option["ftb_train_file"],
        validation_file=option["ftb_validation_file"],
        test_file=option["ftb_test_file"],
        text_columns=tuple(option["ftb_text_columns"]),
        label_column=option["ftb_label_column"],
        prompt_column=option["ftb_prompt_column"],
        completion_column=option["ftb_completion_column"],
        chosen_column=option["ftb_chosen_column"],
        rejected_column=option["ftb_rejected_column"],
        preference_data=option["ftb_preference_data"],
    )
    result = run(spec, source, report=lambda line: print(line, flush=True), show_progress_bar=False)
    return result, RunStore.create(option["ftb_results_dir"]).write(result)


if __name__ == "__main__":
    sys.exit(main())
