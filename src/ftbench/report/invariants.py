"""The invariants' table and chart: each pair's largest divergence against its bound, and both
sides' loss curves overlaid.

    from ftbench.report.invariants import invariants_table, invariants_chart, invariants_text
    rows = [json.loads(p.read_text()) for p in run_dir.glob("invariants/*.json")]
    print(invariants_text(rows)); invariants_chart(rows, run_dir / "invariants.png")

A row is what `ftbench.plugin.invariants` writes per pair: the job, the pair, the comparison
(`ftbench.judge.invariants.Comparison.to_dict`) and the verdict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

FOLDER = "invariants"  # under a run's directory: one JSON file per pair


def read_invariants(run_dir: Path) -> list[dict[str, Any]]:
    """The pairs a run compared, in the order they ran."""
    folder = Path(run_dir) / FOLDER
    rows = [json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*.json")]
    return sorted(rows, key=lambda r: r.get("order", 0))


def _divergence(row: dict[str, Any], what: str) -> dict[str, Any] | None:
    found = [d for d in row["comparison"]["divergences"] if d["what"] == what]
    return found[0] if found else None


def _eval_worst(row: dict[str, Any], losses: bool) -> dict[str, Any] | None:
    """The largest difference among the eval losses (relative) or the other eval metrics
    (absolute)."""
    named = [
        d
        for d in row["comparison"]["divergences"]
        if d["what"].startswith("eval_") and ("loss" in d["what"]) == losses
    ]
    return max(named, key=lambda d: d["largest"]) if named else None


def _cell(divergence: dict[str, Any] | None) -> str:
    if divergence is None:
        return "-"
    largest = divergence["largest"]
    return "0" if largest == 0 else f"{largest:.1e}"


def invariants_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per pair: steps, the largest divergence of loss, grad norm, weights, eval loss
    and the other eval metrics, their bounds in that order, the first step the losses differ at
    all, and the verdict."""
    import pandas as pd

    table = []
    for row in rows:
        comparison = row["comparison"]
        loss = _divergence(row, "loss")
        bounds = row["bounds"]
        table.append(
            {
                "pair": f"{row['job']}: {row['pair']}",
                "sides": f"{comparison['a']} / {comparison['b']}",
                "steps": comparison["steps"],
                "loss": _cell(loss),
                "grad norm": _cell(_divergence(row, "grad_norm")),
                "weights": _cell(_divergence(row, "weights")),
                "eval loss": _cell(_eval_worst(row, losses=True)),
                "metrics": _cell(_eval_worst(row, losses=False)),
                "bounds": "/".join(
                    "0" if bounds.get(k, 0) == 0 else f"{bounds[k]:.0e}"
                    for k in ("loss", "grad_norm", "weights", "eval", "quality")
                ),
                "first differs": (loss or {}).get("first_differs") or "-",
                "verdict": row["status"],
            }
        )
    return pd.DataFrame(table)


def invariants_text(rows: list[dict[str, Any]]) -> list[str]:
    """The table as terminal lines, then each pair's one line that is not a plain pass."""
    if not rows:
        return []
    table = invariants_table(rows).astype(str)
    passed = sum(r["status"] == "pass" for r in rows)
    lines = [f"invariants: {passed} of {len(rows)} pairs agree within their bounds"]
    lines += table.to_markdown(index=False, tablefmt="simple", disable_numparse=True).splitlines()
    lines += [f"- {r['line']}" for r in rows if r["status"] != "pass"]
    return lines


def invariants_markdown(rows: list[dict[str, Any]], chart: Path | None = None) -> str:
    if not rows:
        return ""
    about = (
        "Largest differences over the steps: loss, grad norm and eval loss relative, weights "
        "max abs, the other eval metrics (accuracy, F1, ...) abs; bounds in that order. "
        "docs/invariants.md says how they were set."
    )
    lines = ["## Invariants", "", about, ""]
    lines += [invariants_table(rows).astype(str).to_markdown(index=False), ""]
    lines += [f"- {r['line']}" for r in rows if r["status"] != "pass"]
    if chart is not None:
        lines += ["", f"![invariants]({chart.name})"]
    return "\n".join(lines) + "\n"


def invariants_chart(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """One facet per pair: both sides' training loss by step, side b dashed over side a, with
    the verdict and the largest loss difference in the title; a pair that parted marks the
    step."""
    if not rows:
        return None
    from ftbench.report.charts import _facets, _save, _title

    fig, axes = _facets(len(rows), width=4.2, height=3.0)
    for ax, row in zip(axes, rows, strict=True):
        curves = row["comparison"]["curves"]
        for (label, losses), style in zip(curves.items(), ("-", "--"), strict=False):
            ax.plot(range(1, len(losses) + 1), losses, style, label=label, linewidth=1.4)
        loss = _divergence(row, "loss")
        if loss and loss.get("step"):
            ax.axvline(loss["step"], color="red", linewidth=0.8, linestyle=":")
        title = _title(f"{row['job']}: {row['pair']} ({row['status']})", 40)
        if loss:  # the curves overlap where they agree: say by how much
            bound = "bit for bit" if loss["bound"] == 0 else f"bound {loss['bound']:.0e}"
            title += f"\nlargest loss difference {_cell(loss)}, {bound}"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel("training loss", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, frameon=False)
    return _save(fig, "Invariants: training loss of both sides, step by step", path)
