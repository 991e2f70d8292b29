"""N processes against one, same global batch: the pairing, efficiency and the quality check.

    from ftbench.judge.scaling import one_process_of, quality_verdicts
    one = one_process_of(result, this_runs_results)          # the same case in one process
    verdicts = quality_verdicts(result, one, ["eval_accuracy"], policy.tolerances)

A case of N processes is paired with the one-process case of the same task, checkpoint,
padding, device, precision, method and seed *in the same run* (never another run's: the host
and its load differ). Scaling efficiency is throughput with N ÷ (N × throughput with one).
Both keep the job's global batch, so a fine-tune's quality should match one process's within
the accuracy gate. The tables of it are `ftbench.report.scaling`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ftbench.core.record import device_label, method_of, processes_of, seed_of, task_of
from ftbench.judge.baselines import Verdict, gate

if TYPE_CHECKING:
    from ftbench.core.measures import Tolerance
    from ftbench.core.record import CaseResult


def pair_key(result: CaseResult) -> tuple:

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
        seed_of(result),
    )


def one_process_of(result: CaseResult, results: list[CaseResult]) -> CaseResult | None:
    """The same case in one process, in the same run (its last measurement), or None."""
    key = pair_key(result)
    same = [r for r in results if processes_of(r) == 1 and pair_key(r) == key]
    return max(same, key=lambda r: r.created_at or "") if same else None


def efficiency(result: CaseResult, one: CaseResult | None) -> float | None:
    """Throughput with N ÷ (N × throughput with one)."""
    n = processes_of(result)
    mine = result.throughput.get("train_samples_per_second")
    base = one.throughput.get("train_samples_per_second") if one else None
    if not mine or not base:
        return None
    return mine / (n * base)


def loss_ratio(result: CaseResult, one: CaseResult | None) -> float | None:
    """Held-out loss with N processes ÷ with one. About 1 when the loss means the same thing;
    transformers 5.24's Trainer multiplies a model's own mean loss by N when the model takes
    **kwargs (BERT's classifier does), which shows here as N."""
    mine = result.metrics.get("eval_loss")
    theirs = one.metrics.get("eval_loss") if one else None
    return mine / theirs if mine and theirs else None


def note_efficiency(result: CaseResult, one: CaseResult | None) -> None:
    """Keep the efficiency in the N-process record too, when its one-process case ran first
    in the same run (the report recomputes it from both records either way)."""
    if one is None:
        return
    result.distributed = {
        **(result.distributed or {}),
        "one_process_case_id": one.case_id,
        "one_process_samples_per_second": one.throughput.get("train_samples_per_second"),
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

    if not (result.accuracy_meaningful and one.accuracy_meaningful):
        return []
    values, entry = {}, {"metrics": {}}
    for metric in metrics:
        mine, theirs = result.metrics.get(metric), one.metrics.get(metric)
        if mine is None or theirs is None or metric not in tolerances:
            continue
        values[metric] = float(mine)
        std = (baseline_std or {}).get(metric, 0.0)
        entry["metrics"][metric] = {"mean": theirs, "median": theirs, "std": std, "n": 1}
    verdicts = gate(result.case_id, values, entry, tolerances)
    for verdict in verdicts:
        verdict.how = verdict.how.replace("mean", "1 process", 1).replace(", n=1", "")
    return verdicts
