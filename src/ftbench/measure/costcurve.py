"""What a training batch costs on this device, measured: the step-cost curve behind the ceiling.

    from ftbench.measure.costcurve import measure_cost_curve
    curve = measure_cost_curve(model, device="cpu", batch_size=32, vocab_size=30522)
    curve["coefficients"]          # {"a": ..., "b": ..., "c": ...}: see ftbench.core.cost

One training step (forward, backward, optimizer) is timed on made-up batches of one batch size
at several padded lengths, and fitted by `ftbench.core.cost.fit`, which also holds the model
and its predictions (pure arithmetic on records, so reports recompute it offline).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ftbench.core.cost import fit
from ftbench.env.devices import synchronize
from ftbench.tasks import get_task

if TYPE_CHECKING:
    from ftbench.core.spec import CaseSpec

DEFAULT_LENGTHS = (16, 32, 64, 96, 128)


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
    spec: CaseSpec,
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

    model, _ = get_task(spec.task).load_case_model(spec, checkpoint, tokenizer, data)
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
