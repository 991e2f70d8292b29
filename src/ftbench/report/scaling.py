"""The scaling table: N processes against one, from records alone.

    from ftbench.report.scaling import scaling_sections, scaling_table
    for title, block in scaling_sections(scaling_table(results)):
        print(title, block, sep="\n")

Each case of N processes beside the one-process case it is paired with in the same run
(`ftbench.judge.scaling`, which also holds the efficiency and the quality check).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ftbench.core.errors import ConfigError
from ftbench.core.formats import fmt_rate, fmt_ratio, fmt_share, short_checkpoint
from ftbench.core.record import batches_of, device_label, method_of, processes_of, task_of
from ftbench.judge.scaling import efficiency, loss_ratio, one_process_of, pair_key
from ftbench.report.tables import fold_remeasures
from ftbench.tasks import get_task

if TYPE_CHECKING:
    import pandas as pd

    from ftbench.core.record import CaseResult


# -- the table -----------------------------------------------------------------------------------


def scaling_rows(results: list[CaseResult]) -> list[dict[str, Any]]:
    """One row per case and number of processes, in the groups that have N > 1."""
    folded = [r for r, _ in fold_remeasures(results)]
    wanted = {pair_key(r) for r in folded if processes_of(r) > 1}
    rows = []
    for r in folded:
        if pair_key(r) not in wanted:
            continue
        n = processes_of(r)
        one = one_process_of(r, folded) if n > 1 else r
        t, d = r.throughput or {}, r.distributed or {}
        per_device, global_batch = batches_of(r)
        samples, tokens = t.get("train_samples_per_second"), t.get("train_tokens_per_second")
        rows.append(
            {
                "run": r.run_id or "",
                "device": device_label(r),
                "task": task_of(r),
                "job": r.job,
                "checkpoint": r.axes.get("checkpoint") or "",
                "padding": r.axes.get("padding") or "",
                "precision": r.axes.get("precision") or "",
                "method": method_of(r),
                "seed": r.training.get("seed"),
                "processes": n,
                "machines": d.get("machines", 1),
                "backend": d.get("backend") or ("-" if n == 1 else "?"),
                "per-device batch": per_device,
                "global batch": global_batch,
                "samples/s": samples,
                "samples/s per process": samples / n if samples else None,
                "tokens/s": tokens,
                "tokens/s per process": tokens / n if tokens else None,
                "efficiency": efficiency(r, one) if n > 1 else (1.0 if samples else None),
                "quality": _quality(r),
                "vs 1 process": _quality_change(r, one) if n > 1 else "",
                "eval loss ÷ 1 process": loss_ratio(r, one) if n > 1 else None,
                "accelerate config": d.get("accelerate_config") or "",
            }
        )
    keys = ("run", "device", "task", "job", "checkpoint", "padding", "precision", "method", "seed")
    rows.sort(key=lambda row: (*(str(row[k]) for k in keys), row["processes"]))
    return rows


def _primary_metric(result: CaseResult) -> tuple[str, str] | None:
    try:
        metric = get_task(task_of(result)).metrics[0]
    except (ConfigError, IndexError):
        return None
    return metric.name, metric.column


def _quality(result: CaseResult) -> str:
    primary = _primary_metric(result)
    value = result.metrics.get(primary[0]) if primary else None
    if not result.accuracy_meaningful or value is None:
        return "-"
    return f"{primary[1]} {value:.4f}"


def _quality_change(result: CaseResult, one: CaseResult | None) -> str:
    if one is None:
        return "no 1-process case in this run"
    primary = _primary_metric(result)
    mine = result.metrics.get(primary[0]) if primary else None
    theirs = one.metrics.get(primary[0]) if primary else None
    if mine is None or theirs is None or not result.accuracy_meaningful:
        return "-"
    return f"{mine - theirs:+.4f}"


def scaling_table(results: list[CaseResult]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(scaling_rows(results))


SCALING_NOTE = (
    "Each case of N processes keeps the job's global batch (per-device batch = batch ÷ N), so "
    "its optimizer steps match the one-process case. Samples/s and tokens/s count every rank "
    "(global) over the slowest rank's timed window; per process is that ÷ N. *Efficiency*: "
    "samples/s with N ÷ (N × samples/s with one), both from the same run. *vs 1 process*: the "
    "change in the task's first quality metric; *eval loss ÷ 1 process* should be about 1x."
)


def scaling_sections(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The scaling table for people: one block per run, device, job, checkpoint, padding,
    precision and method, rows by number of processes."""
    if table.empty:
        return []
    rates = ("samples/s", "samples/s per process", "tokens/s", "tokens/s per process")
    shown = table.assign(
        **{column: table[column].map(fmt_rate) for column in rates},
        efficiency=table["efficiency"].map(fmt_share),
        **{"eval loss ÷ 1 process": table["eval loss ÷ 1 process"].map(fmt_ratio)},
    )
    columns = ["processes", "backend", "per-device batch", "global batch", *rates,
               "efficiency", "quality", "vs 1 process", "eval loss ÷ 1 process"]  # fmt: skip
    keys = ["run", "device", "task", "job", "checkpoint", "padding", "precision", "method"]
    sections = []
    for _, group in shown.groupby(keys, sort=False, dropna=False):
        first = group.iloc[0]
        title = (
            f"{first['device']} · {first['job']} {short_checkpoint(first['checkpoint'])} "
            f"{first['padding']} {first['precision']} {first['method']} · run {first['run'] or '-'}"
        )
        configs = {c for c in group["accelerate config"] if c}
        if configs:
            title += " · accelerate config " + ", ".join(sorted(configs))
        sections.append((title, group[columns]))
    return sections
