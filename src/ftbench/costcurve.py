"""What a training batch costs on this device, measured, and the padding ceiling it implies.

    from ftbench.costcurve import measure_cost_curve, fit, predict
    curve = measure_cost_curve(model, device="cpu", batch_size=32, vocab_size=30522)
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
import time
from typing import Any

DEFAULT_LENGTHS = (16, 32, 64, 96, 128)
TERMS = ("a", "b", "c")  # seconds per step, per token, per token × length
POOR_FIT = 0.25  # a worst relative error above this is reported as a poor fit


def measure_cost_curve(
    model: Any,
    *,
    device: str,
    batch_size: int,
    vocab_size: int,
    lengths: tuple[int, ...] = DEFAULT_LENGTHS,
    steps: int = 3,
    warmup_steps: int = 1,
    precision: str = "fp32",
    learning_rate: float = 1e-5,
) -> dict[str, Any]:
    """Time training steps of `model` at each padded length; return the lengths, the fastest
    step's seconds at each, and the fit. The model trains on random tokens: hand it a fresh one."""
    import torch

    from ftbench.devices import synchronize

    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=learning_rate)  # Trainer's default optimizer
    autocast = _autocast(device, precision)
    generator = torch.Generator().manual_seed(0)
    batches = []
    for length in lengths:
        ids = torch.randint(1000, vocab_size, (batch_size, length), generator=generator)
        batches.append(
            {
                "input_ids": ids.to(device),
                "attention_mask": torch.ones_like(ids).to(device),
                "labels": torch.randint(0, 2, (batch_size,), generator=generator).to(device),
            }
        )
    # Lengths take turns, so a change in load over the measurement touches each alike; the
    # fastest of a length's steps is its cost, since other work on the device only adds time.
    times: list[list[float]] = [[] for _ in lengths]
    for step in range(warmup_steps + steps):
        for i, batch in enumerate(batches):
            synchronize(device)
            started = time.perf_counter()
            with autocast:
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)  # as Trainer does (max_grad_norm 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            synchronize(device)
            if step >= warmup_steps:
                times[i].append(time.perf_counter() - started)
    seconds = [min(t) for t in times]
    del optimizer
    return {
        "batch_size": batch_size,
        "lengths": list(lengths),
        "step_seconds": seconds,  # the fastest of `steps_per_length` at each length
        "all_step_seconds": times,
        "steps_per_length": steps,
        "warmup_steps": warmup_steps,
        "precision": precision,
        "model": "t = a + b·B·L + c·B·L² (seconds per step of B sequences of length L)",
        **fit([(batch_size, n) for n in lengths], seconds),
    }


def measure_for_case(
    spec: Any,
    checkpoint: Any,
    tokenizer: Any,
    data: Any,
    report: Any = None,
) -> dict[str, Any]:
    """The cost curve of a case's checkpoint, device, precision and method, on a fresh model,
    at the case's batch size, up to its static padding length."""
    import torch

    lengths = (*(n for n in DEFAULT_LENGTHS if n < spec.max_length), spec.max_length)
    if report is not None:
        report(f"cost curve of {spec.axes_id}: timing steps at lengths {list(lengths)}")
    model, _ = spec.load_model(checkpoint, tokenizer, data)
    try:
        return measure_cost_curve(
            model,
            device=spec.device,
            batch_size=spec.training.batch_size,
            vocab_size=len(tokenizer),
            lengths=lengths,
            precision=spec.precision,
        )
    except torch.OutOfMemoryError as exc:  # the case itself trained; its ceiling is unknown
        return {"error": f"out of memory measuring the cost curve: {exc}"}
    finally:
        model.to("cpu")
        del model
        if spec.device == "cuda":
            torch.cuda.empty_cache()


def _autocast(device: str, precision: str) -> Any:
    import contextlib

    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device, dtype=dtype)


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
    from ftbench.report import fmt_rate

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
