"""The terminal summary of `pytest bench/`: the cases, the padding strategies, time to accuracy,
notes, and what happened to the baselines. Built from records alone (`ftbench.report.tables`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ftbench.core.record import CaseResult


def write_summary(
    reporter: Any,
    results: list[tuple[str, CaseResult]],
    outcomes: dict[str, str],
    statuses: dict[str, str],
    floors_off: dict[str, str],
    records: Path | None,
    baseline_report: list[str],
) -> None:
    """Write the summary through pytest's terminal reporter."""
    if not results:
        for line in baseline_report:
            reporter.write_line(line, red=True, bold=True)
        return
    from ftbench.report.tables import (
        cases_table,
        format_padding_table,
        is_padding_comparison,
        padding_table,
        rollout_table,
        time_to_accuracy_table,
    )

    reporter.section("ftbench results")
    records_only = [r for _, r in results]
    table = cases_table(
        records_only,
        [outcomes.get(n) for n, _ in results],
        [statuses.get(r.case_id) for r in records_only],
    )
    for line in table.to_string(index=False).splitlines():
        reporter.write_line(line, red="REGRESSED" in line)
    padding = [r for r in records_only if is_padding_comparison(r)]
    if padding:
        reporter.write_line("")
        reporter.write_line(
            "padding strategies (median and IQR over timed rounds; speedup over static "
            "padding; ceiling: no padding at all, from the cost curve measured in this run; "
            "`ftbench report` explains every column):"
        )
        for line in format_padding_table(padding_table(padding)).splitlines():
            reporter.write_line(line)
    from ftbench.report.scaling import SCALING_NOTE, format_scaling_table, scaling_table

    scaling = scaling_table(records_only)
    if not scaling.empty:
        _section(reporter, f"processes (scaling): {SCALING_NOTE}", format_scaling_table(scaling))
    tta = time_to_accuracy_table(records_only)
    if not tta.empty:
        title = "time to accuracy (training time only, evaluation left out):"
        _section(reporter, title, tta.to_string(index=False))
    rollout = rollout_table(records_only)
    if not rollout.empty:
        title = "online RL, timed steps (generation against the optimizer step):"
        _section(reporter, title, rollout.to_string(index=False))
    for result in records_only:
        for note in result.notes:
            reporter.write_line(f"note: {result.case_id}: {note}")
    for job, why in floors_off.items():
        reporter.write_line(f"note: {job}: floors not checked ({why})")
    if records is not None:
        reporter.write_line(f"records: {records}")
    for line in baseline_report:
        reporter.write_line(line, red="NOT" in line, bold=True)


def _section(reporter: Any, title: str, text: str) -> None:
    reporter.write_line("")
    reporter.write_line(title)
    for line in text.splitlines():
        reporter.write_line(line)
