"""Judge two traces that must agree: step by step, then the weights and the final evaluation.

    from ftbench.core.invariants import Bounds
    from ftbench.judge.invariants import compare, outcome
    comparison = compare("grad-accum", a, b, Bounds(loss=1e-5, grad_norm=1e-5, weights=1e-4))
    comparison.passed, comparison.describe()
    status, message = outcome(comparison, expected=None)   # "pass", "fail", "expected", ...

Per step the loss and the gradient norm are compared as relative differences, |a - b| / |a|;
the trained weights by their largest absolute difference; each final evaluation metric as a
relative difference. A bound of 0 means bit for bit. Plain Python: no torch unless the traces
hold tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ftbench.core.invariants import Bounds, Expected

STEP_SERIES = ("loss", "grad_norm", "learning_rate")


@dataclass
class Divergence:
    """One compared quantity: its largest difference, its bound, and where it first broke it."""

    what: str  # "loss", "grad_norm", "weights", "eval_accuracy", ...
    largest: float
    bound: float
    step: int | None = None  # the first step beyond the bound (per-step series only)
    values: tuple[float, float] | None = None  # both sides' values there
    first_differs: int | None = None  # the first step with any difference at all

    @property
    def within(self) -> bool:
        return self.largest <= self.bound

    def to_dict(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "largest": self.largest,
            "bound": self.bound,
            "within": self.within,
            "step": self.step,
            "values": list(self.values) if self.values else None,
            "first_differs": self.first_differs,
        }


@dataclass
class Comparison:
    """Two traces of one invariant compared."""

    invariant: str  # "grad-accum"
    a: str  # what side a is, in words: "1 batch of 32"
    b: str
    steps: int
    divergences: list[Divergence] = field(default_factory=list)
    problem: str | None = None  # the sides can't be compared (other step counts)
    curves: dict[str, list[float]] = field(default_factory=dict)  # the losses, for the chart

    @property
    def passed(self) -> bool:
        return self.problem is None and all(d.within for d in self.divergences)

    def worst(self) -> Divergence | None:
        """The divergence to report: the first per-step one out of bounds, else any out of
        bounds, else the loss's."""
        broken = [d for d in self.divergences if not d.within]
        if broken:
            stepped = [d for d in broken if d.step is not None]
            return min(stepped, key=lambda d: d.step) if stepped else broken[0]
        return next((d for d in self.divergences if d.what == "loss"), None)

    def describe(self) -> str:
        """One line: what parted, where, and both values; or how close the sides stayed."""
        if self.problem:
            return f"invariant {self.invariant}: {self.problem}"
        worst = self.worst()
        if self.passed or worst is None:
            loss = next((d for d in self.divergences if d.what == "loss"), None)
            exact = loss is not None and loss.largest == 0
            return (
                f"invariant {self.invariant}: {self.a} and {self.b} agree over {self.steps} steps"
                + (" bit for bit" if exact else "")
            )
        where = f" parted at step {worst.step}" if worst.step is not None else " differ"
        values = (
            f": {_number(worst.values[0])} ({self.a}) vs {_number(worst.values[1])} ({self.b})"
            if worst.values
            else ""
        )
        relative_kind = worst.what in STEP_SERIES or "loss" in worst.what
        kind = "relative " if relative_kind else ("max abs " if worst.what == "weights" else "")
        there = worst.largest
        if worst.step is not None and worst.values:  # the difference where it parted
            there = relative(*worst.values)
        later = f" (largest {worst.largest:.2g})" if there != worst.largest else ""
        return (
            f"invariant {self.invariant}: the {worst.what.replace('_', ' ')}{where}{values}; "
            f"{kind}difference {there:.2g} > bound {worst.bound:.2g}{later}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "invariant": self.invariant,
            "a": self.a,
            "b": self.b,
            "steps": self.steps,
            "passed": self.passed,
            "problem": self.problem,
            "divergences": [d.to_dict() for d in self.divergences],
            "curves": self.curves,
            "line": self.describe(),
        }


def _number(value: float | None) -> str:
    return "none" if value is None else f"{value:.8g}"


def relative(a: float, b: float) -> float:
    if a == b:
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    return abs(a - b) / max(abs(a), 1e-12)


def compare_series(what: str, a: list[float | None], b: list[float | None], bound: float):
    """Step by step (steps count from 1); steps where either side logged nothing are skipped."""
    largest, step, values, first = 0.0, None, None, None
    for i, (x, y) in enumerate(zip(a, b, strict=False), start=1):
        if x is None or y is None:
            continue
        d = relative(x, y)
        if d > 0 and first is None:
            first = i
        if d > bound and step is None:
            step, values = i, (x, y)
        largest = max(largest, d)
    return Divergence(what, largest, bound, step, values, first)


def largest_weight_difference(a: dict[str, Any], b: dict[str, Any]) -> float:
    """The largest |a - b| over every parameter both sides hold (inf if their names differ)."""
    if set(a) != set(b):
        return math.inf
    largest = 0.0
    for name, tensor in a.items():
        other = b[name]
        if tuple(tensor.shape) != tuple(other.shape):
            return math.inf
        largest = max(largest, float((tensor - other).abs().max()) if tensor.numel() else 0.0)
    return largest


def compare(invariant: str, a: Any, b: Any, bounds: Bounds, labels: tuple[str, str] = ("a", "b")):
    """Compare two `ftbench.measure.trace.Trace`s (or anything with loss, grad_norm, eval and
    weights) within `bounds`."""
    comparison = Comparison(invariant, labels[0], labels[1], steps=len(a.loss))
    comparison.curves = {labels[0]: list(a.loss), labels[1]: list(b.loss)}
    if len(a.loss) != len(b.loss) or not a.loss:
        comparison.problem = (
            f"{labels[0]} logged {len(a.loss)} steps, {labels[1]} {len(b.loss)}: they did not "
            "train the same steps"
        )
        return comparison
    # Both sides follow one schedule: their learning rates agree exactly, or a side lost it.
    step_bounds = {"loss": bounds.loss, "grad_norm": bounds.grad_norm, "learning_rate": 0.0}
    comparison.divergences = [
        compare_series(what, getattr(a, what), getattr(b, what), step_bounds[what])
        for what in STEP_SERIES
    ]
    comparison.divergences.append(
        Divergence("weights", largest_weight_difference(a.weights, b.weights), bounds.weights)
    )
    for metric in sorted(set(a.eval) | set(b.eval)):
        x, y = a.eval.get(metric), b.eval.get(metric)
        loss = "loss" in metric  # a loss is compared relatively, a count of rows absolutely
        both = x is not None and y is not None
        largest = (relative(x, y) if loss else abs(x - y)) if both else math.inf
        bound = bounds.eval if loss else bounds.quality
        comparison.divergences.append(Divergence(metric, largest, bound, values=(x, y)))
    return comparison


# -- the verdict, with known divergences ---------------------------------------------------------

PASSED, FAILED, EXPECTED, FIXED = "pass", "fail", "expected divergence", "unexpectedly agrees"


def outcome(comparison: Comparison, expected: Expected | None) -> tuple[str, str]:
    """(status, one line). A divergence marked expected stays reported; a marked pair that
    now agrees fails, so the marks stay true."""
    line = comparison.describe()
    if expected is None:
        return (PASSED if comparison.passed else FAILED), line
    if comparison.passed:
        return FIXED, (
            f"{line}, but it is marked as an expected divergence ({expected.describe()}): "
            "remove the mark"
        )
    return EXPECTED, f"{line} (expected: {expected.describe()})"
