"""The `ftbench` command.

ftbench run --padding dynamic --data-dir ../shared/data/glue     # one case, no pytest
ftbench compare A B                                              # B against A, gated
ftbench report RUN_DIR [RUN_DIR ...] --out DIR                   # tables and charts
ftbench history results/runs --metric train_samples_per_second   # a metric over runs
ftbench options > docs/options.md                                # every option, as markdown
ftbench jobs [PATH ...] [--profile full] [--json]                 # the jobs pytest collects
ftbench init [DIR] --task dpo                                    # a starter job file and CI
ftbench comment RUN_DIR --baselines base/results/baselines       # a pull request's comment
ftbench baselines merge shards/*/baselines --into results/baselines   # sharded recording
ftbench baselines record ci/*/results/runs --into results/baselines   # rates over many runs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ftbench.cli import init, jobs, run
from ftbench.config.options import options_markdown
from ftbench.core.errors import FtbenchError
from ftbench.core.files import write_text_atomic
from ftbench.core.record import CaseResult, load_runs, run_directories
from ftbench.judge.baselines import BaselineStore
from ftbench.judge.merge import merge_shards
from ftbench.report import compare
from ftbench.report.comment import case_verdicts, comment
from ftbench.report.history import (
    format_history,
    history_rows,
    history_table,
    lasting_steps,
    write_history,
)
from ftbench.report.invariants import (
    invariants_chart,
    invariants_markdown,
    invariants_text,
    read_invariants,
)
from ftbench.report.sections import markdown_report, sections, text, write_report


def build_parser() -> argparse.ArgumentParser:

    parser = argparse.ArgumentParser(prog="ftbench", description="Fine-tuning benchmarks.")
    commands = parser.add_subparsers(dest="command", required=True)
    run.add_arguments(commands.add_parser("run", help="run one case and write its record"))
    compare.add_arguments(
        commands.add_parser("compare", help="compare two run directories or baseline files")
    )
    report = commands.add_parser("report", help="padding, hardware and time-to-accuracy tables")
    report.add_argument(
        "runs", nargs="+", type=Path, help="run directories, or a folder of them (results/runs)"
    )
    report.add_argument("--out", type=Path, default=Path("results/reports/latest"))
    report.add_argument(
        "--summary",
        type=Path,
        metavar="FILE",
        help="also append the markdown tables (no charts) to FILE, e.g. $GITHUB_STEP_SUMMARY",
    )
    history = commands.add_parser("history", help="a metric over runs, against its baseline")
    history.add_argument(
        "runs", nargs="+", type=Path, help="run directories, or a folder of them (results/runs)"
    )
    history.add_argument(
        "--metric",
        default="train_samples_per_second",
        help="a gated metric (train_samples_per_second, eval_accuracy, eval_f1, "
        "peak_memory_bytes) or a record field such as throughput.train_tokens_per_second",
    )
    history.add_argument("--case", metavar="TEXT", help="only cases whose id contains TEXT")
    history.add_argument("--order", choices=("date", "commit"), default="date")
    history.add_argument("--baselines", type=Path, default=Path("results/baselines"))
    history.add_argument("--out", type=Path, default=Path("results/reports/history"))
    commands.add_parser("options", help="every option as a markdown table (docs/options.md)")
    jobs.add_arguments(
        commands.add_parser("jobs", help="the jobs pytest would collect, their matrices, sources")
    )
    init.add_arguments(
        commands.add_parser("init", help="write a starter job file and CI workflow into a repo")
    )
    note = commands.add_parser("comment", help="a pull-request comment: regressions vs the base")
    note.add_argument(
        "runs", nargs="+", type=Path, help="run directories, or a folder of them (results/runs)"
    )
    note.add_argument(
        "--baselines",
        type=Path,
        default=Path("results/baselines"),
        help="the baselines to judge against: the merge base's, not the pull request's",
    )
    note.add_argument("--run-url", help="a link to the run, its records and report")
    note.add_argument("--out", type=Path, help="write the comment here (default: print it)")
    baselines = commands.add_parser(
        "baselines", help="baseline files: merge shards, or record from several runs"
    )
    actions = baselines.add_subparsers(dest="action", required=True)
    merge = actions.add_parser("merge", help="merge baselines recorded in shards into one folder")
    merge.add_argument("shards", nargs="+", type=Path, help="the shards' baseline directories")
    merge.add_argument("--into", type=Path, default=Path("results/baselines"))
    record = actions.add_parser(
        "record",
        help="record baselines from several runs' records: each rate's median over all of them",
    )
    record.add_argument("runs", nargs="+", type=Path, help="run directories, or folders of them")
    record.add_argument("--into", type=Path, default=Path("results/baselines"))
    record.add_argument(
        "--job", help="only these jobs' cases, comma-separated (default: every case in the runs)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:

    args = build_parser().parse_args(argv)
    if args.command == "run":
        return run.main(args=args)
    if args.command == "compare":
        return compare.main(args=args)
    if args.command == "history":
        return history_main(args)
    if args.command == "options":
        print(options_markdown(), end="")
        return 0
    if args.command == "jobs":
        return jobs.main(args)
    if args.command == "init":
        return init.main(args)
    if args.command == "comment":
        return comment_main(args)
    if args.command == "baselines" and args.action == "record":
        return record_main(args.runs, args.into, args.job)
    if args.command == "baselines":
        return merge_main(args.shards, args.into)
    return report_main(args.runs, args.out, args.summary)


def _records(command: str, runs: list[Path], quiet: bool = False) -> list[CaseResult] | None:
    """The records in `runs`; None, having said why (unless `quiet`), when there are none."""
    try:
        results, notes = load_runs(runs)
    except FtbenchError as exc:
        if not quiet:
            print(f"ftbench {command}: {exc}", file=sys.stderr)
        return None
    for note in notes:
        print(f"ftbench {command}: {note}", file=sys.stderr)
    return results


def report_main(runs: list[Path], out: Path, summary: Path | None = None) -> int:
    pairs = [row for run in run_directories(runs) for row in read_invariants(run)]
    # A run of an invariants job alone has pairs and no case records: report those.
    results = _records("report", runs, quiet=bool(pairs))
    if results is None and not pairs:
        return 2
    results = results or []
    if results:
        print(text(sections(results)))
    try:
        written = write_report(results, out) if results else []
        written += _invariants_report(pairs, Path(out), standalone=not results)
    except OSError as exc:
        print(f"ftbench report: can't write to {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if summary is not None:
        try:
            with open(summary, "a", encoding="utf-8") as handle:
                if results:
                    handle.write(markdown_report(results) + "\n")
                handle.write(invariants_markdown(pairs))
        except OSError as exc:
            print(f"ftbench report: can't write to {summary}: {exc.strerror or exc}",
                  file=sys.stderr)  # fmt: skip
            return 2
    print()
    for path in written:
        print(f"wrote {path}")
    return 0


def _invariants_report(pairs: list[dict], out: Path, standalone: bool) -> list[Path]:
    """The runs' invariant pairs: printed, charted, and a section of report.md."""
    if not pairs:
        return []
    print("\n" + "\n".join(invariants_text(pairs)))
    out.mkdir(parents=True, exist_ok=True)
    chart = invariants_chart(pairs, out / "invariants.png")
    report = out / "report.md"
    head = "# ftbench report\n\n" if standalone else "\n"
    with open(report, "w" if standalone else "a", encoding="utf-8") as handle:
        handle.write(head + invariants_markdown(pairs, chart))
    return [p for p in (chart, report if standalone else None) if p is not None]


