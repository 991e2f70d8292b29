"""How a case's throughput is judged: relative to the device, and never on a busy device.

`Case._gate` hands its values here before gating (`judge_throughput`):

- a measurement taken while other processes loaded the device (`ftbench.env.contention`) is not
  judged: the case waits for the device to go quiet (`--ftb-busy-wait`) and measures again; if
  it stays busy the outcome is "not gated: device busy (...)", or a DeviceBusyError with
  `--ftb-strict`;
- where the baseline entry has a rate's machine-relative twin (`train_samples_per_probe`:
  samples/s over the device probe's score; likewise GRPO's `generation_tokens_per_probe`), the
  twin is gated instead of the raw rate, so a faster or slower host of the same hardware id
  moves neither; an older baseline falls back to the raw gate, and the status says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ftbench.core.errors import DeviceBusyError
from ftbench.core.measures import PER_PROBE, PER_SECOND, probe_twin_name
from ftbench.core.record import contention_of, is_busy

if TYPE_CHECKING:
    from ftbench.core.record import CaseResult
    from ftbench.plugin.case import Case

RAW = "train_samples_per_second"


def is_timed(metric: str) -> bool:
    """A throughput figure: measured over timed steps, so a busy device makes it meaningless
    (samples/s, or GRPO's generation and optimizer tokens/s, and their per-probe twins)."""
    from ftbench.tasks import known_metrics

    known = known_metrics().get(metric)
    return known is not None and known.section == "throughput"


def raw_name(twin: str) -> str:
    return twin.removesuffix(PER_PROBE) + PER_SECOND


RAW_FALLBACK = "raw throughput gate (the baseline has no probe figure; re-record it)"
NO_PROBE = "raw throughput gate (this run has no probe figure)"


def busy_message(result: CaseResult) -> str:
    from ftbench.env.contention import describe

    return f"device busy ({describe(contention_of(result))})"


def settle(case: Case) -> CaseResult | None:
    """While the last measurement was taken on a busy device, wait for quiet and measure again,
    within `--ftb-busy-wait` seconds. Returns the busy result when it stays busy, else None."""
    import time

    from ftbench.env.contention import wait_until_idle

    limit = float(case.session.config.getoption("ftb_busy_wait"))
    deadline = time.monotonic() + limit
    while is_busy(case.results[-1]):
        left = deadline - time.monotonic()
        if left <= 0:
            return case.results[-1]
        case.session.progress(
            f"{case.spec.case_id}: {busy_message(case.results[-1])} while timed; waiting up to "
            f"{left:.0f} s for it to go quiet, then measuring again"
        )
        if wait_until_idle(case.spec.device, limit=left) is not None:
            return case.results[-1]
        case.results.append(case._measure(case.spec, fresh_model=True))
    return None


def timed_values(result: CaseResult, names: set[str]) -> dict[str, float]:
    """The throughput figures among `names` (and their per-probe twins) in `result`."""
    wanted = names | {probe_twin_name(m) for m in names if probe_twin_name(m)}
    return {m: float(result.throughput[m]) for m in wanted if result.throughput.get(m) is not None}


def judge_throughput(
    case: Case, values: dict[str, float], entry: dict[str, Any]
) -> tuple[dict[str, float], list[str]]:
    """The values to gate and notes for the status; raises DeviceBusyError with --ftb-strict."""
    timed_names = {m for m in values if is_timed(m)}
    if not timed_names:
        return values, []
    others = {m: v for m, v in values.items() if m not in timed_names}
    busy = settle(case)
    if busy is not None:
        message = busy_message(busy)
        if case.session.config.getoption("ftb_strict"):
            case.session.set_status(case.spec.case_id, "FAILED: device busy")
            raise DeviceBusyError(
                f"{case.spec.case_id}: {message} during the timed steps, for longer than "
                f"--ftb-busy-wait; --ftb-strict fails what it can't judge"
            )
        return others, [f"not gated: {message}"]
    # After a wait, the last measurement is the one taken on a quiet device.
    timed = timed_values(case.results[-1], timed_names)
    probe = ((case.results[-1].machine or {}).get("probe") or {}).get("name")
    chosen = choose(timed, entry, probe)
    recorded = entry.get("metrics") or {}
    notes = []
    raw = [m for m in chosen if probe_twin_name(m)]
    if not same_probe(entry, probe) and any(probe_twin_name(m) in recorded for m in raw):
        then = entry["probe"]["name"]
        notes.append(f"raw throughput gate (the baseline's probe is {then}, this run's {probe})")
    elif any(probe_twin_name(m) in timed for m in raw):  # the baseline predates probes
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


def explain(verdict: Any, case: Case, entry: dict[str, Any]) -> None:
    """Add the raw figures and both probes to a relative verdict's `how`."""
    if not verdict.metric.endswith(PER_PROBE):
        return
    from ftbench.tasks import known_metrics

    raw = raw_name(verdict.metric)
    label = known_metrics()[raw].column if raw in known_metrics() else raw
    result = case.results[-1]
    probe = (result.machine or {}).get("probe") or {}
    then = entry.get("probe") or {}
    median = (entry.get("metrics") or {}).get(raw, {}).get("median")
    verdict.how += (
        f"; {label} {result.throughput.get(raw, 0):.4g} (baseline {median:.4g}), probe "
        f"{probe.get('score', 0):.4g} {probe.get('unit', '')} (baseline "
        f"{then.get('score', float('nan')):.4g})"
        if median is not None
        else ""
    )


def status_of(status: str, notes: list[str], verdicts: list[Any]) -> str:
    """`not gated: device busy (...)` when nothing else was judged; else notes appended."""
    busy = [n for n in notes if n.startswith("not gated")]
    if busy and not verdicts:
        return busy[0]
    return ", ".join([status, *notes])
