"""What a case measures: each metric with its direction, its default gate and where it is kept.

    from ftbench.core.measures import Metric, SHARED_METRICS
    Metric("eval_loss", "lower", k=3, min_tolerance=0.02)

A task declares its quality metrics (accuracy and F1 for MRPC, held-out loss for SFT, reward
accuracy for DPO, ...); every task shares the throughput and memory ones below. Baselines,
gates, floors, `ftbench compare` and the report read these definitions, so a new task's
metrics need no special case anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Tolerance:
    direction: str  # "higher" or "lower" is better
    k: float = 3.0  # seed-statistics rule: this many standard deviations from the mean...
    min_tolerance: float = 0.01  # ...but never a margin smaller than this (absolute)
    relative: float | None = None  # relative rule instead: this fraction of the baseline median

    def describe(self) -> str:
        if self.relative is not None:
            return f"{self.relative:.0%} of the baseline median"
        return f"max({self.k:g}σ, {self.min_tolerance:g})"


@dataclass(frozen=True)
class Metric:
    """A number a case reports. `section` is the record field that holds it."""

    name: str
    direction: str  # "higher" or "lower" is better
    k: float = 3.0
    min_tolerance: float = 0.01
    relative: float | None = None
    label: str = ""  # column name in tables; the metric's name when empty
    section: str = "metrics"  # "metrics", "throughput" or "memory"
    quality: bool = True  # a quality metric: meaningless on random weights

    @property
    def tolerance(self) -> Tolerance:
        return Tolerance(self.direction, self.k, self.min_tolerance, self.relative)

    @property
    def column(self) -> str:
        return self.label or self.name


SHARED_METRICS: tuple[Metric, ...] = (
    Metric(
        "train_samples_per_second",
        "higher",
        relative=0.10,
        label="samples/s",
        section="throughput",
        quality=False,
    ),
    Metric(
        "train_tokens_per_second",
        "higher",
        relative=0.10,
        label="tokens/s",
        section="throughput",
        quality=False,
    ),
    # CUDA's max allocated; CPU RSS is process-wide, so it is recorded but never gated.
    Metric("peak_memory_bytes", "lower", relative=0.10, section="memory", quality=False),
)


PER_SECOND, PER_PROBE = "_per_second", "_per_probe"


def probe_twin_name(name: str) -> str | None:
    """`train_samples_per_second` -> `train_samples_per_probe`; None for non-rates."""
    return name.removesuffix(PER_SECOND) + PER_PROBE if name.endswith(PER_SECOND) else None


def rate_and_twin(name: str) -> tuple[str, ...]:
    """A rate and its per-probe twin, from either name; any other metric alone."""
    if name.endswith(PER_PROBE):
        name = name.removesuffix(PER_PROBE) + PER_SECOND
    twin = probe_twin_name(name)
    return (name, twin) if twin else (name,)


def probe_twins(metrics: dict[str, Metric]) -> dict[str, Metric]:
    """Each timed rate over the device probe's score (ftbench.measure.machine): gated in its
    place where the baseline has it, so a faster or slower host of one hardware id moves
    neither."""
    twins = {}
    for metric in metrics.values():
        name = probe_twin_name(metric.name)
        if metric.section == "throughput" and name is not None:
            twins[name] = replace(metric, name=name, label=f"{metric.column} per probe")
    return twins
