"""The report's PNG charts, one facet per group, so they stay legible with one run or many.

    from ftbench.report.charts import throughput_chart, speedup_chart, history_chart
    throughput_chart(padding_table, Path("out/throughput_by_padding.png"))

A facet is one device, run, checkpoint, precision and method (or one case, for history): its
title says which, and its x axis names only padding strategies (or runs), so labels never pile
up however many runs are merged.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftbench.core.formats import fmt_rate, fmt_share
from ftbench.report.scaling import scaling_sections
from ftbench.report.tables import GROUP_KEYS, group_title

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = 3  # facets per row


def _facets(count: int, width: float = 4.2, height: float = 3.4) -> tuple[Any, list[Any]]:
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    columns = min(COLUMNS, max(count, 1))
    rows = math.ceil(max(count, 1) / columns)
    size = (max(width * columns, 6.5), height * rows + 1.0)  # room for the title and legend
    fig, axes = plt.subplots(rows, columns, figsize=size, squeeze=False)
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def _title(text: str, width: int = 44) -> str:
    return "\n".join(textwrap.wrap(text, width)) or "-"


def _save(fig: Any, title: str, path: Path, handles: Any = None, labels: Any = None) -> Path:
    import matplotlib.pyplot as plt

    fig.suptitle(_title(title, 70))
    if handles:
        wide = fig.get_figwidth() >= 10
        columns = len(labels) if wide else 2
        fig.legend(handles, labels, loc="lower center", ncols=columns, frameon=False, fontsize=8)
        rows = math.ceil(len(labels) / columns)
        fig.tight_layout(rect=(0, 0.35 * rows / fig.get_figheight(), 1, 1))
    else:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _groups(padding: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    return [
        (group_title(g.iloc[0]), g)
        for _, g in padding.groupby(list(GROUP_KEYS), sort=False, dropna=False)
    ]


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and value == value else float("nan")


def _gap(top: Any, bottom: Any) -> float:
    """An error bar's length; none where a quartile is missing."""
    gap = _number(top) - _number(bottom)
    return gap if gap == gap else 0.0


def throughput_chart(padding: pd.DataFrame, path: Path) -> Path:
    """Samples/s per padding strategy (median, IQR as the error bar), one facet per group."""
    groups = _groups(padding)
    fig, axes = _facets(len(groups))
    for ax, (title, group) in zip(axes, groups, strict=True):
        medians = [_number(v) for v in group["samples/s"]]
        low = [_gap(m, q) for m, q in zip(medians, group["q1"], strict=True)]
        high = [_gap(q, m) for m, q in zip(medians, group["q3"], strict=True)]
        names = list(group["padding"])
        ax.bar(names, medians, yerr=[low, high], capsize=3, color="tab:blue")
        for x, (m, up) in enumerate(zip(medians, high, strict=True)):
            if m == m:  # the median, written above its error bar
                ax.annotate(fmt_rate(m), (x, m + up), ha="center", va="bottom", fontsize=8,
                            xytext=(0, 2), textcoords="offset points")  # fmt: skip
        ax.margins(y=0.12)
        ax.set_title(_title(title), fontsize=9)
        ax.set_ylabel("train samples/s")
        ax.tick_params(axis="x", labelsize=8)
    return _save(fig, "Training throughput by padding strategy (median, IQR over rounds)", path)


