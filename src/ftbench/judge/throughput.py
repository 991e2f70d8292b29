"""How a case's throughput is judged: relative to the device, and never on a busy device.

    from ftbench.judge.throughput import judge_throughput
    values, notes = judge_throughput(case_id, {"train_samples_per_second": 31.2}, entry,
                                     last_result, policy)   # what to gate, and why

- a measurement taken while other processes loaded the device (`ftbench.env.contention`) is not
  judged: the case (`ftbench.plugin.case`) first waits for the device to go quiet
  (`--ftb-busy-wait`) and measures again; if the last measurement is still busy the outcome is
  "not gated: device busy (...)", or a DeviceBusyError with `--ftb-strict`;
- where the baseline entry has a rate's machine-relative twin (`train_samples_per_probe`:
  samples/s over the device probe's score; likewise GRPO's `generation_tokens_per_probe`), the
  twin is gated instead of the raw rate, so a faster or slower host of the same hardware id
  moves neither; an older baseline falls back to the raw gate, and the status says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ftbench.core.errors import BaselineError, DeviceBusyError
from ftbench.core.measures import PER_PROBE, PER_SECOND, probe_twin_name
from ftbench.core.record import contention_of, is_busy
from ftbench.env.contention import describe
from ftbench.tasks import known_metrics

if TYPE_CHECKING:
    from ftbench.config.build import GatePolicy
    from ftbench.core.record import CaseResult
    from ftbench.judge.baselines import Verdict

RAW = "train_samples_per_second"


def is_timed(metric: str) -> bool:
    """A throughput figure: measured over timed steps, so a busy device makes it meaningless
    (samples/s, or GRPO's generation and optimizer tokens/s, and their per-probe twins)."""
    known = known_metrics().get(metric)
    return known is not None and known.section == "throughput"


def depends_on_the_past(gates: Iterable[str]) -> bool:
    """Whether a case gates a figure that what ran before in its process moves: a rate (35%
    slower after MRPC in one pytest process). A CPU's peak memory, the process's whole RSS,
    would be one too, but it is never gated (`baselines.metric_value`)."""
    return any(is_timed(m) for m in gates)


def raw_name(twin: str) -> str:
    return twin.removesuffix(PER_PROBE) + PER_SECOND


IN_PYTEST = "pytest's process"
RAW_FALLBACK = "raw throughput gate (the baseline has no probe figure; re-record it)"
NO_PROBE = "raw throughput gate (this run has no probe figure)"


def busy_message(result: CaseResult) -> str:
    """`device busy (other processes used 0.9 of 2 cores)`."""
    return f"device busy ({describe(contention_of(result))})"


def timed_values(result: CaseResult, names: set[str]) -> dict[str, float]:
    """The throughput figures among `names` (and their per-probe twins) in `result`."""
    wanted = names | {probe_twin_name(m) for m in names if probe_twin_name(m)}
    return {m: float(result.throughput[m]) for m in wanted if result.throughput.get(m) is not None}


def judge_throughput(
    case_id: str,
    values: dict[str, float],
    entry: dict[str, Any],
    measured: CaseResult,
    policy: GatePolicy,
) -> tuple[dict[str, float], list[str]]:
    """The values to gate and notes for the status, `measured` being the case's last
    measurement (after any wait for a quiet device). A busy one is not judged; with
    `policy.strict` it raises DeviceBusyError."""
    timed_names = {m for m in values if is_timed(m)}
    if not timed_names:
        return values, []
    others = {m: v for m, v in values.items() if m not in timed_names}
    if is_busy(measured):
        message = busy_message(measured)
        if policy.strict:
            raise DeviceBusyError(
                f"{case_id}: {message} during the timed steps, for longer than "
                f"--ftb-busy-wait; --ftb-strict fails what it can't judge"
            )
        return others, [f"not gated: {message}"]
    timed = timed_values(measured, timed_names)
    probe = (measured.machine.get("probe") or {}).get("name")
    chosen = choose(timed, entry, probe)
    recorded = entry.get("metrics") or {}
    notes = []
    # Entries from before issue 20 were all timed in pytest's process.
    then, now = entry.get("timed_in") or IN_PYTEST, measured.machine.get("timed_in") or IN_PYTEST
    if then != now:  # what ran before in a process moved a case's speed by up to 35%
        notes.append(f"timed in {now}, the baseline in {then} (re-record it)")
    unrecorded = sorted(m for m in chosen if m not in recorded)
    if unrecorded:  # a baseline from before the job gated its speed: said, not silently passed
        missing = ", ".join(unrecorded)
        if policy.require_baseline:
            raise BaselineError(
                f"{case_id}: the baseline has no {missing} (--ftb-require-baseline); re-record "
                "it with --ftb-update-baselines"
            )
        notes.append(f"{missing} not gated: the baseline has no figure (re-record it)")
    raw = [m for m in chosen if probe_twin_name(m)]
    if not same_probe(entry, probe) and any(probe_twin_name(m) in recorded for m in raw):
        then = entry["probe"]["name"]
        notes.append(f"raw throughput gate (the baseline's probe is {then}, this run's {probe})")
    elif any(probe_twin_name(m) in timed and m in recorded for m in raw):  # predates probes
        notes.append(RAW_FALLBACK)
    elif any(probe_twin_name(m) in recorded and probe_twin_name(m) not in timed for m in raw):
        notes.append(NO_PROBE)
    return {**others, **chosen}, notes


def same_probe(entry: dict[str, Any], probe: str | None) -> bool:
    """Whether the baseline's figures per probe were measured with this run's probe: a
    ratio to another probe's score is in other units."""
    then = (entry.get("probe") or {}).get("name")
    return then is None or probe is None or then == probe


def choose(
    timed: dict[str, float], entry: dict[str, Any], probe: str | None = None
) -> dict[str, float]:
    """Each rate as its per-probe twin where the baseline has that, by the same probe; else
    raw."""
    recorded = (entry.get("metrics") or {}) if same_probe(entry, probe) else {}
    chosen = {}
    for metric, value in timed.items():
        twin = probe_twin_name(metric)
        if metric.endswith(PER_PROBE):
            continue  # taken below, with its rate
        if twin in timed and twin in recorded:
            chosen[twin] = timed[twin]
        else:
            chosen[metric] = value
    return chosen


def explain(verdict: Verdict, result: CaseResult, entry: dict[str, Any]) -> None:
    """Add the raw figures and both probes to a relative verdict's `how` (`result`: the
    measurement it judged)."""
    if not verdict.metric.endswith(PER_PROBE):
        return
    raw = raw_name(verdict.metric)
    label = known_metrics()[raw].column if raw in known_metrics() else raw
    probe = result.machine.get("probe") or {}
    then = entry.get("probe") or {}
    median = (entry.get("metrics") or {}).get(raw, {}).get("median")
    verdict.how += (
        f"; {label} {result.throughput.get(raw, 0):.4g} (baseline {median:.4g}), probe "
        f"{probe.get('score', 0):.4g} {probe.get('unit', '')} (baseline "
        f"{then.get('score', float('nan')):.4g})"
        if median is not None
        else ""
    )


def status_of(status: str, notes: list[str], verdicts: list[Verdict]) -> str:
    """`not gated: device busy (...)` when nothing else was judged; else notes appended."""
    busy = [n for n in notes if n.startswith("not gated")]
    if busy and not verdicts:
        return busy[0]
    return ", ".join([status, *notes])
