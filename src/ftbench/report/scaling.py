"""N processes against one: scaling efficiency and the accuracy check, from records alone.

    from ftbench.report.scaling import scaling_table, format_scaling_table
    print(format_scaling_table(scaling_table(results)))

A case of N processes is paired with the one-process case of the same task, checkpoint,
padding, device, precision, method and seed *in the same run* (never another run's: the host
and its load differ). Scaling efficiency is throughput with N ÷ (N × throughput with one).
Both keep the job's global batch, so a fine-tune's quality should match one process's within
the accuracy gate; `quality_verdicts` says whether it does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ftbench.core.record import batches_of, processes_of

if TYPE_CHECKING:
    import pandas as pd

    from ftbench.core.measures import Tolerance
    from ftbench.core.record import CaseResult
    from ftbench.judge.baselines import Verdict


def _pair_key(result: CaseResult) -> tuple:
    from ftbench.core.record import device_label, method_of, task_of

    axes = result.axes or {}
    return (
        result.run_id,
        device_label(result),
        task_of(result),
        result.job,
        axes.get("checkpoint"),
        axes.get("padding"),
        axes.get("precision"),
        method_of(result),
        (result.training or {}).get("seed"),
    )


def one_process_of(result: CaseResult, results: list[CaseResult]) -> CaseResult | None:
    """The same case in one process, in the same run (its last measurement), or None."""
    key = _pair_key(result)
    same = [r for r in results if processes_of(r) == 1 and _pair_key(r) == key]
    return max(same, key=lambda r: r.created_at or "") if same else None


def efficiency(result: CaseResult, one: CaseResult | None) -> float | None:
    """Throughput with N ÷ (N × throughput with one)."""
    n = processes_of(result)
    mine = (result.throughput or {}).get("train_samples_per_second")
    base = (one.throughput or {}).get("train_samples_per_second") if one else None
    if not mine or not base:
        return None
    return mine / (n * base)


def loss_ratio(result: CaseResult, one: CaseResult | None) -> float | None:
    """Held-out loss with N processes ÷ with one. About 1 when the loss means the same thing;
    transformers 5.24's Trainer multiplies a model's own mean loss by N when the model takes
    **kwargs (BERT's classifier does), which shows here as N."""
    mine = (result.metrics or {}).get("eval_loss")
    theirs = (one.metrics or {}).get("eval_loss") if one else None
    return mine / theirs if mine and theirs else None


def note_efficiency(result: CaseResult, one: CaseResult | None) -> None:
    """Keep the efficiency in the N-process record too, when its one-process case ran first
    in the same run (the report recomputes it from both records either way)."""
    if one is None:
        return
    result.distributed = {
        **(result.distributed or {}),
        "one_process_case_id": one.case_id,
        "one_process_samples_per_second": (one.throughput or {}).get("train_samples_per_second"),
        "scaling_efficiency": efficiency(result, one),
    }


def quality_verdicts(
    result: CaseResult,
    one: CaseResult,
    metrics: list[str],
    tolerances: dict[str, Tolerance],
    baseline_std: dict[str, float] | None = None,
) -> list[Verdict]:
    """Each quality metric of the N-process case against the one-process value, with the
    metric's gate: `max(k·σ, min)` in its direction, σ from the one-process baseline's seeds
    where there is one (else the gate's minimum alone)."""
    from ftbench.judge.baselines import gate

    if not (result.accuracy_meaningful and one.accuracy_meaningful):
        return []
    values, entry = {}, {"metrics": {}}
    for metric in metrics:
        mine, theirs = (result.metrics or {}).get(metric), (one.metrics or {}).get(metric)
        if mine is None or theirs is None or metric not in tolerances:
            continue
        values[metric] = float(mine)
        std = (baseline_std or {}).get(metric, 0.0)
        entry["metrics"][metric] = {"mean": theirs, "median": theirs, "std": std, "n": 1}
    verdicts = gate(result.case_id, values, entry, tolerances)
    for verdict in verdicts:
        verdict.how = verdict.how.replace("mean", "1 process", 1).replace(", n=1", "")
    return verdicts


# -- the table -----------------------------------------------------------------------------------


def scaling_rows(results: list[CaseResult]) -> list[dict[str, Any]]:
    """One row per case and number of processes, in the groups that have N > 1."""
    from ftbench.core.record import device_label, method_of, task_of
    from ftbench.report.tables import fold_remeasures

    folded = [r for r, _ in fold_remeasures(results)]
    wanted = {_pair_key(r) for r in folded if processes_of(r) > 1}
    rows = []
    for r in folded:
        if _pair_key(r) not in wanted:
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
                "checkpoint": (r.axes or {}).get("checkpoint") or "",
                "padding": (r.axes or {}).get("padding") or "",
                "precision": (r.axes or {}).get("precision") or "",
                "method": method_of(r),
                "seed": (r.training or {}).get("seed"),
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
    from ftbench.core.errors import ConfigError
    from ftbench.core.record import task_of
    from ftbench.tasks import get_task

    try:
        metric = get_task(task_of(result)).metrics[0]
    except (ConfigError, IndexError):
        return None
    return metric.name, metric.column


def _quality(result: CaseResult) -> str:
    primary = _primary_metric(result)
    value = (result.metrics or {}).get(primary[0]) if primary else None
    if not result.accuracy_meaningful or value is None:
        return "-"
    return f"{primary[1]} {value:.4f}"


def _quality_change(result: CaseResult, one: CaseResult | None) -> str:
    if one is None:
        return "no 1-process case in this run"
    primary = _primary_metric(result)
    mine = (result.metrics or {}).get(primary[0]) if primary else None
    theirs = (one.metrics or {}).get(primary[0]) if primary else None
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
    from ftbench.core.formats import fmt_rate, fmt_ratio, fmt_share
    from ftbench.report.tables import short_checkpoint

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


def format_scaling_table(table: pd.DataFrame) -> str:
    return "\n\n".join(f"{t}\n{s.to_string(index=False)}" for t, s in scaling_sections(table))
