"""Tables and charts made from run records alone, so they can be rebuilt offline at any time.

    ftbench report results/runs/<run-a> results/runs/<run-b> --out results/reports/latest
    ftbench report results/runs --out results/reports/latest      # every run under it

- the cases table: one row per record (the terminal summary of `pytest bench/`);
- the padding table, one per device, run, checkpoint, precision and method: samples/s (median
  and quartiles over the timed rounds), real tokens/s, padding efficiency, speedup over static,
  what the padding efficiencies alone predict, what the measured cost curve predicts, the
  ceiling (no padding at all, from the cost curve), the share of it reached, peak memory and
  utilisation;
- the hardware table: devices × padding strategies;
- the time-to-accuracy table.

Every figure is computed here from record fields, so each can be checked by hand. A record
without a field (older ftbench, a failed measurement) shows "-" where the field was needed.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from ftbench.core.cost import describe, predict
from ftbench.core.errors import ConfigError
from ftbench.core.formats import (
    fmt_num,
    fmt_rate,
    fmt_ratio,
    fmt_share,
    is_number,
    short_checkpoint,
    to_mib,
)
from ftbench.core.record import (
    CaseResult,
    device_label,
    is_busy,
    method_of,
    processes_of,
    task_of,
)
from ftbench.judge.throughput import busy_message
from ftbench.tasks import get_task

if TYPE_CHECKING:
    import pandas as pd

    from ftbench.core.record import CaseResult

CURVE_MISS = 0.10  # predicted ÷ measured further from 1 than this: the ceiling is unreliable
PADDING_ORDER = ("static", "dynamic", "dynamic-x8", "bucketed")
# A padding strategy is compared with static padding within the same group.
GROUP_KEYS = ("device", "run", "checkpoint", "precision", "method", "processes")
CEILING_NOTE = (
    "Speedup is over static padding in the same group. *Padding-only prediction*: the ratio of "
    "padding efficiencies, which assumes a step costs the same per padded token. *Cost-curve "
    "prediction* and *ceiling* come from a step-cost curve measured in the same run on a fresh "
    "model (one training step timed at several padded lengths, same batch size, fitted as "
    "t = a + b·B·L + c·B·L², since attention grows with the square of the length): the "
    "prediction is static padding's predicted time for a strategy's batches over their "
    "predicted time as padded; the ceiling is their predicted time padded to static length "
    "over their predicted time with no padding at all. *Share of ceiling*: speedup ÷ ceiling; "
    "'!' marks a share above 100% even with the strategy's lower quartile against static's "
    "upper one (beyond the run's noise). *Predicted ÷ measured*: the curve's time for the "
    "timed batches over the measured time (Trainer's own per-step work is not in the curve, so "
    "a little below 100% is expected, and the ceiling stays an upper bound); where it is off by "
    "more than 10% for any strategy of a group, the curve does not explain that group's steps "
    "and its ceiling and shares are marked '?' (unreliable). MFU is model FLOPs on real "
    "tokens over the device's peak: a GPU's datasheet peak, or a CPU's matmul peak measured in "
    "the run."
)


# -- re-measures ---------------------------------------------------------------------------------


def fold_remeasures(results: list[CaseResult]) -> list[tuple[CaseResult, str]]:
    """One result per run, case and seed: the last measurement, and a note when there were more.

    The throughput gate re-measures a case once before failing it; the re-measure is the number
    it judged, so it is the one shown, and the first is named in the note.
    """
    groups: dict[tuple, list[CaseResult]] = {}
    for r in results:
        groups.setdefault(_measurement_key(r), []).append(r)
    folded = []
    for group in groups.values():
        group = sorted(group, key=lambda r: r.created_at or "")
        last, note = group[-1], ""
        if len(group) > 1:
            first = _get(group[0].throughput, "train_samples_per_second")
            note = f"re-measured ({len(group)} measurements; first {fmt_rate(first)} samples/s)"
        folded.append((last, note))
    return folded


NO_SPEEDUP = "no speedup: static padding was timed on a busy device"


def busy_note(r: CaseResult) -> str:
    """'device busy (other processes used 0.9 of 2 cores)' for a measurement on a loaded device."""
    return busy_message(r) if is_busy(r) else ""


def _measurement_key(r: CaseResult) -> tuple:
    return (r.run_id, device_label(r), r.case_id, r.training.get("seed"))


def measurement_notes(results: list[CaseResult]) -> list[str]:
    """For the cases table: '' for a lone measurement, 're-measured' for one that another
    replaced, 're-measure N' for later ones; 'device busy' where other processes loaded it."""
    seen: dict[tuple, int] = {}
    order = sorted(range(len(results)), key=lambda i: results[i].created_at or "")
    total: dict[tuple, int] = {}
    for r in results:
        total[_measurement_key(r)] = total.get(_measurement_key(r), 0) + 1
    notes = [""] * len(results)
    for i in order:
        r = results[i]
        key = _measurement_key(r)
        seen[key] = seen.get(key, 0) + 1
        parts = []
        if seen[key] > 1:
            parts.append(f"re-measure {seen[key] - 1}")
        elif total[key] > 1:
            parts.append("re-measured")
        if is_busy(r):
            parts.insert(0, "device busy")
        notes[i] = ", ".join(parts)
    return notes


def superseded(results: list[CaseResult]) -> list[bool]:
    """True for a measurement a later re-measure of the same case replaced: the gate's
    verdict belongs to the last one."""
    last: dict[tuple, str] = {}
    for r in results:
        key = _measurement_key(r)
        last[key] = max(last.get(key, ""), r.created_at or "")
    return [(r.created_at or "") < last[_measurement_key(r)] for r in results]


# -- the cases table -----------------------------------------------------------------------------


ROLLOUT_NOTE = (
    "Timed steps only. Generation samples the completions (transformers' generate); scoring "
    "runs the reward functions and the log-probability passes; the optimizer step is the rest "
    "(forward, backward, update). Generated tokens/s counts completion tokens over generation "
    "time; optimizer tokens/s counts the prompt and completion tokens trained over the "
    "optimizer's time. A group whose completions all got one reward teaches nothing."
)


def cases_table(
    results: list[CaseResult],
    outcomes: list[str | None] | None = None,
    baselines: list[str | None] | None = None,
) -> pd.DataFrame:
    """One row per record: outcome, baseline verdict, the task's quality metrics (with the
    untrained model's in brackets, where measured), throughput, padding, memory.

    "training +MiB" is how far training raised memory above the loaded model: gradients,
    optimizer state and activations, where full fine-tuning, LoRA and QLoRA differ most.
    """
    import pandas as pd

    notes = measurement_notes(results)
    replaced = superseded(results)
    rows = []
    for i, r in enumerate(results):
        t = r.throughput or {}
        spread = t.get("samples_per_second_spread") or {}
        rows.append(
            {
                "case": r.case_id,
                "seed": fmt_num(r.training.get("seed"), 0),
                "outcome": (outcomes[i] if outcomes else None) or "",
                # The verdict is the last measurement's; an earlier one was not judged.
                "baseline": (baselines[i] if baselines and not replaced[i] else None) or "-",
                "quality": quality_summary(r),
                "samples/s": fmt_rate(t.get("train_samples_per_second")),  # 0.517, 43.3
                "median (IQR)": _spread(spread),
                "tokens/s": fmt_num(t.get("train_tokens_per_second"), 0),
                "padding eff.": fmt_num(r.padding.get("efficiency"), 3),
                "trainable": _share(r.method.get("trainable_share")),
                "peak MiB": " ".join(
                    filter(None, (fmt_num(to_mib(r.memory.get("peak_bytes")), 0), memory_kind(r)))
                ),
                "training +MiB": fmt_num(to_mib(r.memory.get("training_growth_bytes")), 0),
                "train s": fmt_num(r.times.get("train_seconds"), 1),
                "timed steps": fmt_num(t.get("timed_steps"), 0),
                "measurement": notes[i] or "-",
            }
        )
    return pd.DataFrame(rows)


def case_blocks(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The cases table for people, in two narrower tables: the verdict and quality of the cases
    that have any, then speed and memory of every case; columns with nothing in them left out."""
    keys = [c for c in ("case", "run", "seed") if c in table]
    verdict = [c for c in ("outcome", "baseline", "quality") if c in table]
    rest = [c for c in table.columns if c not in keys and c not in verdict]
    judged = table[(table["quality"] != "-") | (table["baseline"] != "-")] if len(table) else table
    blocks = [
        ("verdict and quality", drop_empty(judged[keys + verdict])),
        ("speed and memory", drop_empty(table[keys + rest])),
    ]
    return [(title, block) for title, block in blocks if len(block) and len(block.columns) > 2]


