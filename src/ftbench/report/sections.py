"""The report's sections, listed once, and the three ways they are shown.

    from ftbench.report.sections import markdown_report, sections, text, write_report
    print(text(sections(results)))                   # `ftbench report` and the pytest summary
    write_report(results, Path("results/reports/latest"))   # report.md, a CSV each, charts

`sections` decides what a report holds and in which order: the cases, the padding strategies,
hardware, processes (scaling), time to accuracy, online RL. The terminal summary of
`pytest bench/`, `ftbench report` and the markdown report all render that one list, so none of
them can drift from the others.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ftbench.report.charts import scaling_chart, speedup_chart, throughput_chart
from ftbench.report.scaling import SCALING_NOTE, scaling_sections, scaling_table
from ftbench.report.tables import (
    CEILING_NOTE,
    ROLLOUT_NOTE,
    case_blocks,
    cases_table,
    cost_curves,
    format_hardware_table,
    hardware_table,
    is_padding_comparison,
    padding_sections,
    padding_table,
    rollout_table,
    time_to_accuracy_table,
)

if TYPE_CHECKING:
    import pandas as pd

    from ftbench.core.record import CaseResult


@dataclass
class Section:
    """One part of the report: its data (the CSV) and how people see it (titled blocks)."""

    name: str  # the CSV's file name
    title: str
    summary: str  # the terminal's line under the title
    data: pd.DataFrame
    blocks: list[tuple[str, pd.DataFrame]]  # (sub-title or "", formatted table)
    note: str = ""  # the markdown report's explanation
    lines: list[str] = field(default_factory=list)  # further lines, e.g. how curves were fitted
    lines_title: str = ""
    floatfmt: str = ""


def sections(
    results: list[CaseResult],
    outcomes: list[str | None] | None = None,
    statuses: list[str | None] | None = None,
) -> list[Section]:
    """Every non-empty section for these records, in the report's order; `outcomes` (pytest's)
    and `statuses` (the gate's), one per record, fill the cases table's first columns."""
    cases = cases_table(results, outcomes, statuses)
    if len({r.run_id for r in results}) > 1:
        cases.insert(1, "run", [r.run_id or "-" for r in results])
    compared = [r for r in results if is_padding_comparison(r)]
    padding = padding_table(compared)
    hardware = hardware_table(compared)
    scaling = scaling_table(results)
    tta = time_to_accuracy_table(results)
    rollout = rollout_table(results)
    curves = cost_curves(compared)
    made = [
        Section("cases", "Cases", "one row per measurement", cases, case_blocks(cases)),
        Section(
            "padding",
            "Padding strategies",
            "median and IQR over timed rounds; speedup over static padding; ceiling: no padding "
            "at all, from the cost curve measured in this run (`ftbench report` explains every "
            "column)",
            padding,
            padding_sections(padding),
            note=CEILING_NOTE,
            lines=[f"{title}: {how}" for title, how in curves],
            lines_title="Cost curves (step time at each padded length, and the fit):",
        ),
        Section(
            "hardware",
            "Hardware",
            "samples/s of each padding strategy, by device",
            hardware,
            [("", format_hardware_table(hardware))] if not hardware.empty else [],
        ),
        Section(
            "scaling",
            "Processes (scaling)",
            SCALING_NOTE,
            scaling,
            scaling_sections(scaling),
            note=SCALING_NOTE,
        ),
        Section(
            "time_to_accuracy",
            "Time to accuracy",
            "training time only, evaluation left out",
            tta,
            [("", tta)],
            floatfmt=".4g",
        ),
        Section(
            "rollout",
            "Online RL: generation against the optimizer step",
            "timed steps",
            rollout,
            [("", rollout)],
            note=ROLLOUT_NOTE,
        ),
    ]
    return [s for s in made if not s.data.empty]


def text(shown: list[Section]) -> str:
    """The sections as terminal text: a title line, then each block under its sub-title."""
    parts = []
    for section in shown:
        lines = [f"{section.title.lower()}: {section.summary}"]
        for title, table in section.blocks:
            lines += [title] if title else []
            lines += [_text(table, section.floatfmt), ""]
        lines += [section.lines_title] if section.lines else []
        lines += [f"- {line}" for line in section.lines]
        parts.append("\n".join(lines).rstrip())
    return "\n\n".join(parts)


def markdown_report(results: list[CaseResult], charts: list[Path] = ()) -> str:
    """The report as markdown; chart links only for the charts given (none in a CI summary)."""
    lines = ["# ftbench report", ""]
    if charts:  # the headline first: what each padding strategy gained, against its ceiling
        lines += ["## Charts", ""] + [f"![{p.stem}]({p.name})" for p in charts] + [""]
    for section in sections(results):
        lines += [f"## {section.title}", ""] + ([section.note, ""] if section.note else [])
        for title, table in section.blocks:
            lines += ([f"### {title}", ""] if title else []) + [_markdown(table, section.floatfmt)]
            lines += [""]
        if section.lines:
            lines += [section.lines_title, ""] + [f"- {line}" for line in section.lines] + [""]
    return "\n".join(lines)


def write_report(results: list[CaseResult], out: Path) -> list[Path]:
    """Markdown, CSV and PNG charts in `out`, all made first and then moved in together."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".ftbench-report-", dir=out))
    try:
        final = []
        for path in _render(results, staging):
            target = out / path.name
            path.replace(target)
            final.append(target)
        return final
    finally:
        for leftover in staging.glob("*"):
            leftover.unlink()
        staging.rmdir()


def _render(results: list[CaseResult], directory: Path) -> list[Path]:
    made, charts = [], []
    for section in sections(results):
        path = directory / f"{section.name}.csv"
        section.data.to_csv(path, index=False)
        made.append(path)
        if section.name == "padding":
            charts.append(throughput_chart(section.data, directory / "throughput_by_padding.png"))
            if section.data["speedup"].notna().any():
                charts.append(speedup_chart(section.data, directory / "speedup_vs_ceiling.png"))
        elif section.name == "scaling":
            charts.append(scaling_chart(section.data, directory / "scaling_by_processes.png"))
    path = directory / "report.md"
    path.write_text(markdown_report(results, charts), encoding="utf-8")
    return [*made, *charts, path]


def _text(table: pd.DataFrame, floatfmt: str = "") -> str:
    """A plain table, cells as formatted: numbers right-aligned, text left."""
    shown = table.astype(object).where(table.notna(), "-")
    if floatfmt:
        shown = shown.map(lambda v: format(v, floatfmt) if isinstance(v, float) else v)
    align = ["right" if _numeric(shown[c]) else "left" for c in shown.columns]
    return shown.to_markdown(index=False, tablefmt="simple", disable_numparse=True, colalign=align)


def _numeric(column: pd.Series) -> bool:
    """Every cell a number ("1.00x", "31%" and "-" count), so the column aligns right."""
    cells = [str(v).rstrip("x%") for v in column if str(v) != "-"]
    try:
        return bool(cells) and all(float(c) == float(c) for c in cells)
    except ValueError:
        return False


def _markdown(table: pd.DataFrame, floatfmt: str = "") -> str:
    if table.empty:
        return ""
    shown = table.astype(object).where(table.notna(), "-")
    if floatfmt:
        return shown.to_markdown(index=False, floatfmt=floatfmt)
    # Cells are already formatted: "8.00" stays "8.00", not the number 8.
    return shown.to_markdown(index=False, disable_numparse=True)
