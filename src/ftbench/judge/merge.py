"""Merge baselines recorded in shards (one CI job per benchmark job, or per seed) into one set.

    ftbench baselines merge shards/*/results/baselines --into results/baselines

    from ftbench.judge.merge import merge_entries
    entry, conflict = merge_entries(committed, [("shard-sft", sft_entry), ("shard-dpo", ...)])

Every shard starts from the committed baselines and re-records some cases, so a shard's entry
that equals the committed one is not news and is left out. New entries for one case from
several shards are combined seed by seed: disjoint seeds are pooled and the statistics
recomputed; a seed recorded twice must have the same numbers. Anything else (two recipes, other
data, the same seed with other numbers) is a conflict, named, and nothing is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftbench.judge.baselines import BaselineStore, metric_stats, read_baseline_file

# What must agree for seeds of one case to be pooled: they are the same experiment.
SAME_EXPERIMENT = ("recipe", "data", "environment")


def merge_entries(
    base: dict[str, Any] | None, shards: list[tuple[str, dict[str, Any]]]
) -> tuple[dict[str, Any] | None, str | None]:
    """The merged entry of one case (None: nothing new) and a conflict, if any."""
    new = [(name, entry) for name, entry in shards if entry != base]
    if not new:
        return None, None
    pooled = [name for name, entry in new if "runs" in entry]  # ftbench baselines record's
    if pooled and len(new) == 1:
        return new[0][1], None
    if pooled:  # its rates hold several values a seed: they can't be paired seed by seed
        return None, (
            f"{pooled[0]} holds rates pooled over runs (ftbench baselines record); record "
            "them from all the shards' runs at once"
        )
    first_name, merged = new[0]
    values = _by_seed(merged)
    for name, entry in new[1:]:
        for key in SAME_EXPERIMENT:
            if entry.get(key) != merged.get(key):
                return None, f"{first_name} and {name} recorded it with another {key}"
        for seed, metrics in _by_seed(entry).items():
            if seed in values and values[seed] != metrics:
                moved = sorted(
                    m for m in metrics.keys() | values[seed].keys()
                    if metrics.get(m) != values[seed].get(m)
                )  # fmt: skip
                return None, (
                    f"{first_name} and {name} both recorded seed {seed} with other numbers "
                    f"({', '.join(moved)})"
                )
            values[seed] = metrics
        if (entry.get("recorded_at") or "") > (merged.get("recorded_at") or ""):
            merged = {**merged, **{k: v for k, v in entry.items() if k != "metrics"}}
    seeds = sorted(values)
    names = sorted({m for metrics in values.values() for m in metrics})
    missing = [(m, s) for m in names for s in seeds if m not in values[s]]
    if missing:
        metric, seed = missing[0]
        return None, f"{metric} is missing for seed {seed}: the shards measured other figures"
    merged = {
        **merged,
        "seeds": seeds,
        "metrics": {m: metric_stats([values[s][m] for s in seeds]) for m in names},
    }
    return merged, None


def _by_seed(entry: dict[str, Any]) -> dict[Any, dict[str, float]]:
    """{seed: {metric: value}}: an entry's values lie in the order of its seeds."""
    seeds = entry.get("seeds") or []
    table: dict[Any, dict[str, float]] = {seed: {} for seed in seeds}
    for metric, stats in (entry.get("metrics") or {}).items():
        for seed, value in zip(seeds, stats.get("values") or [], strict=False):
            table[seed][metric] = value
    return table


def merge_shards(into: Path, shards: list[Path]) -> tuple[list[str], list[str]]:
    """Merge every `<hardware-id>/<profile>.json` under the shard directories into `into`.

    Returns (lines saying what was written, conflicts). With a conflict nothing is written.
    """
    store = BaselineStore(Path(into))
    files: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    for shard in shards:
        for path in sorted(Path(shard).glob("*/*.json")):
            data = read_baseline_file(path)
            files.setdefault((path.parent.name, path.stem), []).append((str(shard), data))
    if not files:
        return [], [f"no baseline files (<hardware-id>/<profile>.json) under {shards}"]
    updates: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    conflicts = []
    for (hardware, profile), datas in sorted(files.items()):
        committed = store.load(hardware, profile)["cases"]
        cases = sorted({case for _, data in datas for case in data["cases"]})
        for case in cases:
            found = [(name, data["cases"][case]) for name, data in datas if case in data["cases"]]
            entry, conflict = merge_entries(committed.get(case), found)
            if conflict:
                conflicts.append(f"{hardware}/{profile}.json: {case}: {conflict}")
            elif entry is not None:
                updates.setdefault((hardware, profile), {})[case] = entry
    if conflicts:
        return [], conflicts
    written = []
    for (hardware, profile), entries in updates.items():
        path = store.update(hardware, profile, entries)
        written.append(f"{path}: {len(entries)} case(s): {', '.join(sorted(entries))}")
    return written or ["nothing new: every shard's entries equal the committed ones"], []