def quality_summary(result: CaseResult) -> str:
    """`accuracy 0.7794, F1 0.8510`; `eval loss 1.11 (untrained 1.52)`: the task's metrics."""
    if not result.accuracy_meaningful:
        return "-"
    try:
        metrics = get_task(task_of(result)).metrics
    except ConfigError:
        return "-"
    parts = []
    for metric in (m for m in metrics if m.quality):
        value = result.metrics.get(metric.name)
        if value is None:
            continue
        before = result.metrics.get(f"untrained_{metric.name}")
        part = f"{metric.column} {value:.4f}"
        parts.append(part + (f" (untrained {before:.4f})" if before is not None else ""))
    return ", ".join(parts) or "-"


def is_padding_comparison(result: CaseResult) -> bool:
    """A fixed-step case without evaluation: what the padding table compares (records that
    don't state it were made by the throughput job)."""
    recipe = result.training.get("recipe") or {}
    return not recipe["evaluate"] if "evaluate" in recipe else result.job == "throughput"


# -- the padding table ---------------------------------------------------------------------------


def round_rates(result: CaseResult) -> list[float]:
    """Samples/s of each timed round: consecutive steps, `steps_per_round` at a time."""
    return [samples / spent for spent, samples in timed_rounds(result) if spent > 0]


