"""The step-cost model t = a + b·B·L + c·B·L², and the padding ceiling it implies.

    from ftbench.core.cost import fit, predict
    curve = fit([(32, 16), (32, 64), (32, 128)], [0.41, 1.08, 3.96])  # (batch, length), s
    times = predict(curve["coefficients"], result.padding["batches"])
    times["no_padding_seconds"], times["padded_seconds"]

Padding efficiency alone predicts a step cost linear in padded tokens, but attention grows with
the square of the length, so a batch padded to 128 costs more per token than a short one and
measured speedups pass that "ceiling". Here one training step (forward, backward, optimizer) is
timed on made-up batches of one batch size at several padded lengths, and fitted as

    t = a + b·B·L + c·B·L²

per step of B sequences of length L: `a` is what a step costs whatever its shape (optimizer
update, launches), `b` the per-token work of the weight matrices (6·N FLOPs a token), `c` the
attention scores, quadratic in the length (12·layers·hidden·L a token). The coefficients are
fitted by least squares on relative error (short and long steps count alike: the ceiling is a
ratio) and held non-negative (no work has negative cost). With one batch size in the
measurement, B enters as a proportionality: a sequence costs the same whatever batch it is in.

For the batches a case actually trained on (`padding.batches` in its record: samples, padded
length, real tokens and the sum of squared real lengths per batch), the curve predicts the time
as padded, and the time of the same samples with no padding at all (each sequence at its own
length: a + b·Σl + c·Σl²). The padding ceiling of a strategy is the predicted time of its
samples padded to static padding's length over their predicted time without padding.
"""

from __future__ import annotations

import itertools
from typing import Any

from ftbench.core.formats import fmt_rate

TERMS = ("a", "b", "c")  # seconds per step, per token, per token × length
POOR_FIT = 0.25  # a worst relative error above this is reported as a poor fit


def fit(shapes: list[tuple[int, int]], seconds: list[float]) -> dict[str, Any]:
    """Non-negative least squares on relative error of t = a + b·B·L + c·B·L².

    Three coefficients: every subset of them is solved, and the best fit with none negative
    kept, which is exact non-negative least squares at this size.
    """
    import numpy as np

    rows = np.array([[1.0, b * n, b * n * n] for b, n in shapes])
    t = np.array(seconds, dtype=float)
    weighted, target = rows / t[:, None], np.ones_like(t)  # relative error: (pred - t) / t
    best: tuple[float, Any] | None = None
    for size in (3, 2, 1):
        for columns in itertools.combinations(range(3), size):
            solution, *_ = np.linalg.lstsq(weighted[:, columns], target, rcond=None)
            if (solution < 0).any():
                continue
            coefficients = np.zeros(3)
            coefficients[list(columns)] = solution
            residual = float(((weighted @ coefficients - target) ** 2).sum())
            if best is None or residual < best[0] - 1e-12:
                best = (residual, coefficients)
    coefficients = best[1] if best is not None else np.zeros(3)
    predicted = rows @ coefficients
    return {
        "coefficients": dict(zip(TERMS, (float(v) for v in coefficients), strict=True)),
        "predicted_step_seconds": [float(v) for v in predicted],
        "max_relative_error": float(np.max(np.abs(predicted - t) / t)) if len(t) else None,
    }


def step_seconds(coefficients: dict[str, float], tokens: float, squares: float) -> float:
    """Predicted seconds of one step: `tokens` = Σ lengths, `squares` = Σ lengths²."""
    return coefficients["a"] + coefficients["b"] * tokens + coefficients["c"] * squares


def predict(
    coefficients: dict[str, float], batches: list[list[int]], static_length: int | None = None
) -> dict[str, float]:
    """Predicted seconds of these batches: as padded, with no padding, and at static length.

    `batches` rows are [samples, padded length, real tokens, sum of squared real lengths].
    """
    padded = no_padding = static = 0.0
    for samples, length, real, squares in batches:
        padded += step_seconds(coefficients, samples * length, samples * length**2)
        no_padding += step_seconds(coefficients, real, squares)
        full = static_length or length
        static += step_seconds(coefficients, samples * full, samples * full**2)
    return {
        "padded_seconds": padded,
        "no_padding_seconds": no_padding,
        "static_seconds": static,
        "batches": len(batches),
        "samples": sum(b[0] for b in batches),
    }


def describe(curve: dict[str, Any]) -> str:
    """One line for reports: how the curve was measured, and its fit."""
    c = curve["coefficients"]
    points = ", ".join(
        f"{n}: {fmt_rate(s * 1e3)} ms"
        for n, s in zip(curve.get("lengths", ()), curve.get("step_seconds", ()), strict=True)
    )
    error = curve.get("max_relative_error")
    return (
        f"batch {curve.get('batch_size')}, {curve.get('steps_per_length')} steps per length after "
        f"{curve.get('warmup_steps')} warm-up, step time by padded length: {points}; fit "
        f"a = {fmt_rate(c['a'] * 1e3)} ms, b = {fmt_rate(c['b'] * 1e6)} µs/token, "
        f"c = {fmt_rate(c['c'] * 1e9)} ns/token²"
        + (f", worst fit error {error:.1%}" if error is not None else "")
        + (f" (poor: over {POOR_FIT:.0%}, so the device was likely busy; the ceiling is rough)"
           if error is not None and error > POOR_FIT else "")
    )  # fmt: skip
