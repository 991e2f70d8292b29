"""Throughput statistics and model FLOPs utilisation (MFU), as plain functions.

from ftbench.measure.mfu import rate_spread, utilisation
rate_spread([0.5, 0.4, 0.6], [32, 32, 32])    # median and quartiles of per-step samples/s
"""

from __future__ import annotations

from statistics import median
from typing import Any


def rate_spread(step_seconds: list[float], step_samples: list[int]) -> dict[str, float] | None:
    """Median and quartiles of per-step samples/s: the spread behind the window's mean rate."""
    rates = sorted(n / s for n, s in zip(step_samples, step_seconds, strict=True) if s > 0)
    if not rates:
        return None

    def quantile(q: float) -> float:
        position = q * (len(rates) - 1)
        low = int(position)
        high = min(low + 1, len(rates) - 1)
        return rates[low] + (rates[high] - rates[low]) * (position - low)

    return {
        "median": median(rates),
        "q1": quantile(0.25),
        "q3": quantile(0.75),
        "min": rates[0],
        "max": rates[-1],
    }


def training_flops_per_token(
    non_embedding_parameters: int,
    layers: int,
    hidden: int,
    seq_len: float,
    trainable_non_embedding_parameters: int | None = None,
) -> float:
    """Model FLOPs to train on one token (PaLM appendix B, nanoGPT's estimate_mfu).

    Per weight: 2 forward, 2 for the gradient of its input, and 2 more for its own gradient when
    it is trained: 6·N for full fine-tuning, about 4·N with frozen weights (LoRA). Plus 12·L·H·T
    for the attention scores and their use, with T the sequence length the token attends over.
    Recomputation (gradient checkpointing) is not model FLOPs, so it is left out.
    """
    trained = (
        non_embedding_parameters
        if trainable_non_embedding_parameters is None
        else trainable_non_embedding_parameters
    )
    return 4 * non_embedding_parameters + 2 * trained + 12 * layers * hidden * seq_len


def utilisation(
    *,
    non_embedding_parameters: int,
    layers: int,
    hidden: int,
    real_tokens: int,
    samples: int,
    seconds: float,
    peak_flops_per_second: float | None,
    peak_source: str,
    trainable_non_embedding_parameters: int | None = None,
) -> dict[str, Any]:
    """Achieved model FLOP/s on real tokens, and its share of the device's peak (MFU).

    Counting real tokens only means padding shows up as lost utilisation, which is the point.
    """
    seq_len = real_tokens / samples if samples else 0.0
    per_token = training_flops_per_token(
        non_embedding_parameters, layers, hidden, seq_len, trainable_non_embedding_parameters
    )
    achieved = per_token * real_tokens / seconds if seconds else 0.0
    return {
        "flops_per_token": per_token,
        "mean_real_length": seq_len,
        "achieved_flops_per_second": achieved,
        "peak_flops_per_second": peak_flops_per_second,
        "peak_source": peak_source,
        "mfu": achieved / peak_flops_per_second if peak_flops_per_second else None,
    }