def timed_rounds(result: CaseResult) -> list[tuple[float, int]]:
    """(seconds, samples) of each timed round: consecutive steps, `steps_per_round` at a time,
    as pytest-benchmark's pedantic rounds time them in pytest's process."""
    t = result.throughput or {}
    size = max(1, int((result.training.get("recipe") or {}).get("steps_per_round") or 1))
    seconds, samples = t.get("step_seconds") or [], t.get("step_samples") or []
    return [
        (sum(seconds[start : start + size]), sum(samples[start : start + size]))
        for start in range(0, min(len(seconds), len(samples)) - size + 1, size)
    ]


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        value = values[0] if values else float("nan")
        return value, value, value
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def peak_label(source: str | None) -> str:
    """Where an MFU's peak comes from, in two words."""
    if not source:
        return "-"
    if "measured" in source:
        return "measured CPU peak"
    if "datasheet" in source:
        return "datasheet peak"
    return "-"


def padding_rows(results: list[CaseResult]) -> list[dict[str, Any]]:
    """The padding table as plain rows: one per fixed-step case, re-measures folded in."""
    timed = [r for r in results if is_padding_comparison(r)] or list(results)
    rows = [_padding_row(r, note) for r, note in fold_remeasures(timed)]
    for row in rows:
        static = next(
            (
                o
                for o in rows
                if o["padding"] == "static" and all(o[k] == row[k] for k in GROUP_KEYS)
            ),
            None,
        )
        row["speedup"] = row["speedup low"] = row["share of ceiling"] = None
        row["padding-only prediction"] = None
        row["above ceiling"] = False
        if static is None or not is_number(static["samples/s"]) or not is_number(row["samples/s"]):
            continue
        if row["busy"]:  # a loaded device's rate says nothing of padding; the note says so
            continue
        if static["busy"]:
            row["note"] = "; ".join(n for n in (row["note"], NO_SPEEDUP) if n)
            continue
        row["speedup"] = row["samples/s"] / static["samples/s"]
        # The noise: this strategy's lower quartile against static's upper one.
        low, high = row["q1"], static["q3"]
        row["speedup low"] = low / high if is_number(low) and is_number(high) else row["speedup"]
        if is_number(row["efficiency"]) and is_number(static["efficiency"]):
            row["padding-only prediction"] = row["efficiency"] / static["efficiency"]
        if is_number(row["ceiling"]):
            row["share of ceiling"] = row["speedup"] / row["ceiling"]
            row["above ceiling"] = row["speedup low"] / row["ceiling"] > 1
    _mark_unreliable_ceilings(rows)
    order = {name: i for i, name in enumerate(PADDING_ORDER)}
    rows.sort(key=lambda r: (*(str(r[k]) for k in GROUP_KEYS), order.get(r["padding"], 99)))
    return rows


