"""Tables and charts made from run records alone, so they can be rebuilt offline at any time.

    ftbench report results/runs/<run-a> results/runs/<run-b> --out results/reports/latest

- the cases table: one row per case (the terminal summary of `pytest bench/`);
- the padding table, per device: samples/s (median and quartiles over the timed rounds), real
  tokens/s, padding efficiency, speedup over static, the ceiling that the padding efficiencies
  alone predict, the share of that ceiling reached, peak memory and utilisation;
- the hardware table: devices × padding strategies;
- the time-to-accuracy table.

Every figure is computed here from record fields, so each can be checked by hand.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from ftbench.results import CaseResult

MIB = 1024 * 1024
PADDING_ORDER = ("static", "dynamic", "dynamic-x8", "bucketed")
# A padding strategy is compared with static padding within the same group.
GROUP_KEYS = ("device", "run", "checkpoint", "precision", "method")


def method_of(result: CaseResult) -> str:
    """full, lora or qlora; records from before the method axis were full fine-tunes."""
    return result.axes.get("method") or "full"


def cases_table(
    results: list[CaseResult],
    outcomes: list[str | None] | None = None,
    baselines: list[str | None] | None = None,
) -> pd.DataFrame:
    """One row per case: outcome, baseline verdict, accuracy, F1, throughput, padding, memory.

    "training +MiB" is how far training raised memory above the loaded model: gradients,
    optimizer state and activations, where full fine-tuning, LoRA and QLoRA differ most.
    """
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
                "trainable": _share((r.method or {}).get("trainable_share")),
                "peak MiB": _num((r.memory.get("peak_bytes") or 0) / MIB, 0),
                "training +MiB": _num(_mib(r.memory.get("training_growth_bytes")), 0),
                "train s": _num(r.times.get("train_seconds"), 1),
                "timed steps": t["timed_steps"],
            }
        )
    return pd.DataFrame(rows)


# -- the padding table ---------------------------------------------------------------------------


def round_rates(result: CaseResult) -> list[float]:
    """Samples/s of each timed round: consecutive steps, `steps_per_round` at a time."""
    t = result.throughput
    size = max(1, int((result.training.get("recipe") or {}).get("steps_per_round") or 1))
    seconds, samples = t.get("step_seconds") or [], t.get("step_samples") or []
    rates = []
    for start in range(0, len(seconds) - size + 1, size):
        spent = sum(seconds[start : start + size])
        if spent > 0:
            rates.append(sum(samples[start : start + size]) / spent)
    return rates


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        value = values[0] if values else float("nan")
        return value, value, value
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def device_label(result: CaseResult) -> str:
    env = result.environment
    return f"{env.get('device_name') or result.axes.get('device')} ({result.axes.get('device')})"


def padding_rows(results: list[CaseResult]) -> list[dict[str, Any]]:
    """The padding table as plain rows: one per fixed-step case, grouped by device."""
    timed = [r for r in results if r.job == "throughput"] or list(results)
    rows = []
    for r in timed:
        rates = round_rates(r)
        q1, median, q3 = _quartiles(rates) if rates else (None, None, None)
        rows.append(
            {
                "device": device_label(r),
                "run": r.run_id or "",
                "checkpoint": r.axes.get("checkpoint"),
                "precision": r.axes.get("precision"),
                "method": method_of(r),
                "padding": r.axes.get("padding"),
                "samples/s": median
                if median is not None
                else r.throughput["train_samples_per_second"],
                "q1": q1,
                "q3": q3,
                "rounds": len(rates),
                "tokens/s": r.throughput["train_tokens_per_second"],
                "efficiency": r.padding.get("efficiency"),
                "peak MiB": (r.memory.get("peak_bytes") or 0) / MIB,
                "MFU": (r.utilisation or {}).get("mfu"),
                "MFU peak": (r.utilisation or {}).get("peak_source"),
            }
        )
    for row in rows:
        static = next(
            (
                o
                for o in rows
                if o["padding"] == "static" and all(o[k] == row[k] for k in GROUP_KEYS)
            ),
            None,
        )
        if static is None:
            row["speedup"] = row["ceiling"] = row["share of ceiling"] = None
            continue
        row["speedup"] = row["samples/s"] / static["samples/s"]
        row["ceiling"] = row["efficiency"] / static["efficiency"]
        row["share of ceiling"] = row["speedup"] / row["ceiling"]
    order = {name: i for i, name in enumerate(PADDING_ORDER)}
    rows.sort(
        key=lambda r: (
            r["device"],
            r["run"],
            r["checkpoint"],
            r["precision"],
            r["method"],
            order.get(r["padding"], 99),
        )
    )
    return rows


def padding_table(results: list[CaseResult]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(padding_rows(results))


def format_padding_table(table: pd.DataFrame) -> str:
    """The padding table for people: units, and the spread next to the median."""
    if table.empty:
        return ""
    shown = table.assign(
        **{
            "samples/s (IQR)": [
                f"{m:.1f}" + (f" ({a:.1f}-{b:.1f})" if a is not None and n > 1 else "")
                for m, a, b, n in zip(
                    table["samples/s"], table["q1"], table["q3"], table["rounds"], strict=True
                )
            ],
            "tokens/s": table["tokens/s"].map(lambda v: f"{v:.0f}"),
            "efficiency": table["efficiency"].map(lambda v: f"{v:.3f}"),
            "speedup": table["speedup"].map(lambda v: "-" if v is None else f"{v:.2f}x"),
            "ceiling": table["ceiling"].map(lambda v: "-" if v is None else f"{v:.2f}x"),
            "share of ceiling": table["share of ceiling"].map(
                lambda v: "-" if v is None else f"{v:.0%}"
            ),
            "peak MiB": table["peak MiB"].map(lambda v: f"{v:.0f}"),
            "MFU": table["MFU"].map(lambda v: "-" if v is None else f"{v:.1%}"),
        }
    )
    columns = [
        "device", "run", "checkpoint", "precision", "method", "padding", "samples/s (IQR)",
        "tokens/s",
        "efficiency", "speedup", "ceiling", "share of ceiling", "peak MiB", "MFU",
    ]  # fmt: skip
    return shown[columns].to_string(index=False)


# -- the hardware and time-to-accuracy tables ----------------------------------------------------


def hardware_table(results: list[CaseResult]) -> pd.DataFrame:
    """Devices × padding strategies: samples/s, and speedup over static on the same device."""
    import pandas as pd

    rows = padding_table(results)
    if rows.empty:
        return rows
    rows["row"] = (
        rows["device"] + " " + rows["run"] + " " + rows["checkpoint"].map(_short) + " "
        + rows["precision"] + " " + rows["method"]
    )  # fmt: skip
    rate = rows.pivot_table(index="row", columns="padding", values="samples/s", aggfunc="median")
    speed = rows.pivot_table(index="row", columns="padding", values="speedup", aggfunc="median")
    columns = [p for p in PADDING_ORDER if p in rate.columns]
    rate, speed = rate[columns], speed.reindex(columns=columns)
    return pd.concat({"samples/s": rate, "speedup vs static": speed}, axis=1)


def time_to_accuracy_table(results: list[CaseResult]) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for r in results:
        tta = r.time_to_accuracy
        if not tta:
            continue
        rows.append(
            {
                "device": device_label(r),
                "case": r.case_id,
                "padding": r.axes.get("padding"),
                "target accuracy": tta["target_accuracy"],
                "reached": "yes" if tta["reached"] else "no",
                "train seconds to target": tta["train_seconds"],
                "samples to target": tta["samples"],
                "evaluations": len(tta["evaluations"]),
            }
        )
    return pd.DataFrame(rows)


def _mib(value: float | None) -> float | None:
    return None if value is None else value / MIB


def _share(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0%}" if value >= 0.995 else f"{value:.2%}"


def _short(spec: str) -> str:
    from ftbench.checkpoints import checkpoint_name

    return checkpoint_name(spec)


def _num(value: Any, digits: int, meaningful: bool = True) -> str:
    if value is None:
        return "-"
    text = f"{value:.{digits}f}"
    return text if meaningful else f"({text})"


def _spread(spread: dict[str, float]) -> str:
    if not spread:
        return "-"
    return f"{spread['median']:.1f} ({spread['q1']:.1f}-{spread['q3']:.1f})"


# -- the report command --------------------------------------------------------------------------


def load_runs(directories: list[Path]) -> tuple[list[CaseResult], list[str]]:
    from ftbench.errors import FtbenchError
    from ftbench.results import CaseResult, read_run

    results, notes = [], []
    for directory in directories:
        records, skipped = read_run(Path(directory))
        notes += skipped
        for record in records:
            result = CaseResult.from_record(record)
            result.run_id = result.run_id or Path(directory).name
            results.append(result)
    if not results:
        raise FtbenchError("no records to report on")
    return results, notes


def write_report(results: list[CaseResult], out: Path) -> list[Path]:
    """Markdown, CSV and PNG charts in `out`, all made first and then moved in together."""
    import tempfile

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".ftbench-report-", dir=out))
    try:
        made = _render(results, staging)
        final = []
        for path in made:
            target = out / path.name
            path.replace(target)
            final.append(target)
        return final
    finally:
        for leftover in staging.glob("*"):
            leftover.unlink()
        staging.rmdir()


def _render(results: list[CaseResult], directory: Path) -> list[Path]:
    padding = padding_table(results)
    hardware = hardware_table(results)
    tta = time_to_accuracy_table(results)
    cases = cases_table(results)
    made = []
    for name, table in (
        ("cases", cases),
        ("padding", padding),
        ("hardware", hardware),
        ("time_to_accuracy", tta),
    ):
        if table.empty:
            continue
        path = directory / f"{name}.csv"
        table.to_csv(path, index=name == "hardware")
        made.append(path)
    markdown = ["# ftbench report", ""]
    sections = (
        ("Padding strategies", _markdown(padding.drop(columns=["q1", "q3"], errors="ignore"))),
        ("Hardware", hardware.to_markdown(floatfmt=".2f") if not hardware.empty else ""),
        ("Time to accuracy", _markdown(tta)),
        ("Cases", _markdown(cases)),
    )
    for title, body in sections:
        if body:
            markdown += [f"## {title}", "", body, ""]
    if not padding.empty:
        made += _charts(padding, directory)
        markdown += ["## Charts", ""] + [
            f"![{p.stem}]({p.name})" for p in made if p.suffix == ".png"
        ]
    path = directory / "report.md"
    path.write_text("\n".join(markdown) + "\n", encoding="utf-8")
    made.append(path)
    return made


def _markdown(table: pd.DataFrame) -> str:
    return "" if table.empty else table.to_markdown(index=False, floatfmt=".3g")


def _charts(padding: pd.DataFrame, directory: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only; never a window
    import matplotlib.pyplot as plt

    padding = padding.assign(
        label=padding["device"]
        + "\n"
        + padding["run"]
        + "\n"
        + padding["checkpoint"].map(_short)
        + " "
        + padding["precision"]
        + " "
        + padding["method"]
    )
    groups = list(dict.fromkeys(padding["label"]))
    strategies = [p for p in PADDING_ORDER if p in set(padding["padding"])]
    width = 0.8 / max(len(strategies), 1)
    made = []

    fig, ax = plt.subplots(figsize=(max(6, 2.5 * len(groups)), 4.5))
    for i, strategy in enumerate(strategies):
        rows = padding[padding["padding"] == strategy].set_index("label").reindex(groups)
        xs = [g + i * width for g in range(len(groups))]
        errors = [
            [
                m - a if a == a and a is not None else 0
                for m, a in zip(rows["samples/s"], rows["q1"], strict=True)
            ],
            [
                b - m if b == b and b is not None else 0
                for m, b in zip(rows["samples/s"], rows["q3"], strict=True)
            ],
        ]
        ax.bar(xs, rows["samples/s"], width, yerr=errors, capsize=3, label=strategy)
    ax.set_xticks([g + width * (len(strategies) - 1) / 2 for g in range(len(groups))], groups)
    made.append(
        _finish(
            fig, ax, "train samples/s (median, IQR over rounds)",
            "Training throughput by padding strategy", directory / "throughput_by_padding.png",
        )
    )  # fmt: skip

    with_ceiling = padding.dropna(subset=["speedup"])
    if not with_ceiling.empty:
        fig, ax = plt.subplots(figsize=(max(6, 2.5 * len(groups)), 4.5))
        labels = [f"{r.label}\n{r.padding}" for r in with_ceiling.itertuples()]
        xs = range(len(labels))
        ax.bar([x - 0.2 for x in xs], with_ceiling["speedup"], 0.4, label="measured speedup")
        ax.bar(
            [x + 0.2 for x in xs], with_ceiling["ceiling"], 0.4, label="ceiling (efficiency ratio)"
        )
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set_xticks(list(xs), labels, fontsize=7)
        made.append(
            _finish(
                fig, ax, "× static padding", "Speedup over static padding, against its ceiling",
                directory / "speedup_vs_ceiling.png",
            )
        )  # fmt: skip
    return made


def _finish(fig: Any, ax: Any, ylabel: str, title: str, path: Path) -> Path:
    import matplotlib.pyplot as plt

    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
