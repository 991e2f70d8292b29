"""Where a metric stepped: change points in a series of runs, robust to run-to-run noise.

    from ftbench.report.steps import steps, lasting_step
    found = steps([30.1, 29.8, 30.4, 30.0, 21.2, 20.9, 21.4, 21.0])   # [Step(index=4, ...)]
    lasting_step(values, bound=25.5, direction="higher")               # the run that did it

In the spirit of asv's step detection: the series is split where a piecewise-constant fit with
absolute (L1) error gains most (binary segmentation, medians per segment), and a split is kept
only when its medians differ by more than `SIGNIFICANCE` times the noise. The noise is
estimated from successive differences (median absolute deviation), which a step barely moves.
A series that is flat up to noise has no step; identical values (quality on a CPU, which is
bit-for-bit reproducible) make any change a step.
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass

SIGNIFICANCE = 4.0  # a step's size in units of the noise's standard deviation
MIN_RUNS = 3  # runs on each side of a step: one odd run is noise, not a step


@dataclass(frozen=True)
class Step:
    index: int  # the first run after the step
    before: float  # median of the runs since the previous step
    after: float  # median of the runs up to the next step

    @property
    def change(self) -> float:
        return (self.after - self.before) / self.before if self.before else math.inf


def noise(values: list[float]) -> float:
    """A robust standard deviation of run-to-run noise, from successive differences."""
    diffs = [b - a for a, b in itertools.pairwise(values)]
    if len(diffs) < 2:
        return 0.0
    centre = statistics.median(diffs)
    return 1.4826 * statistics.median(abs(d - centre) for d in diffs) / math.sqrt(2)


def _cost(values: list[float]) -> float:
    centre = statistics.median(values)
    return sum(abs(v - centre) for v in values)


def _best_split(values: list[float]) -> int | None:
    best, best_gain = None, 0.0
    whole = _cost(values)
    for k in range(MIN_RUNS, len(values) - MIN_RUNS + 1):
        gain = whole - _cost(values[:k]) - _cost(values[k:])
        if gain > best_gain:
            best, best_gain = k, gain
    return best


def steps(values: list[float]) -> list[Step]:
    """The significant steps of a series, in order."""
    if len(values) < 2 * MIN_RUNS:
        return []
    sigma = noise(values)
    cuts: list[int] = []
    pending = [(0, len(values))]
    while pending:
        start, end = pending.pop()
        k = _best_split(values[start:end])
        if k is None:
            continue
        left, right = values[start : start + k], values[start + k : end]
        shift = abs(statistics.median(right) - statistics.median(left))
        if shift > SIGNIFICANCE * sigma and shift > 1e-12 * max(map(abs, values)):
            cuts.append(start + k)
            pending += [(start, start + k), (start + k, end)]
    cuts.sort()
    edges = [0, *cuts, len(values)]
    medians = [statistics.median(values[a:b]) for a, b in itertools.pairwise(edges)]
    return [Step(cut, medians[i], medians[i + 1]) for i, cut in enumerate(cuts)]


def lasting_step(values: list[float], bound: float | None, direction: str) -> Step | None:
    """The step after which the metric left its band (past `bound` on its bad side) and stayed
    out: every later segment's median beyond the bound. None when there is no such step."""
    if bound is None:
        return None

    def outside(value: float) -> bool:
        return value < bound if direction == "higher" else value > bound

    found = steps(values)
    for i, step in enumerate(found):
        later = [s.after for s in found[i:]]
        if not outside(step.before) and all(outside(v) for v in later):
            return step
    return None
