"""One case's verdict against its baseline entry, as pure functions of records and a policy.

    from ftbench.judge.verdict import comparable, confirm, gate_case, repro_status
    reason = comparable(case_id, results[0], entry, path, policy)   # "no baseline", or None
    outcome = gate_case(case_id, results, job, entry, policy)       # verdicts and notes
    outcome.failed, outcome.status()

What a case does around them stays with the case (`ftbench.plugin.case`): waiting for a busy
device to go quiet and measuring again, and re-measuring a throughput regression once; both
hand the new measurement back here (`gate_case`, `confirm`). Nothing here reads an option or
runs a model, so every verdict can be tested on made-up records.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from statistics import fmean
from typing import TYPE_CHECKING, Any

from ftbench.core.errors import (
    BaselineError,
    DeviceBusyError,
    RegressionError,
    ReproducibilityError,
    ReproducibilityWarning,
)
from ftbench.core.record import is_busy
from ftbench.judge.baselines import (
    BORROWED,
    Verdict,
    gate,
    gated_values,
    quality_entry,
    recipe_differences,
    regression_message,
    repro_differences,
    travels,
    weights_difference,
)
from ftbench.judge.throughput import busy_message, explain, is_timed, judge_throughput, status_of
from ftbench.stack.dataid import data_difference

if TYPE_CHECKING:
    from ftbench.config.build import GatePolicy
    from ftbench.config.profiles import Job
    from ftbench.core.record import CaseResult


def comparable(
    case_id: str, result: CaseResult, entry: dict[str, Any] | None, path: Path, policy: GatePolicy
) -> str | None:
    """None when `result` can be gated against `entry`; else the status that says why not
    ("no baseline", "not gated: other data ..."). With `policy.require_baseline` that is a
    BaselineError instead."""
    if entry is None:
        if policy.require_baseline:
            raise BaselineError(
                f"{case_id}: no baseline in {path} (--ftb-require-baseline); "
                "record one with --ftb-update-baselines"
            )
        return "no baseline"
    different = recipe_differences(result.training.get("recipe"), entry)
    # issue 12: never compare numbers measured on other data than the baseline's; issue 20:
    # nor from other weights of the same name
    reason = (
        f"the baseline in {path} has another recipe: {'; '.join(different)}"
        if different
        else data_difference(result.data, entry) or weights_difference(result.checkpoint, entry)
    )
    if reason is None:
        return None
    if policy.require_baseline:
        raise BaselineError(f"{case_id}: no comparable baseline: {reason}")
    return "not gated: " + reason


def borrowed_note(entry: dict[str, Any], measured: CaseResult, job: Job) -> str:
    """What a borrowed baseline judged, and what it could not."""
    note = f"quality against {entry[BORROWED]}'s baseline"
    if any(is_timed(m) for m in job.gates):
        here = (measured.environment or {}).get("hardware_id", "this host")
        note += f"; no baseline of {here} for throughput"
    return note


def borrow(
    case_id: str,
    result: CaseResult,
    store: Any,
    hardware_id: str,
    profile: str,
    policy: GatePolicy,
) -> tuple[dict[str, Any], Path] | None:
    """Where this host has no baseline for the case: another host's, for quality only, when
    it travels here (`travels`) and is comparable (recipe, data, weights); first by hardware id."""
    environment = result.environment or {}
    axes = result.axes or {}
    device, precision = axes.get("device", "cpu"), axes.get("precision", "fp32")
    for other in store.other_hardware(hardware_id, profile):
        try:
            entry = store.entry(other, profile, case_id)
        except BaselineError:
            continue  # another host's unreadable file is not this case's to fail on
        if entry is None or not travels(entry, device, environment.get("device_name"), precision):
            continue
        path = store.path(other, profile)
        if comparable(case_id, result, entry, path, replace(policy, require_baseline=False)):
            continue
        borrowed = quality_entry(entry, other)
        if borrowed is not None:
            return borrowed, path
    return None


def mean_values(results: list[CaseResult], job: Job) -> dict[str, float]:
    """Each gated metric's mean over the case's seeds."""
    per_metric: dict[str, list[float]] = {}
    for result in results:
        for metric, value in gated_values(result, job).items():
            per_metric.setdefault(metric, []).append(value)
    return {metric: fmean(values) for metric, values in per_metric.items()}


@dataclass
class Outcome:
    """The verdicts on a case's numbers, the failed ones, and notes for its status."""

    verdicts: list[Verdict]
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.passed]

    @property
    def timed_failure(self) -> bool:
        """A throughput figure failed: shared runners are noisy, so it is re-measured once."""
        return any(is_timed(v.metric) for v in self.failed)

    def status(self, base: str = "within bounds") -> str:
        """`base` with the notes; a busy device's "not gated" alone when nothing was judged."""
        return status_of(base, self.notes, self.verdicts)


