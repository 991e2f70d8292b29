"""What a case measures: each metric with its direction, its default gate and where it is kept.

    from ftbench.measures import Metric, SHARED_METRICS
    Metric("eval_loss", "lower", k=3, min_tolerance=0.02)

A task declares its quality metrics (accuracy and F1 for MRPC, held-out loss for SFT, reward
accuracy for DPO, ...); every task shares the throughput and memory ones below. Baselines,
gates, floors, `ftbench compare` and the report read these definitions, so a new task's
metrics need no special case anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    # samples/s over the device probe's score (ftbench.machine): gated in place of samples/s
    # where the baseline has it, with samples/s' tolerance unless given its own.
    Metric(
        "train_samples_per_probe",
        "higher",
        relative=0.10,
        label="samples/s per probe",
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
