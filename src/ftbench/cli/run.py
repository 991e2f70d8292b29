"""Run one case from a shell, without pytest: the seam a launcher (accelerate, torchrun) uses.

    python -m ftbench.cli.run --checkpoint minilm-l6 --padding dynamic --max-steps 25 \
        --data-dir ../shared/data
    ftbench run --job sft --data-dir ../shared/data --max-steps 6
    ftbench run --processes 2 --padding dynamic --data-dir ../shared/data    # accelerate launch

Options are pytest's `--ftb-*` options without the prefix (one table, `ftbench.config.options`);
those not given come from the profile's job (default: smoke's). One record is written under
--results-dir/runs/<run>/ and its path printed. With `--processes N` (N > 1) this command
launches itself under `accelerate launch` (ftbench.measure.launch): each process gets the
case's spec (`--case-spec`), and rank 0 writes the record with every rank's timings.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ftbench.config.build import case_spec, data_source
from ftbench.config.options import OPTIONS, overrides_from
from ftbench.config.profiles import apply_overrides, get_profile
from ftbench.core.errors import ConfigError, FtbenchError
from ftbench.core.files import write_json_atomic
from ftbench.core.record import RunStore
from ftbench.core.spec import CaseSpec
from ftbench.env.devices import device_problem, precision_problem
from ftbench.env.distributed import world
from ftbench.measure.launch import (
    DATA_OPTIONS,
    error_path,
    launch_case,
    option_args,
    processes_problem,
    read_spec,
)
from ftbench.measure.runner import run
from ftbench.stack.methods import method_problem
from ftbench.tasks import get_task, register_from

if TYPE_CHECKING:
    from ftbench.core.spec import CaseSpec


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
    # What a launcher's parent (ftbench.measure.launch) hands each process: the case, and
    # where rank 0 writes its record. Not options of the table: a user never types them.
    parser.add_argument("--case-spec", metavar="FILE", help=argparse.SUPPRESS)
    parser.add_argument("--record", metavar="FILE", help=argparse.SUPPRESS)
    # The padding ceiling's step-cost curve, timed in this process after the case trains, the
    # same way and in the same process as its timed steps (issue 20).
    parser.add_argument("--cost-curve", action="store_true", help=argparse.SUPPRESS)
    # A re-measure: train and time as before, then stop; the gate keeps the first quality.
    parser.add_argument("--no-evaluation-after", action="store_true", help=argparse.SUPPRESS)
    # A task the parent knows from a conftest or a module it imported, not an entry point.
    parser.add_argument("--task-class", action="append", default=[], help=argparse.SUPPRESS)


def main(argv: list[str] | None = None, args: argparse.Namespace | None = None) -> int:
    if args is None:
        parser = argparse.ArgumentParser(prog="python -m ftbench.cli.run", description=__doc__)
        add_arguments(parser)
        args = parser.parse_args(argv)
    try:
        result, path = _run(args)
    except FtbenchError as exc:
        print(f"ftbench: {exc}", file=sys.stderr)
        if args.record:  # a launched case: the parent raises the same error (launch.py)
            write_json_atomic(error_path(args.record), {"error": type(exc).__name__,
                                                         "message": str(exc)})  # fmt: skip
        return 2
    if result is None:  # a rank other than 0, or another machine's launch: no record here
        return 0
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
    """(result, record path); (None, None) where this process keeps no record."""
    for where in args.task_class:
        register_from(where)
    if args.case_spec:  # one process of a launched case (ftbench.measure.launch)
        spec = read_spec(args.case_spec)
        rank, size = world()
        if size != spec.processes:
            raise ConfigError(f"{spec.case_id}: launched as {size} processes, not {spec.processes}")
        result = run(spec, data_source(_option(args)), report=_report if rank == 0 else None,
                     show_progress_bar=False, cost_curve=args.cost_curve,
                     progress_every=args.ftb_progress_every,
                     evaluate_after=not args.no_evaluation_after)  # fmt: skip
        if rank != 0 or not args.record:  # only rank 0 writes, with every rank's timings
            return None, None
        return result, write_json_atomic(args.record, result.to_record())
    spec = _spec(args)
    if spec.processes > 1:  # the parent: launch this same case in N processes
        problem = processes_problem(
            spec.processes, spec.device, spec.training.batch_size, args.ftb_accelerate_config
        )
        if problem:
            raise ConfigError(f"--processes {spec.processes}: {problem}")
        result = launch_case(
            spec,
            option_args(_option(args), DATA_OPTIONS),
            config_file=args.ftb_accelerate_config,
            timeout=args.ftb_launch_timeout,
            echo=_report,
        )
    else:
        result = run(spec, data_source(_option(args)), report=_report, show_progress_bar=False,
                     progress_every=args.ftb_progress_every)  # fmt: skip
    if result is None:  # another machine's rank 0 keeps the record
        return None, None
    return result, RunStore.create(args.ftb_results_dir).write(result)


def _option(args: argparse.Namespace) -> Callable[[str], Any]:
    """An option's value by its dest, as `config.getoption` gives it under pytest."""
    return lambda dest: getattr(args, dest, None)


def _report(line: str) -> None:
    print(f"[ftbench] {line}", flush=True)


def _spec(args: argparse.Namespace) -> CaseSpec:
    """The one case the options select: the first value of each axis, the profile's job."""
    overrides = overrides_from(_option(args))
    one = {k: overrides.pop(k) for k in ("checkpoints", "paddings", "devices", "precisions",
                                         "methods", "jobs", "processes")}  # fmt: skip
    profile = apply_overrides(get_profile(args.ftb_profile), **overrides)
    job = profile.job(one["jobs"] or "throughput")
    spec = case_spec(
        job,
        profile,
        checkpoint=(one["checkpoints"] or job.checkpoints)[0],
        padding=(one["paddings"] or job.paddings)[0],
        device=(one["devices"] or job.devices)[0],
        precision=(one["precisions"] or job.precisions)[0],
        method=(one["methods"] or job.methods)[0],
        processes=(one["processes"] or job.processes)[0],
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
    return spec


if __name__ == "__main__":
    sys.exit(main())
