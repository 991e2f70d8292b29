"""A metric over runs, in date or commit order, against its baseline's band: which change did it.

    ftbench history results/runs --metric train_samples_per_second --out results/reports/history
    ftbench history results/runs --case "throughput[minilm-l6-static" --order commit

One row per run and case: the value (re-measures folded in: the last one counts, as in the
gate; seeds averaged), the run's date, commit, torch and transformers, what changed since the
run before (versions, device), and the baseline the gate would use: its centre, the bound
(`baselines.bound_for`, with the profile's tolerances) and a verdict. Where the value stepped
(`ftbench.report.steps`), the run says so, and the step after which it left the band and stayed
out is named with its commit and versions. Written as markdown, CSV and a PNG with one facet
per case.
"""

from __future__ import annotations

import functools
import statistics
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftbench.config.build import GatePolicy
from ftbench.config.profiles import known_profile
from ftbench.core.errors import FtbenchError
from ftbench.core.formats import fmt_rate
from ftbench.judge.baselines import BaselineStore, bound_for, gated_values
from ftbench.report.charts import history_chart
from ftbench.report.steps import lasting_step, steps
from ftbench.report.tables import fold_remeasures
from ftbench.tasks import default_tolerances, tolerances_with

if TYPE_CHECKING:
    import pandas as pd

    from ftbench.core.record import CaseResult

WATCHED = ("python", "torch", "transformers", "datasets", "accelerate", "peft")


def metric_value(result: CaseResult, metric: str) -> float | None:
    """A gated metric by name (`train_samples_per_second`, `eval_accuracy`, ...) or a record
    field by dotted path (`throughput.train_tokens_per_second`)."""
    if metric in default_tolerances():
        return gated_values(result).get(metric)
    value: Any = result.to_record()
    for part in metric.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _versions(result: CaseResult) -> dict[str, Any]:
    env = result.environment or {}
    versions = dict(env.get("versions") or {})
    return {
        **{k: versions.get(k) for k in WATCHED if versions.get(k)},
        "cuda": env.get("cuda"),
        "driver": env.get("cuda_driver"),
        "device": env.get("device_name"),
    }


def _changes(now: dict[str, Any], before: dict[str, Any] | None) -> str:
    if before is None:
        return "-"
    changed = [
        f"{k} {before.get(k)}→{now.get(k)}"
        for k in now.keys() | before.keys()
        if now.get(k) != before.get(k)
    ]
    return ", ".join(sorted(changed)) or "-"


def _commit_rank(cwd: Path | None = None) -> dict[str, int]:
    """Commits of the current checkout, oldest first; empty outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-list", "--topo-order", "--reverse", "HEAD"],
            cwd=cwd, capture_output=True, text=True, timeout=20, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return {}
    return {commit: i for i, commit in enumerate(out.split())}


def run_order(results: list[CaseResult], order: str = "date") -> list[str]:
    """Run ids by date (their earliest record), or by commit (git history; unknown ones last)."""
    dates: dict[str, str] = {}
    commits: dict[str, str] = {}
    for r in results:
        run = r.run_id or ""
        dates[run] = min(dates.get(run, r.created_at or ""), r.created_at or "")
        commits[run] = (r.environment.get("git") or {}).get("commit") or ""
    if order == "commit":
        rank = _commit_rank()
        return sorted(dates, key=lambda run: (rank.get(commits[run], len(rank)), dates[run]))
    return sorted(dates, key=lambda run: dates[run])


def history_rows(
    results: list[CaseResult],
    metric: str = "train_samples_per_second",
    case: str | None = None,
    baselines_dir: Path | str = "results/baselines",
    order: str = "date",
) -> list[dict[str, Any]]:
    per_run_case: dict[tuple[str, str], list[CaseResult]] = {}
    for result, _ in fold_remeasures(results):
        if case and case not in result.case_id:
            continue
        per_run_case.setdefault((result.run_id or "", result.case_id), []).append(result)
    bands = _Bands(Path(baselines_dir))
    rows, previous = [], {}
    for run in run_order(results, order):
        for case_id in sorted({c for r, c in per_run_case if r == run}):
            measured = per_run_case[(run, case_id)]
            values = [v for v in (metric_value(r, metric) for r in measured) if v is not None]
            first = measured[0]
            git = first.environment.get("git") or {}
            versions = _versions(first)
            value = statistics.fmean(values) if values else None
            center, bound, how = bands.band(first, metric)
            commit = (git.get("commit") or "")[:10] + ("+dirty" if git.get("dirty") else "")
            rows.append(
                {
                    "case": case_id,
                    "run": run,
                    "date": (first.created_at or "")[:16].replace("T", " "),
                    "commit": commit,
                    "torch": versions.get("torch") or "-",
                    "transformers": versions.get("transformers") or "-",
                    "value": value,
                    "baseline": center,
                    "bound": bound,
                    "verdict": _verdict(value, bound, bands.direction(metric)),
                    "changed": _changes(versions, previous.get(case_id)),
                    "bound from": how,
                }
            )
            previous[case_id] = versions
    for row in rows:
        row["label"] = f"{row['date'][:10]} {row['commit'][:7]}".strip() or row["run"]
    mark_steps(rows, bands.direction(metric))
    return rows


def mark_steps(rows: list[dict[str, Any]], direction: str) -> None:
    """Each case's steps (`ftbench.report.steps`) in its rows' "step" column; the step after
    which the value left the gate's band and stayed out reads "left the band"."""
    for row in rows:
        row["step"] = ""
    for case_id in dict.fromkeys(row["case"] for row in rows):
        mine = [row for row in rows if row["case"] == case_id and row["value"] is not None]
        values = [row["value"] for row in mine]
        bounds = [row["bound"] for row in mine if row["bound"] is not None]
        lasting = lasting_step(values, bounds[-1] if bounds else None, direction)
        for step in steps(values):
            text = f"step {fmt_rate(step.before)} -> {fmt_rate(step.after)} ({step.change:+.1%})"
            if step == lasting:
                text += ", left the band and stayed out"
            mine[step.index]["step"] = text