def _mark_unreliable_ceilings(rows: list[dict[str, Any]]) -> None:
    """A ceiling is the curve's word on a group's batches; where the curve misses the steps it
    should explain by more than CURVE_MISS (issue 20: 68-124% on one host), the ceiling and
    the shares of it are marked unreliable, not shown as facts."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(str(row[k]) for k in GROUP_KEYS), []).append(row)
    for group in groups.values():
        ratios = [r["predicted ÷ measured"] for r in group if is_number(r["predicted ÷ measured"])]
        if not ratios or all(abs(ratio - 1) <= CURVE_MISS for ratio in ratios):
            for row in group:
                row["ceiling reliable"] = True
            continue
        missed = f"{min(ratios):.0%}-{max(ratios):.0%}" if len(ratios) > 1 else f"{ratios[0]:.0%}"
        for row in group:
            row["ceiling reliable"] = False
            if is_number(row["ceiling"]):  # a "!" stays: beating the curve is why it missed
                why = f"ceiling unreliable: the curve predicts {missed} of the measured steps"
                row["note"] = "; ".join(n for n in (row["note"], why) if n)


def _padding_row(r: CaseResult, note: str) -> dict[str, Any]:
    t, padding, load = r.throughput or {}, r.padding or {}, r.utilisation or {}
    rates = round_rates(r)
    q1, median, q3 = _quartiles(rates) if rates else (None, None, None)
    row = {
        "device": device_label(r),
        "run": r.run_id or "",
        "checkpoint": r.axes.get("checkpoint") or "",
        "precision": r.axes.get("precision") or "",
        "method": method_of(r),
        "processes": processes_of(r),
        "padding": r.axes.get("padding") or "",
        "note": "; ".join(n for n in (note, busy_note(r)) if n),
        "busy": is_busy(r),
        "samples/s": median if median is not None else t.get("train_samples_per_second"),
        "q1": q1,
        "q3": q3,
        "rounds": len(rates),
        "tokens/s": t.get("train_tokens_per_second"),
        "efficiency": padding.get("efficiency"),
        "cost-curve prediction": None,
        "ceiling": None,
        "predicted ÷ measured": None,
        "ceiling reliable": True,  # until the group's curve is found to miss its steps
        "peak MiB": to_mib(r.memory.get("peak_bytes")),
        "MFU": load.get("mfu"),
        "MFU peak": peak_label(load.get("peak_source")),
        "memory": memory_kind(r),
    }
    if not is_number(row["samples/s"]):
        row["note"] = row["note"] or "no throughput measured"
    coefficients = (r.cost_curve or {}).get("coefficients")
    batches = padding.get("batches")
    if coefficients and batches:
        p = predict(coefficients, batches, static_length=padding.get("max_length") or 128)
        if p["no_padding_seconds"] > 0 and p["padded_seconds"] > 0:
            row["ceiling"] = p["static_seconds"] / p["no_padding_seconds"]
            row["cost-curve prediction"] = p["static_seconds"] / p["padded_seconds"]
            measured = t.get("timed_seconds")
            if is_number(measured) and measured > 0:
                row["predicted ÷ measured"] = p["padded_seconds"] / measured
    return row


def padding_table(results: list[CaseResult]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(padding_rows(results))


def group_title(row: Any) -> str:
    processes = row.get("processes", 1) if hasattr(row, "get") else 1
    return (
        f"{row['device']} · {short_checkpoint(row['checkpoint'])} {row['precision']} "
        f"{row['method']}"
        + (f" · {processes} processes" if processes and processes > 1 else "")
        + f" · run {row['run'] or '-'}"
    )


def padding_sections(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The padding table for people: one table per group, units, the spread beside the median."""
    if table.empty:
        return []
    shown = table.assign(
        **{
            "samples/s (IQR)": [
                fmt_rate(m) + (f" ({fmt_rate(a)}-{fmt_rate(b)})" if is_number(a) and n > 1 else "")
                for m, a, b, n in zip(
                    table["samples/s"], table["q1"], table["q3"], table["rounds"], strict=True
                )
            ],
            "tokens/s": table["tokens/s"].map(fmt_rate),
            "padding eff.": table["efficiency"].map(lambda v: fmt_num(v, 3)),
            "speedup": table["speedup"].map(fmt_ratio),
            "padding-only prediction": table["padding-only prediction"].map(fmt_ratio),
            "cost-curve prediction": table["cost-curve prediction"].map(fmt_ratio),
            "ceiling": [
                fmt_ratio(v) + ("" if reliable else " ?")
                for v, reliable in zip(table["ceiling"], table["ceiling reliable"], strict=True)
            ],
            "share of ceiling": [
                fmt_share(v) + (" !" if above else "") + ("" if reliable else " ?")
                for v, above, reliable in zip(
                    table["share of ceiling"],
                    table["above ceiling"],
                    table["ceiling reliable"],
                    strict=True,
                )
            ],
            "predicted ÷ measured": table["predicted ÷ measured"].map(fmt_share),
            "peak MiB": table["peak MiB"].map(lambda v: fmt_num(v, 0)),
            "MFU": table["MFU"].map(lambda v: fmt_share(v, 1)),
            "predicted (padding, curve)": [
                f"{fmt_ratio(a)}, {fmt_ratio(b)}" if is_number(a) or is_number(b) else "-"
                for a, b in zip(
                    table["padding-only prediction"], table["cost-curve prediction"], strict=True
                )
            ],
        }
    )
    columns = [
        "padding", "note", "samples/s (IQR)", "tokens/s", "padding eff.", "speedup",
        "predicted (padding, curve)", "ceiling", "share of ceiling", "predicted ÷ measured",
        "peak MiB", "MFU",
    ]  # fmt: skip
    sections = []
    for _, group in shown.groupby(list(GROUP_KEYS), sort=False, dropna=False):
        block = drop_empty(group[columns])
        memory = set(group["memory"]) - {""}
        if len(memory) == 1 and "peak MiB" in block:  # RSS on a CPU, allocated on CUDA
            block = block.rename(columns={"peak MiB": f"peak {memory.pop()} MiB"})
        peaks = set(group["MFU peak"]) - {"-"}
        if len(peaks) == 1 and "MFU" in block:  # one peak for the group: say it once
            block = block.rename(columns={"MFU": f"MFU ({peaks.pop()})"})
        sections.append((group_title(group.iloc[0]), block))
    return sections