def history_main(args: argparse.Namespace) -> int:
    results = _records("history", args.runs)
    if results is None:
        return 2
    rows = history_rows(results, args.metric, args.case, args.baselines, args.order)
    if not rows:
        print(f"ftbench history: no case matches {args.case!r}", file=sys.stderr)
        return 2
    if all(row["value"] is None for row in rows):
        print(f"ftbench history: no record has {args.metric!r}", file=sys.stderr)
        return 2
    print(format_history(history_table(rows)).to_string(index=False))
    for line in lasting_steps(rows):
        print(f"\n{line}")
    try:
        written = write_history(rows, args.metric, args.out)
    except OSError as exc:
        print(f"ftbench history: can't write to {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print()
    for path in written:
        print(f"wrote {path}")
    return 0


def comment_main(args: argparse.Namespace) -> int:
    results = _records("comment", args.runs)
    if results is None:
        return 2
    text = comment(case_verdicts(results, BaselineStore(args.baselines)), args.run_url)
    if args.out is None:
        print(text, end="")
    else:
        write_text_atomic(args.out, text)
    return 0


def merge_main(shards: list[Path], into: Path) -> int:
    try:
        written, conflicts = merge_shards(into, shards)
    except FtbenchError as exc:
        print(f"ftbench baselines merge: {exc}", file=sys.stderr)
        return 2
    for conflict in conflicts:
        print(f"ftbench baselines merge: conflict: {conflict}", file=sys.stderr)
    if conflicts:
        print("ftbench baselines merge: nothing written", file=sys.stderr)
        return 1
    for line in written:
        print(line)
    return 0


def record_main(runs: list[Path], into: Path, jobs: str | None = None) -> int:
    """Baselines from several runs: quality per seed, each rate pooled (ftbench.judge.pooling)."""
    from ftbench.judge.pooling import pooled_entries

    missing = [str(run) for run in runs if not Path(run).is_dir()]
    if missing:
        print(f"ftbench baselines record: no such directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    # Only the runs with case records: an invariants job's run has pairs, and no numbers.
    runs = [run for run in run_directories(runs) if any(run.glob("*.json"))]
    results = _records("baselines record", runs)
    if results is None:
        return 2
    if jobs:
        wanted = {name.strip() for name in jobs.split(",")}
        results = [r for r in results if r.job in wanted]
        if not results:
            print(f"ftbench baselines record: no records of {jobs}", file=sys.stderr)
            return 2
    try:
        entries, notes = pooled_entries(results)
    except FtbenchError as exc:
        print(f"ftbench baselines record: {exc}; nothing written", file=sys.stderr)
        return 1  # a conflict, as merge's
    for line in notes:
        print(line)
    store = BaselineStore(into)
    for (hardware_id, profile), cases in entries.items():
        path = store.update(hardware_id, profile, cases)
        print(f"baselines updated: {path} ({len(cases)} case(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
