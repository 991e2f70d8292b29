"""Invariants: settings that must train the same model, and how far apart they may end.

    from ftbench.core.invariants import INVARIANTS, bounds_for
    INVARIANTS["grad-accum"].title      # 'k micro-batches of b against one batch of k·b'
    bounds_for("grad-accum", device="cpu", precision="fp32")

Plain data, read by the job files (`invariants:`), the pairs' builder (ftbench.config.invariants)
and the judge (ftbench.judge.invariants). How each bound was set: docs/invariants.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bounds:
    """How far two sides may part: relative per step (loss, grad norm), absolute on the
    weights (the largest |a - b| of any parameter), relative on the final eval loss, absolute
    on the other final metrics (accuracy, F1, rewards: counts over held-out rows, which move
    in steps of one row). 0: bit for bit. The learning rate must match exactly, always."""

    loss: float = 0.0
    grad_norm: float = 0.0
    weights: float = 0.0
    eval: float = 0.0  # eval losses, relative
    quality: float = 0.0  # the other eval metrics, absolute

    def as_dict(self) -> dict[str, float]:
        return {"loss": self.loss, "grad_norm": self.grad_norm, "weights": self.weights,
                "eval": self.eval, "quality": self.quality}  # fmt: skip


@dataclass(frozen=True)
class Expected:
    """A known divergence (upstream): the pair is expected to fail, and says why."""

    reason: str
    link: str = ""

    def describe(self) -> str:
        return self.reason + (f" ({self.link})" if self.link else "")


@dataclass(frozen=True)
class Invariant:
    name: str
    title: str  # what must agree with what, in a few words
    # Off for pairs whose sides draw random numbers differently (other batch shapes, other
    # processes, other precisions): their dropout masks differ by construction.
    dropout: bool
    exact_on_cpu: bool = False  # same arithmetic in the same order: bit for bit


INVARIANTS = {
    i.name: i
    for i in (
        Invariant("determinism", "the same run twice", dropout=True, exact_on_cpu=True),
        Invariant(
            "resume",
            "k steps, saved, resumed to n, against n uninterrupted",
            dropout=True,
            exact_on_cpu=True,
        ),
        Invariant("grad-accum", "k micro-batches of b against one batch of k·b", dropout=False),
        Invariant("processes", "N processes against 1, same global batch", dropout=False),
        Invariant("padding", "another padding strategy, same rows", dropout=False),
        Invariant("precision", "bf16 against fp32", dropout=False),
    )
}

# Measured on a 2-core CPU, fp32 (docs/invariants.md): MiniLM-L6 on MRPC, 24 steps, the largest
# relative loss difference of grad-accum, processes and padding pairs was 1.8e-7, of the grad
# norm 3.3e-7, of the weights 6.0e-6 (abs), of eval loss 6e-8. The bounds sit about 50x above
# that: far below what a real fault moves (a mis-normalised accumulation: x4 the loss).
# Accuracy and F1 were equal in every pair; a reordered sum may still flip one prediction of
# a few hundred held-out rows near the boundary: 0.01.
REORDERED_FP32 = Bounds(loss=1e-5, grad_norm=1e-4, weights=3e-4, eval=1e-5, quality=0.01)
# Both sides in bf16 (the full profile, on GPU): not yet measured; bf16 keeps 8 bits of mantissa
# (relative steps of 4e-3), so a reordered sum moves the loss by about that much per step.
REORDERED_BF16 = Bounds(loss=3e-2, grad_norm=1e-1, weights=1e-2, eval=3e-2, quality=0.03)
# bf16 against fp32, measured on the CPU (MRPC, 24 steps): loss 2.2e-4, grad norm 2.7e-3,
# weights 8.4e-4, eval loss 5.3e-5. About 10x above.
PRECISION = Bounds(loss=3e-3, grad_norm=3e-2, weights=1e-2, eval=1e-3, quality=0.02)
EXACT = Bounds()


def bounds_for(invariant: str, *, device: str, precision: str) -> Bounds:
    """The bounds of `invariant` for a pair trained on `device` in `precision` (side a's)."""
    if invariant == "precision":
        return PRECISION
    if device == "cpu" and precision == "fp32" and INVARIANTS[invariant].exact_on_cpu:
        return EXACT
    # GPU kernels may reduce in another order from run to run (atomics): not bit for bit.
    return REORDERED_FP32 if precision == "fp32" else REORDERED_BF16
