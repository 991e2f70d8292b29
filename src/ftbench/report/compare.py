"""`ftbench compare A B`: B's numbers against A's, each with its change and gate verdict.

    ftbench compare results/baselines/<hardware-id>/smoke.json results/runs/<run>
    ftbench compare results/runs/<before> results/runs/<after> --csv changes.csv

A and B are run directories or baseline files; A plays the baseline. The exit status is 1
when a metric of B crosses its gate, so CI can run it on stored results; 2 on unusable input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ftbench.core.errors import FtbenchError
from ftbench.core.files import write_text_atomic
from ftbench.core.record import CaseResult, read_run
from ftbench.judge.baselines import entry_from_results, gate, read_baseline_file
from ftbench.tasks import parse_tolerance, tolerances_with


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("baseline", type=Path, help="A: run directory or baseline file")
    parser.add_argument("candidate", type=Path, help="B: run directory or baseline file")
    parser.add_argument(
        "--tolerance", action="append", default=[], metavar="METRIC:RULE",
        help="e.g. train_samples_per_second:15%% or eval_accuracy:k=2,min=0.02",
    )  # fmt: skip
    parser.add_argument("--csv", type=Path, help="also write the table as CSV")


def load_side(path: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Baseline-style entries keyed by case id, from a baseline file or a run directory."""
    if path.is_file():
        return read_baseline_file(path)["cases"], []
    records, skipped = read_run(path)
    by_case: dict[str, list[CaseResult]] = {}
    for record in records:
        by_case.setdefault(record["case_id"], []).append(CaseResult.from_record(record))
    return {case: entry_from_results(results) for case, results in by_case.items()}, skipped


def compare(
    baseline: dict[str, dict[str, Any]],
    candidate: dict[str, dict[str, Any]],
    tolerances: dict[str, Any],
) -> Any:
    """One row per case and metric present on both sides."""
    import pandas as pd

    rows = []
    for case_id in sorted(set(baseline) & set(candidate)):
        for metric, stats in sorted(candidate[case_id].get("metrics", {}).items()):
            # The candidate's central value, in the statistic its gate is made from.
            value = stats["median"] if tolerances[metric].relative is not None else stats["mean"]
            for verdict in gate(case_id, {metric: value}, baseline[case_id], tolerances):
                before = baseline[case_id]["metrics"][metric]
                reference = (
                    before["median"] if tolerances[metric].relative is not None else before["mean"]
                )
                rows.append(
                    {
                        "case": case_id,
                        "metric": metric,
                        "A": reference,
                        "B": value,
                        "change": (value - reference) / reference if reference else None,
                        "bound": verdict.bound,
                        "verdict": "ok" if verdict.passed else "REGRESSED",
                    }
                )
    return pd.DataFrame(rows, columns=["case", "metric", "A", "B", "change", "bound", "verdict"])


def main(argv: list[str] | None = None, args: argparse.Namespace | None = None) -> int:
    if args is None:
        parser = argparse.ArgumentParser(prog="ftbench compare", description=__doc__)
        add_arguments(parser)
        args = parser.parse_args(argv)
    try:
        overrides: dict[str, Any] = {}
        for text in args.tolerance:
            overrides.update(parse_tolerance(text))
        tolerances = tolerances_with(overrides)
        (a, skipped_a), (b, skipped_b) = load_side(args.baseline), load_side(args.candidate)
    except (FtbenchError, ValueError) as exc:
        print(f"ftbench compare: {exc}", file=sys.stderr)
        return 2
    for note in skipped_a + skipped_b:
        print(f"ftbench compare: {note}", file=sys.stderr)
    table = compare(a, b, tolerances)
    if table.empty:
        print("ftbench compare: no case and metric in common", file=sys.stderr)
        return 2
    shown = table.assign(change=table["change"].map(lambda c: "-" if c is None else f"{c:+.1%}"))
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    only = sorted(set(a) ^ set(b))
    if only:
        print(f"\nin one side only: {', '.join(only)}")
    if args.csv:
        write_text_atomic(args.csv, table.to_csv(index=False))
    return 1 if (table["verdict"] == "REGRESSED").any() else 0


if __name__ == "__main__":
    sys.exit(main())
