"""The terminal summary of `pytest bench/`: the report's sections, then notes and what happened
to the baselines. Built from records alone (`ftbench.report.sections`).

    write_summary(terminalreporter, results, outcomes, statuses, floors_off, records, lines)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftbench.report.sections import sections, text

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
    reporter.section("ftbench results")
    records_only = [r for _, r in results]
    shown = sections(
        records_only,
        [outcomes.get(n) for n, _ in results],
        [statuses.get(r.case_id) for r in records_only],
    )
    for line in text(shown).splitlines():
        reporter.write_line(line, red="REGRESSED" in line)
    for result in records_only:
        for note in result.notes:
            reporter.write_line(f"note: {result.case_id}: {note}")
    for job, why in floors_off.items():
        reporter.write_line(f"note: {job}: floors not checked ({why})")
    if records is not None:
        reporter.write_line(f"records: {records}")
    for line in baseline_report:
        reporter.write_line(line, red="NOT" in line, bold=True)