def drop_empty(table: pd.DataFrame) -> pd.DataFrame:
    """Without the columns that hold nothing in any row ("", "-" or missing)."""
    empty = [c for c in table.columns if all(v in ("", "-") or v != v for v in table[c])]
    return table.drop(columns=empty)


def memory_kind(result: CaseResult) -> str:
    """What "peak" measured: process RSS on a CPU (everything in the process), CUDA's
    allocated bytes on a GPU."""
    kind = result.memory.get("kind") or ""
    return "RSS" if kind.startswith("process_rss") else "CUDA" if kind.startswith("cuda") else ""


def cost_curves(results: list[CaseResult]) -> list[tuple[str, str]]:
    """(group, how its cost curve was measured and fitted) for each group that has one."""
    seen: dict[str, str] = {}
    for r in results:
        curve = r.cost_curve or {}
        row = {
            "device": device_label(r), "run": r.run_id or "", "precision": r.axes.get("precision"),
            "checkpoint": r.axes.get("checkpoint") or "", "method": method_of(r),
        }  # fmt: skip
        title = group_title(row)
        if title in seen:
            continue
        if curve.get("coefficients"):
            seen[title] = describe(curve)
        elif curve.get("error"):
            seen[title] = f"not measured: {curve['error']}"
    return list(seen.items())


# -- the hardware and time-to-accuracy tables ----------------------------------------------------


def hardware_table(results: list[CaseResult]) -> pd.DataFrame:
    """One row per device, run, checkpoint, precision and method; a column per strategy's
    samples/s and speedup over static; the best utilisation and what its peak is."""
    import pandas as pd

    table = padding_table(results)
    if table.empty:
        return table
    strategies = [p for p in PADDING_ORDER if p in set(table["padding"])]
    strategies += sorted(set(table["padding"]) - set(strategies))
    rows = []
    for _, group in table.groupby(list(GROUP_KEYS), sort=False, dropna=False):
        first = group.iloc[0]
        row: dict[str, Any] = {
            "device": first["device"], "run": first["run"],
            "checkpoint": short_checkpoint(first["checkpoint"]), "precision": first["precision"],
            "method": first["method"], "processes": first["processes"],
        }  # fmt: skip
        by_padding = {r["padding"]: r for _, r in group.iterrows()}
        for strategy in strategies:
            row[f"{strategy} samples/s"] = _value(by_padding.get(strategy), "samples/s")
        for strategy in strategies:
            row[f"{strategy} speedup"] = _value(by_padding.get(strategy), "speedup")
        mfus = [(r["MFU"], r["MFU peak"]) for r in by_padding.values() if is_number(r["MFU"])]
        best = max(mfus, default=(None, "-"))
        row["best MFU"], row["MFU peak"] = best
        rows.append(row)
    return pd.DataFrame(rows)