def speedup_chart(padding: pd.DataFrame, path: Path) -> Path:
    """Each strategy's measured speedup over static padding as a bar, its ceiling (no padding
    at all, from the cost curve) as a line over it with the share reached written on it, and
    the two predictions as markers; one facet per group."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    groups = [(t, g) for t, g in _groups(padding) if g["speedup"].notna().any()]
    fig, axes = _facets(len(groups))
    for ax, (title, group) in zip(axes, groups, strict=True):
        names = list(group["padding"])
        xs = range(len(names))
        speedups = [_number(v) for v in group["speedup"]]
        lows = [_gap(v, lo) for v, lo in zip(speedups, group["speedup low"], strict=True)]
        ax.bar(xs, speedups, 0.6, yerr=[lows, [0] * len(xs)], capsize=3, color="tab:blue")
        reliable = group.get("ceiling reliable", [True] * len(names))
        for x, ceiling, share, sure in zip(
            xs, group["ceiling"], group["share of ceiling"], reliable, strict=True
        ):
            if _number(ceiling) == _number(ceiling):
                # A curve that misses the measured steps: its ceiling dashed, its share a "?"
                style = {"color": "black"} if sure else {"color": "gray", "linestyle": "--"}
                ax.hlines(_number(ceiling), x - 0.38, x + 0.38, linewidth=2, **style)
                ax.annotate(
                    fmt_share(share) + ("" if sure else " ?"), (x, _number(ceiling)),
                    ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                    textcoords="offset points",
                )  # fmt: skip
        for offset, (column, marker, color) in zip((-0.18, 0.18), PREDICTIONS, strict=True):
            # Beside the bar's centre, where the share is written.
            shifted = [x + offset for x in xs]
            ax.plot(shifted, [_number(v) for v in group[column]], marker, color=color, ms=5)
        ax.axhline(1.0, color="gray", linewidth=0.7)
        ax.set_xticks(list(xs), names)
        ax.tick_params(axis="x", labelsize=8)
        ax.margins(y=0.15)
        ax.set_title(_title(title), fontsize=9)
        ax.set_ylabel("× static padding")
    handles = [
        Patch(color="tab:blue", label="measured speedup (bar: to its noise floor)"),
        Line2D([], [], color="black", linewidth=2, label="ceiling: no padding; % = share reached"),
        Line2D(
            [],
            [],
            color="gray",
            linestyle="--",
            linewidth=2,
            label="ceiling the curve can't vouch for (? : predicted ÷ measured off by >10%)",
        ),
        *(
            Line2D([], [], linestyle="", marker=marker, color=color, label=label)
            for (_, marker, color), label in zip(
                PREDICTIONS, ("padding-only prediction", "cost-curve prediction"), strict=True
            )
        ),
    ]
    labels = [h.get_label() for h in handles]
    title = "Speedup over static padding: how much of the no-padding ceiling each strategy reaches"
    return _save(fig, title, path, handles, labels)


# The predictions drawn beside a measured speedup: (column, marker, colour).
PREDICTIONS = (
    ("padding-only prediction", "o", "tab:gray"),
    ("cost-curve prediction", "D", "tab:orange"),
)


def history_chart(history: pd.DataFrame, metric: str, path: Path) -> Path:
    """The metric per run, in order, with the baseline's band and bound; one facet per case.

    A dotted line marks a run whose versions differ from the run before (named above it).
    """
    cases = list(dict.fromkeys(history["case"]))
    fig, axes = _facets(len(cases), width=5.6, height=3.8)
    handles: list[Any] = []
    for ax, case in zip(axes, cases, strict=True):
        rows = history[history["case"] == case].reset_index(drop=True)
        xs = list(range(len(rows)))
        values = [_number(v) for v in rows["value"]]
        handles = [ax.plot(xs, values, marker="o", color="tab:blue", label=metric)[0]]
        centers = [_number(v) for v in rows["baseline"]]
        bounds = [_number(v) for v in rows["bound"]]
        if any(c == c for c in centers):
            margins = [abs(c - b) for c, b in zip(centers, bounds, strict=True)]
            low = [c - m for c, m in zip(centers, margins, strict=True)]
            high = [c + m for c, m in zip(centers, margins, strict=True)]
            handles.append(ax.fill_between(xs, low, high, color="tab:green", alpha=0.15,
                                           step="mid", label="baseline ± tolerance"))  # fmt: skip
            handles.append(ax.step(xs, bounds, where="mid", color="tab:red", linestyle="--",
                                   linewidth=1, label="gate bound")[0])  # fmt: skip
        for x, change in zip(xs, rows["changed"], strict=True):
            if change and change != "-" and x > 0:
                ax.axvline(x - 0.5, color="gray", linestyle=":", linewidth=1)
                ax.annotate(_title(change, 24), (x - 0.5, 1), xycoords=("data", "axes fraction"),
                            fontsize=6, ha="left", va="top", xytext=(2, -2),
                            textcoords="offset points")  # fmt: skip
        ax.set_xticks(xs, [_title(label, 12) for label in rows["label"]])
        ax.tick_params(axis="x", labelrotation=45 if len(xs) > 4 else 0, labelsize=7)
        ax.set_title(_title(case, 60), fontsize=9)
        ax.set_ylabel(metric, fontsize=8)
    labels = [h.get_label() for h in handles]
    return _save(fig, f"{metric} over runs", path, handles, labels)


def scaling_chart(scaling: pd.DataFrame, path: Path) -> Path:
    """Samples/s by number of processes against perfect scaling (N × one process), with the
    efficiency over each bar; one facet per run, device, job, checkpoint, padding, precision
    and method."""
    groups = [(title, scaling.loc[section.index]) for title, section in scaling_sections(scaling)]
    fig, axes = _facets(len(groups))
    handles = []
    for ax, (title, group) in zip(axes, groups, strict=True):
        counts = [int(n) for n in group["processes"]]
        rates = [_number(v) for v in group["samples/s"]]
        one = next((r for n, r in zip(counts, rates, strict=True) if n == 1), float("nan"))
        xs = range(len(counts))
        measured = ax.bar(xs, rates, 0.6, color="tab:blue", label="measured")
        ideal = ax.scatter(xs, [n * one for n in counts], marker="_", s=600, color="black",
                           label="N × one process", zorder=3)  # fmt: skip
        handles = [measured, ideal]
        for x, (rate, share) in enumerate(zip(rates, group["efficiency"], strict=True)):
            if rate == rate:
                ax.annotate(fmt_share(share), (x, rate), ha="center", va="bottom", fontsize=8,
                            xytext=(0, 2), textcoords="offset points")  # fmt: skip
        ax.set_xticks(list(xs), [f"{n} proc" for n in counts])
        ax.margins(y=0.15)
        ax.set_title(_title(title), fontsize=9)
        ax.set_ylabel("train samples/s (all ranks)")
    labels = ["measured (efficiency above)", "N × one process (perfect scaling)"]
    return _save(fig, "Throughput by number of processes", path, handles, labels)
