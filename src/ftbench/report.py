"""Tables of run records, made with pandas, for the terminal and for files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from ftbench.results import CaseResult

MIB = 1024 * 1024


def cases_table(
    results: list[CaseResult],
    outcomes: list[str | None] | None = None,
    baselines: list[str | None] | None = None,
) -> pd.DataFrame:
    """One row per case: outcome, baseline verdict, accuracy, F1, throughput, padding, memory."""
    import pandas as pd

    rows = []
    for i, r in enumerate(results):
        t = r.throughput
        spread = t.get("samples_per_second_spread") or {}
        rows.append(
            {
                "case": r.case_id,
                "outcome": (outcomes[i] if outcomes else None) or "",
                "baseline": (baselines[i] if baselines else None) or "-",
                "accuracy": _num(r.metrics.get("eval_accuracy"), 4, r.accuracy_meaningful),
                "F1": _num(r.metrics.get("eval_f1"), 4, r.accuracy_meaningful),
                "samples/s": _num(t["train_samples_per_second"], 1),
                "median (IQR)": _spread(spread),
                "tokens/s": _num(t["train_tokens_per_second"], 0),
                "padding eff.": _num(r.padding.get("efficiency"), 3),
                "peak MiB": _num((r.memory.get("peak_bytes") or 0) / MIB, 0),
                "train s": _num(r.times.get("train_seconds"), 1),
                "timed steps": t["timed_steps"],
            }
        )
    return pd.DataFrame(rows)


def _num(value: Any, digits: int, meaningful: bool = True) -> str:
    if value is None:
        return "-"
    text = f"{value:.{digits}f}"
    return text if meaningful else f"({text})"


def _spread(spread: dict[str, float]) -> str:
    if not spread:
        return "-"
    return f"{spread['median']:.1f} ({spread['q1']:.1f}-{spread['q3']:.1f})"