def format_hardware_table(table: pd.DataFrame) -> pd.DataFrame:
    """Rates to 3 significant figures, speedups as '1.94x', MFU as a percentage; without the
    columns that say nothing (static's speedup is 1.00x by definition; one process)."""
    shown = table.copy()
    for column in shown.columns:
        if column.endswith("samples/s"):
            shown[column] = shown[column].map(fmt_rate)
        elif column.endswith("speedup"):
            shown[column] = shown[column].map(fmt_ratio)
    if "best MFU" in shown:
        shown["best MFU"] = shown["best MFU"].map(lambda v: fmt_share(v, 1))
        peaks = set(shown["MFU peak"]) - {"-"}
        if len(peaks) == 1:
            shown = shown.drop(columns="MFU peak").rename(
                columns={"best MFU": f"best MFU ({peaks.pop()})"}
            )
    if set(shown.get("processes", [])) == {1}:
        shown = shown.drop(columns="processes")
    return drop_empty(shown.drop(columns=["static speedup"], errors="ignore"))


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
                "target accuracy": tta.get("target_accuracy"),
                "reached": "yes" if tta.get("reached") else "no",
                "train seconds to target": tta.get("train_seconds"),
                "samples to target": tta.get("samples"),
                "evaluations": len(tta.get("evaluations") or ()),
            }
        )
    return pd.DataFrame(rows)


def rollout_table(results: list[CaseResult]) -> pd.DataFrame:
    """Online RL (GRPO): where a step's time went, generation against the optimizer step, and
    how the rewards moved over the steps."""
    import pandas as pd

    rows = []
    for r in results:
        rollout = r.rollout
        if not rollout:
            continue
        t = r.throughput or {}
        first, last = rollout.get("first_reward"), rollout.get("last_reward")
        rows.append(
            {
                "device": device_label(r),
                "case": r.case_id,
                "timed steps": fmt_num(rollout.get("timed_steps"), 0),
                "generation share": _share(rollout.get("generation_share")),
                "generated tokens/s": fmt_num(t.get("generation_tokens_per_second"), 1),
                "optimizer tokens/s": fmt_num(t.get("optimizer_tokens_per_second"), 1),
                "s/step: generate, score, optimize": " / ".join(
                    fmt_num(_per_step(rollout, part), 1)
                    for part in ("generation", "scoring", "optimizer")
                ),
                "reward: first, mean, last step": " / ".join(
                    fmt_num(v, 3) for v in (first, rollout.get("mean_reward"), last)
                ),
                "groups without variance": _share(rollout.get("zero_variance_groups")),
                "clipped completions": _share(rollout.get("clipped_ratio")),
            }
        )
    return pd.DataFrame(rows)


def _per_step(rollout: dict[str, Any], part: str) -> float | None:
    seconds, steps = rollout.get(f"{part}_seconds"), rollout.get("timed_steps")
    return seconds / steps if is_number(seconds) and steps else None


# -- number formats ------------------------------------------------------------------------------


def _value(row: Any, key: str) -> Any:
    return None if row is None else row[key]


def _get(mapping: dict[str, Any] | None, key: str) -> Any:
    return (mapping or {}).get(key)


def _share(value: float | None) -> str:
    if not is_number(value):
        return "-"
    return f"{value:.0%}" if value >= 0.995 else f"{value:.2%}"


def _spread(spread: dict[str, float]) -> str:
    if not spread or not all(is_number(spread.get(k)) for k in ("median", "q1", "q3")):
        return "-"
    median, q1, q3 = (fmt_rate(spread[k]) for k in ("median", "q1", "q3"))
    return f"{median} ({q1}-{q3})"
