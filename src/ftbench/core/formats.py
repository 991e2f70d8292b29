"""Number formats shared by gate messages, tables, charts and progress lines.

    from ftbench.core.formats import fmt_rate, fmt_ratio, fmt_share, fmt_value
    fmt_rate(1357.9)     # '1360': three significant figures, never scientific notation
    fmt_ratio(2.5)       # '2.50x'
    fmt_share(0.4321)    # '43%'
    fmt_value(0.77941)   # '0.7794': a gated value in a verdict

Missing numbers (None, NaN: pandas's empty cell) print as "-".
"""

from __future__ import annotations

import math
from typing import Any

from ftbench.core.spec import checkpoint_name

MIB = 1024 * 1024


def is_number(value: Any) -> bool:
    """A usable number: not None, not NaN (pandas turns a missing value into NaN)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def fmt_rate(value: Any) -> str:
    """Three significant figures, never scientific notation: 8.88, 17.3, 1360."""
    if not is_number(value):
        return "-"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    return f"{round(value, 2 - magnitude):.{max(0, 2 - magnitude)}f}"


def fmt_ratio(value: Any) -> str:
    return f"{value:.2f}x" if is_number(value) else "-"


def fmt_share(value: Any, digits: int = 0) -> str:
    return f"{value:.{digits}%}" if is_number(value) else "-"


def fmt_num(value: Any, digits: int, meaningful: bool = True) -> str:
    """Fixed decimals; in brackets when the number means little (random weights)."""
    if not is_number(value):
        return "-"
    text = f"{value:.{digits}f}"
    return text if meaningful else f"({text})"


def fmt_value(value: float) -> str:
    """A gated value or bound: four decimals for scores, thousands separated for rates."""
    return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"


def to_mib(value: Any) -> float | None:
    return value / MIB if is_number(value) else None


def short_checkpoint(spec: str) -> str:
    """The checkpoint's short name as test ids show it; "-" for none."""
    return checkpoint_name(spec) if spec else "-"