def lasting_steps(rows: list[dict[str, Any]]) -> list[str]:
    """One line per case that left its band for good: the run, commit and versions it did."""
    return [
        f"{row['case']}: {row['step']} at run {row['run']} (commit {row['commit'] or '?'}, "
        f"torch {row['torch']}, transformers {row['transformers']}"
        + (f"; changed: {row['changed']}" if row["changed"] else "")
        + ")"
        for row in rows
        if row["step"].endswith("stayed out")
    ]


def _verdict(value: float | None, bound: float | None, direction: str) -> str:
    if value is None:
        return "no value"
    if bound is None:
        return "no baseline"
    passed = value >= bound if direction == "higher" else value <= bound
    return "within bound" if passed else "REGRESSED"


class _Bands:
    """The gate's bound for a record's case from its baseline file, read once per file."""

    def __init__(self, root: Path) -> None:
        self.store = BaselineStore(root)

    def direction(self, metric: str) -> str:
        tolerance = default_tolerances().get(metric)
        return tolerance.direction if tolerance else "higher"

    def band(self, result: CaseResult, metric: str) -> tuple[float | None, float | None, str]:
        hardware_id = result.environment.get("hardware_id")
        if not hardware_id or not result.profile:
            return None, None, "-"
        try:
            entry = self.store.entry(hardware_id, result.profile, result.case_id)
        except FtbenchError as exc:  # an unreadable baseline file: say so, keep going
            return None, None, str(exc)
        stats = ((entry or {}).get("metrics") or {}).get(metric)
        tolerance = _tolerances(result.profile, result.job).get(metric)
        if not stats or tolerance is None:
            return None, None, "-"
        bound, how = bound_for(stats, tolerance)
        center = stats["median"] if tolerance.relative is not None else stats["mean"]
        return center, bound, f"{self.store.path(hardware_id, result.profile)}: {how}"


@functools.cache  # per profile and job: a job file's is looked up on disk
def _tolerances(profile: str, job: str) -> dict[str, Any]:
    """The gate's tolerances for a profile's job: the profile's and the job's own where they
    name them, else the defaults."""
    known = known_profile(profile)
    if known is None:
        return default_tolerances()
    own = next((j for j in known.jobs if j.name == job), None)
    return GatePolicy(tolerances=tolerances_with(known.tolerances)).for_job(own).tolerances


def history_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(rows)


def format_history(table: pd.DataFrame) -> pd.DataFrame:
    columns = ["case", "date", "commit", "torch", "transformers", "value", "baseline", "bound",
               "verdict", "changed", "step"]  # fmt: skip
    shown = table[columns].copy()
    for column in ("value", "baseline", "bound"):
        shown[column] = shown[column].map(fmt_rate)
    return shown


def write_history(rows: list[dict[str, Any]], metric: str, out: Path) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = history_table(rows)
    csv = out / "history.csv"
    table.to_csv(csv, index=False)
    chart = history_chart(table, metric, out / "history.png")
    shown = format_history(table).astype(object).where(lambda t: t.notna(), "-")
    bounds = sorted({r["bound from"] for r in rows if r["bound from"] != "-"})
    lines = [
        f"# {metric} over runs",
        "",
        "Runs in order; the baseline is the gate's centre (median for relative tolerances, "
        "mean otherwise) and the bound the gate applies; *changed* lists versions that differ "
        "from the run before.",
        "",
        shown.to_markdown(index=False, disable_numparse=True),
        "",
        *(f"- **{line}**" for line in lasting_steps(rows)),
        *(f"- {how}" for how in bounds),
        "",
        f"![{chart.stem}]({chart.name})",
        "",
    ]
    markdown = out / "history.md"
    markdown.write_text("\n".join(lines), encoding="utf-8")
    return [csv, chart, markdown]
