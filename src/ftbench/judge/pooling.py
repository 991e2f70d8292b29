"""A baseline from several runs' records: quality per seed, each rate's median over every run.

    ftbench baselines record ci/*/results/runs --into results/baselines

    from ftbench.judge.pooling import pooled_entries
    entries, notes = pooled_entries(results)   # {(hardware_id, profile): {case_id: entry}}

A shared CPU runner's speed moves between hours of one day by more than the device probe sees
(the smoke's TRL cases, per probe: 0.80-0.99 of the afternoon's figures that evening), so a
baseline recorded in one fast hour makes every slower hour re-measure, or fail. Recorded from
several runs, a rate's baseline is the median of all their measurements. Quality stays per
seed, from the newest run (on the CPU every run's figures are the same bits; a seed whose
figures differ between runs is named). A case's records must be one experiment: recipe, data,
weights, library versions, where it was timed, and the probe; otherwise nothing is written. A
case that gates no rate is left as it is. A record holds numbers, not the verdict on them:
pool the runs whose cases passed.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from ftbench.core.errors import FtbenchError
from ftbench.core.record import is_busy
from ftbench.judge.baselines import (
    entry_from_results,
    environment_diff,
    metric_stats,
    recipe_differences,
    weights_difference,
)
from ftbench.judge.throughput import busy_message, is_timed
from ftbench.stack.dataid import data_difference

if TYPE_CHECKING:
    from ftbench.config.profiles import Job
    from ftbench.core.record import CaseResult

NO_RATE = "its quality's baseline comes from --ftb-update-baselines, over --ftb-seeds"
Entries = dict[tuple[str, str], dict[str, dict[str, Any]]]


def pooled_entries(results: list[CaseResult]) -> tuple[Entries, list[str]]:
    """Baseline entries by (hardware id, profile) and case id, and notes; a FtbenchError names
    the first case whose records are not one experiment."""
    groups: dict[tuple[str, str, str], list[CaseResult]] = {}
    for result in sorted(results, key=lambda r: r.created_at or ""):
        hardware = (result.environment or {}).get("hardware_id") or "unknown"
        groups.setdefault((hardware, result.profile, result.case_id), []).append(result)
    entries: Entries = {}
    notes: list[str] = []
    for (hardware, profile, case_id), records in sorted(groups.items()):
        job = _job(profile, records[-1].job)
        entry, note = pooled_entry(case_id, records, job)
        if not any(is_timed(m) for m in entry["metrics"]):  # nothing to pool: left as it is
            busy = all(is_busy(r) for r in records)
            why = "every record's device was busy" if busy else f"it gates no rate ({NO_RATE})"
            notes.append(f"{case_id}: not recorded: {why}")
            continue
        notes += note
        entries.setdefault((hardware, profile), {})[case_id] = entry
    return entries, notes


def pooled_entry(
    case_id: str, records: list[CaseResult], job: Job | None = None
) -> tuple[dict[str, Any], list[str]]:
    """One case's entry from its records, oldest first: the newest run's quality per seed and
    the rates of one measurement per run and seed, the last (a re-measure is the number its
    run judged; counting both would give that hour two votes)."""
    last: dict[tuple[Any, Any], CaseResult] = {}
    for result in records:
        if "splits" not in (result.data or {}):  # what it trained on can't be compared
            raise FtbenchError(f"{case_id}: run {result.run_id}'s record has no data identity")
        last[result.run_id, result.training.get("seed")] = result  # also drops a run given twice
    measured = list(last.values())
    newest = {result.training.get("seed"): result for result in measured}
    seeds = [newest[s] for s in sorted(newest, key=lambda s: (s is None, s))]
    entry = entry_from_results(seeds, job)
    for result in measured:
        difference = _difference(result, entry)
        if difference:
            raise FtbenchError(
                f"{case_id}: the records are not one experiment: run {result.run_id} has "
                f"{difference}"
            )
    busy = [r for r in measured if is_busy(r)]  # its rate says nothing about the code
    quiet = [r for r in measured if not is_busy(r)]
    pooled: dict[str, list[float]] = {}
    for result in quiet:
        for metric, stats in entry_from_results([result], job)["metrics"].items():
            if is_timed(metric):
                pooled.setdefault(metric, []).extend(stats["values"])
    quality = {m: s for m, s in entry["metrics"].items() if not is_timed(m)}
    entry["metrics"] = {**quality, **{m: metric_stats(v) for m, v in pooled.items()}}
    scores = [(r.machine.get("probe") or {}).get("score") for r in quiet]
    if entry.get("probe") and None not in scores and scores:
        # the probe beside the pooled rates: their runs' median, not the newest run's
        probe = {k: v for k, v in entry["probe"].items() if k not in ("before", "after", "drift")}
        entry["probe"] = {**probe, "score": statistics.median(scores), "runs": len(scores)}
    entry["runs"] = sorted({r.run_id for r in measured if r.run_id})
    notes = [_summary(case_id, entry, len(quiet))]
    notes += [f"{case_id}: run {r.run_id}'s rates left out: {busy_message(r)}" for r in busy]
    notes += _quality_differences(case_id, measured, newest, job)
    return entry, notes


def _difference(result: CaseResult, entry: dict[str, Any]) -> str | None:
    """What makes `result` another experiment than `entry` (built from the newest records)."""
    recipe = recipe_differences(result.training.get("recipe"), entry)
    if recipe:
        return "another recipe: " + "; ".join(recipe)
    other = data_difference(result.data, entry) or weights_difference(result.checkpoint, entry)
    if other:
        return other
    mine = entry_from_results([result])
    environment = environment_diff(mine["environment"], entry["environment"])
    if environment:
        return "another environment: " + "; ".join(environment)
    if mine.get("timed_in") != entry.get("timed_in"):
        return f"another timed in: {mine.get('timed_in')} (newest: {entry.get('timed_in')})"
    probe, then = (mine.get("probe") or {}).get("name"), (entry.get("probe") or {}).get("name")
    if probe != then:
        return f"another probe: {probe} (newest: {then})"
    return None


def _summary(case_id: str, entry: dict[str, Any], count: int) -> str:
    """`sft[...]: 6 measurement(s) pooled, from 6 run(s); train_samples_per_probe median ...`"""
    rates = [
        f"{m} median {s['median']:.4g} ({min(s['values']):.4g}-{max(s['values']):.4g})"
        for m, s in sorted(entry["metrics"].items())
        if is_timed(m)
    ]
    line = f"{case_id}: {count} measurement(s) pooled, from {len(entry['runs'])} run(s)"
    return line + (f"; {', '.join(rates)}" if rates else "")


def _quality_differences(
    case_id: str, records: list[CaseResult], newest: dict[Any, CaseResult], job: Job | None
) -> list[str]:
    """A seed whose quality figures differ between runs (not on the CPU; GPU kernels may)."""
    notes = []
    for result in records:
        kept = newest[result.training.get("seed")]
        mine = entry_from_results([result], job)["metrics"]
        theirs = entry_from_results([kept], job)["metrics"]
        quality = [m for m in mine if not is_timed(m) and m in theirs]
        moved = sorted(m for m in quality if mine[m]["values"] != theirs[m]["values"])
        if moved:
            notes.append(
                f"{case_id}: seed {result.training.get('seed')}'s {', '.join(moved)} in run "
                f"{result.run_id} differ from run {kept.run_id}'s, which are kept"
            )
    return notes


def _job(profile: str, name: str) -> Job | None:
    """The record's job, to gate what it gates: of a built-in profile or a job file found
    under the working directory; None (every metric the record has) otherwise."""
    from ftbench.config.profiles import known_profile
    from ftbench.core.errors import ConfigError

    known = known_profile(profile)
    if known is None:
        return None
    try:
        return known.job(name)
    except ConfigError:
        return None