def gate_case(
    case_id: str,
    results: list[CaseResult],
    job: Job | None,
    entry: dict[str, Any],
    policy: GatePolicy,
    measured: CaseResult | None = None,
) -> Outcome:
    """Gate the mean over the case's seeds (`results`) and the throughput of `measured`, its
    last measurement (default: the last seed's), relative to the device probe and never on a
    busy device (`judge_throughput`)."""
    measured = measured or results[-1]
    policy = policy.for_job(job)
    if entry.get(BORROWED):  # issue 20: another host's quality; its speed is not this host's
        values = {m: v for m, v in mean_values(results, job).items() if not is_timed(m)}
        notes = [borrowed_note(entry, measured, job)]
    else:
        values, notes = judge_throughput(
            case_id, mean_values(results, job), entry, measured, policy
        )
    verdicts = gate(case_id, values, entry, policy.tolerances)
    for verdict in verdicts:
        explain(verdict, measured, entry)
    return Outcome(verdicts, notes)


def confirm(
    case_id: str,
    first: Outcome,
    again: CaseResult,
    job: Job | None,
    entry: dict[str, Any],
    policy: GatePolicy,
) -> tuple[list[Verdict], str]:
    """The failures left after a throughput regression was measured `again`, and the status."""
    policy = policy.for_job(job)
    timed = [v for v in first.failed if is_timed(v.metric)]
    others = [v for v in first.failed if not is_timed(v.metric)]
    if is_busy(again):  # issue 12: a busy device's number is not a verdict on the code
        if policy.strict:
            raise DeviceBusyError(
                f"{case_id}: {busy_message(again)} during the re-measure of a throughput miss "
                f"({timed[0].describe()}), for longer than --ftb-busy-wait; --ftb-strict fails "
                "what it can't judge"
            )
        return others, f"not gated: {busy_message(again)} on re-measure"
    values = mean_values([again], job)
    retry = gate(
        case_id, {v.metric: values[v.metric] for v in timed if v.metric in values}, entry,
        policy.tolerances,
    )  # fmt: skip
    for verdict in retry:
        explain(verdict, again, entry)
    before = {v.metric: v.value for v in timed}
    # A figure the re-measure lacks (no probe score this time) is not confirmed passing.
    unconfirmed = [v for v in timed if v.metric not in values]
    still = [v for v in retry if not v.passed]
    if not still and not unconfirmed:
        return others, f"within bounds on re-measure (first {timed[0].value:.4g})"
    for verdict in unconfirmed:
        verdict.how += "; the re-measure did not produce this figure"
    for verdict in still:
        verdict.how += (
            f"; first measurement {before[verdict.metric]:.4g}, re-measured {verdict.value:.4g}"
        )
    return [*others, *still, *unconfirmed], "regressed"


def raise_regression(
    case_id: str, failed: list[Verdict], path: Path, entry: dict[str, Any], last: CaseResult
) -> None:
    """RegressionError naming each metric, its value and bound, and the baseline."""
    if failed:
        raise RegressionError(regression_message(case_id, failed, path, entry, last.environment))


def repro_status(
    case_id: str,
    results: list[CaseResult],
    entry: dict[str, Any],
    path: Path,
    policy: GatePolicy,
) -> str:
    """ ", not reproduced" when a seed the baseline has, in its environment, gave other numbers
    (a ReproducibilityWarning; with `policy.strict_repro` a ReproducibilityError); else ""."""
    status = ""
    for result in results:
        differences = repro_differences(result, entry)
        if differences:
            message = (
                f"{case_id}: same environment and seed as the baseline in {path}, "
                f"different numbers: {'; '.join(differences)}"
            )
            if policy.strict_repro:
                raise ReproducibilityError(message)
            warnings.warn(ReproducibilityWarning(message), stacklevel=2)
            status = ", not reproduced"
    return status
