"""Padding, hardware and time-to-accuracy tables, recomputed by hand from record fields."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import pytest

from ftbench.cli import main
from ftbench.core.record import CaseResult, RunStore
from ftbench.env.devices import gpu_peak_flops
from ftbench.measure.mfu import training_flops_per_token, utilisation
from ftbench.report.tables import hardware_table, padding_rows, round_rates, time_to_accuracy_table

# Per-step seconds and samples of four timed rounds of 2 steps (batch 4), per strategy.
STEPS = {
    "static": ([0.50, 0.50, 0.40, 0.60, 0.52, 0.48, 0.50, 0.50], 0.42),
    "dynamic": ([0.30, 0.34, 0.32, 0.32, 0.30, 0.30, 0.36, 0.28], 0.66),
    "bucketed": ([0.24, 0.22, 0.20, 0.26, 0.22, 0.22, 0.21, 0.25], 0.98),
}


def _result(padding: str, device_name: str = "AMD EPYC", job: str = "throughput") -> CaseResult:
    seconds, efficiency = STEPS[padding]
    samples = [4] * len(seconds)
    padded = 4 * 128 * len(seconds)
    return CaseResult(
        case_id=f"{job}[m-{padding}-cpu-fp32]", job=job, profile="smoke",
        axes={"checkpoint": "minilm-l6", "padding": padding, "device": "cpu", "precision": "fp32"},
        metrics={"eval_accuracy": None, "eval_f1": None},
        throughput={
            "train_samples_per_second": sum(samples) / sum(seconds),
            "train_tokens_per_second": efficiency * padded / sum(seconds),
            "step_seconds": seconds, "step_samples": samples, "timed_steps": len(seconds),
        },
        padding={
            "real_tokens": int(efficiency * padded), "padded_tokens": padded,
            "efficiency": efficiency,
        },
        memory={"peak_bytes": 2 * 1024**3, "kind": "process_rss_sampled_per_step"}, times={},
        training={"seed": 42, "recipe": {"steps_per_round": 2}}, checkpoint={},
        environment={"device_name": device_name}, utilisation={"mfu": 0.1, "peak_source": "x"},
    )  # fmt: skip


def test_every_padding_figure_recomputes_by_hand() -> None:
    rows = {r["padding"]: r for r in padding_rows([_result(p) for p in STEPS])}

    def median_round_rate(padding: str) -> float:
        seconds = STEPS[padding][0]
        return statistics.median(8 / (seconds[i] + seconds[i + 1]) for i in range(0, 8, 2))

    static, bucketed = rows["static"], rows["bucketed"]
    assert static["samples/s"] == pytest.approx(median_round_rate("static"))
    assert static["rounds"] == 4
    assert bucketed["speedup"] == pytest.approx(
        median_round_rate("bucketed") / median_round_rate("static")
    )
    assert bucketed["padding-only prediction"] == pytest.approx(0.98 / 0.42)
    assert bucketed["ceiling"] is None  # no cost curve in these records
    assert bucketed["share of ceiling"] is None
    assert bucketed["tokens/s"] == pytest.approx(0.98 * 4 * 128 * 8 / sum(STEPS["bucketed"][0]))
    assert bucketed["peak MiB"] == 2048
    assert static["speedup"] == pytest.approx(1.0)
    assert [r["padding"] for r in padding_rows([_result(p) for p in STEPS])] == [
        "static", "dynamic", "bucketed",
    ]  # fmt: skip


def test_padding_is_compared_within_each_method() -> None:
    from dataclasses import replace

    lora = [
        replace(
            r,
            case_id=r.case_id.replace("]", "-lora]"),
            axes={**r.axes, "method": "lora"},
            throughput={
                **r.throughput,
                "step_seconds": [t / 2 for t in r.throughput["step_seconds"]],
            },
        )
        for r in (_result(p) for p in STEPS)
    ]
    rows = padding_rows([_result(p) for p in STEPS] + lora)

    assert [(r["method"], r["padding"]) for r in rows] == [
        ("full", "static"), ("full", "dynamic"), ("full", "bucketed"),
        ("lora", "static"), ("lora", "dynamic"), ("lora", "bucketed"),
    ]  # fmt: skip
    full, adapter = rows[2], rows[5]
    assert adapter["samples/s"] == pytest.approx(2 * full["samples/s"])
    assert adapter["speedup"] == pytest.approx(full["speedup"])  # against lora's own static
    assert len(hardware_table([_result(p) for p in STEPS] + lora)) == 2


def test_round_rates_follow_steps_per_round() -> None:
    result = _result("dynamic")
    assert round_rates(result) == pytest.approx([8 / 0.64, 8 / 0.64, 8 / 0.60, 8 / 0.64])


def test_hardware_table_merges_devices() -> None:
    results = [_result(p, "AMD EPYC") for p in STEPS] + [_result(p, "NVIDIA H100") for p in STEPS]
    table = hardware_table(results)
    assert len(table) == 2
    assert list(table.columns) == [
        "device", "run", "checkpoint", "precision", "method", "processes",
        "static samples/s", "dynamic samples/s", "bucketed samples/s",
        "static speedup", "dynamic speedup", "bucketed speedup", "best MFU", "MFU peak",
    ]  # fmt: skip


def test_flops_and_mfu_follow_the_palm_formula() -> None:
    # 6·N + 12·L·H·T with N = 10M, L = 6, H = 384, T = 50
    assert training_flops_per_token(10_000_000, 6, 384, 50) == 6e7 + 12 * 6 * 384 * 50
    load = utilisation(
        non_embedding_parameters=10_000_000, layers=6, hidden=384, real_tokens=5000, samples=100,
        seconds=2.0, peak_flops_per_second=1e12, peak_source="test",
    )  # fmt: skip
    assert load["mean_real_length"] == 50
    assert load["achieved_flops_per_second"] == pytest.approx((6e7 + 12 * 6 * 384 * 50) * 2500)
    assert load["mfu"] == pytest.approx(load["achieved_flops_per_second"] / 1e12)
    assert utilisation(
        non_embedding_parameters=1, layers=1, hidden=1, real_tokens=1, samples=1, seconds=1,
        peak_flops_per_second=None, peak_source="unknown",
    )["mfu"] is None  # fmt: skip


@pytest.mark.parametrize(
    ("name", "tflops"),
    [
        ("NVIDIA H100 80GB HBM3", 989),
        ("NVIDIA H100 PCIe", 756),
        ("NVIDIA H200", 989),
        ("NVIDIA A100-SXM4-80GB", 312),
        ("Tesla T4", None),
    ],
)
def test_gpu_peak_table(name: str, tflops: float | None) -> None:
    assert gpu_peak_flops(name) == (None if tflops is None else tflops * 1e12)


def test_time_to_accuracy_rows() -> None:
    result = _result("bucketed", job="finetune")
    result.time_to_accuracy = {
        "target_accuracy": 0.75, "reached": True, "train_seconds": 120.0, "samples": 3200,
        "step": 100, "evaluations": [{}, {}],
    }  # fmt: skip
    missed = _result("static", job="finetune")
    missed.time_to_accuracy = {**result.time_to_accuracy, "reached": False, "train_seconds": None}
    table = time_to_accuracy_table([result, missed, _result("dynamic")])
    assert list(table["reached"]) == ["yes", "no"]
    assert table["train seconds to target"].iloc[0] == 120.0


def test_report_command_merges_runs_into_files(tmp_path: Path, capsys) -> None:
    RunStore(tmp_path / "cpu").write(_result("static"))
    RunStore(tmp_path / "cpu").write(_result("bucketed"))
    RunStore(tmp_path / "gpu").write(_result("static", "NVIDIA H100"))
    RunStore(tmp_path / "gpu").write(_result("bucketed", "NVIDIA H100"))
    out = tmp_path / "report"

    assert main(["report", str(tmp_path / "cpu"), str(tmp_path / "gpu"), "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "cases.csv", "hardware.csv", "padding.csv", "report.md",
        "speedup_vs_ceiling.png", "throughput_by_padding.png",
    ]  # fmt: skip
    assert (out / "throughput_by_padding.png").read_bytes()[:4] == b"\x89PNG"
    assert "NVIDIA H100" in (out / "report.md").read_text()
    assert "speedup" in capsys.readouterr().out


def test_report_bad_inputs(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "holds no ftbench records" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()

    run = tmp_path / "run"
    RunStore(run).write(_result("static"))
    (run / "cut.json").write_text('{"schema_version": 1, "case_id": "thr')
    assert main(["report", str(run), "--out", str(tmp_path / "o")]) == 0
    assert "skipped" in capsys.readouterr().err

    (run / "new.json").write_text(json.dumps({"schema_version": 99, "case_id": "x"}))
    assert main(["report", str(run), "--out", str(tmp_path / "o2")]) == 2
    assert "schema version 99" in capsys.readouterr().err
    (run / "new.json").unlink()

    if os.geteuid() != 0:  # root can write anywhere, so only a user sees this refusal
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert main(["report", str(run), "--out", str(locked)]) == 2
    assert main(["report", str(run), "--out", "/proc/ftbench-report"]) == 2
    assert "can't write to /proc/ftbench-report" in capsys.readouterr().err


# -- the report people read: several runs, re-measures, failures, older records -----------------

CURVE = {
    "batch_size": 4, "lengths": [16, 64, 128], "step_seconds": [0.06, 0.12, 0.25],
    "steps_per_length": 3, "warmup_steps": 1, "coefficients": {"a": 0.082, "b": 6.1e-4, "c": 2e-6},
    "max_relative_error": 0.02,
}  # fmt: skip
LENGTHS = {"static": 128, "dynamic": 70, "bucketed": 56}


def _measured(padding: str, run: str, rate_scale: float = 1.0, **changes) -> CaseResult:
    """A throughput record with its timed batches and cost curve, as pytest bench/ writes it."""
    from dataclasses import replace

    result = _result(padding)
    length = LENGTHS[padding]
    real = int(STEPS[padding][1] * 4 * length)  # real tokens of a batch of 4, equal lengths
    result.padding["batches"] = [[4, length, real, real * real // 4]] * 8
    result.padding["max_length"] = 128
    result.cost_curve = CURVE
    result.throughput["timed_seconds"] = sum(STEPS[padding][0])
    result.throughput["step_seconds"] = [s / rate_scale for s in STEPS[padding][0]]
    result.throughput["train_samples_per_second"] *= rate_scale
    result.utilisation = {"mfu": 0.123, "peak_source": "measured fp32 matmul peak of this CPU"}
    result.memory["peak_bytes"] = 2_800_000_000
    return replace(result, run_id=run, **changes)


def _write_run(root: Path, name: str, results: list[CaseResult]) -> Path:
    store = RunStore(root / name)
    for result in results:
        store.write(result)
    return store.directory


@pytest.mark.parametrize("runs", [1, 3, 6])
def test_report_stays_readable_over_many_runs(tmp_path: Path, runs: int, capsys) -> None:
    for i in range(runs):
        results = [_measured(p, f"run{i}", rate_scale=1 + i / 10) for p in STEPS]
        _write_run(tmp_path / "runs", f"2026112{i}-000000-aaaaa{i}", results)
    out = tmp_path / "report"

    assert main(["report", str(tmp_path / "runs"), "--out", str(out)]) == 0  # a folder of runs
    assert sorted(p.name for p in out.iterdir()) == [
        "cases.csv", "hardware.csv", "padding.csv", "report.md",
        "speedup_vs_ceiling.png", "throughput_by_padding.png",
    ]  # fmt: skip
    for chart in ("speedup_vs_ceiling.png", "throughput_by_padding.png"):
        assert (out / chart).read_bytes()[:4] == b"\x89PNG"
    text = (out / "report.md").read_text()
    assert text.count("\n### AMD EPYC (cpu) · minilm-l6 fp32 full · run 2026112") == runs
    for unreadable in ("('", "e+0", "nan", "None"):
        assert unreadable not in text
    assert "| padding   | samples/s (IQR)" in text
    assert "| static    | 8.00 (8.00-8.00)" in text  # rates to 3 significant figures
    assert "| peak RSS MiB   | MFU (measured CPU peak)   |" in text  # what each column measured
    assert "| 2670           | 12.3%                     |" in text  # MiB as integers; CPU MFU
    assert "| 2670 RSS   |" in text  # the cases table names RSS per row
    assert "static speedup" not in text  # 1.00x by definition: not a column
    assert "| static samples/s   | dynamic samples/s   |" in text  # flat headers
    assert "- AMD EPYC (cpu) · minilm-l6 fp32 full · run 2026112" in text  # the cost curve
    assert "fit a = 82.0 ms, b = 610 µs/token, c = 2000 ns/token²" in text
    assert "![speedup_vs_ceiling](speedup_vs_ceiling.png)" in text
    printed = capsys.readouterr().out
    assert "nan" not in printed
    assert "share of ceiling" in printed


def test_report_over_remeasures_failures_missing_static_and_old_records(
    tmp_path: Path, capsys
) -> None:
    from dataclasses import replace

    # A: static re-measured by the gate (the later record is the one it judged).
    first = _measured("static", "a", rate_scale=0.5, created_at="2026-11-28T10:00:00+0000")
    again = _measured("static", "a", created_at="2026-11-28T10:05:00+0000")
    a = _write_run(tmp_path, "a", [first, again, _measured("dynamic", "a")])
    # B: no static padding to compare with.
    b = _write_run(tmp_path, "b", [_measured("dynamic", "b"), _measured("bucketed", "b")])
    # C: a case whose measurement failed part-way: no timed steps, no rates, no memory.
    broken = replace(
        _result("static"), run_id="c", utilisation={}, memory={},
        throughput={"train_samples_per_second": None, "train_tokens_per_second": None},
        padding={"real_tokens": 0, "padded_tokens": 0, "efficiency": None},
    )  # fmt: skip
    c = _write_run(tmp_path, "c", [broken, _measured("dynamic", "c")])
    # D: a version-1 record from before the method axis, cost curves and utilisation.
    d = tmp_path / "d"
    d.mkdir()
    old = _result("dynamic").to_record()
    for key in ("cost_curve", "utilisation", "method", "time_to_accuracy", "notes", "run_id"):
        old.pop(key)
    old["schema_version"] = 1
    (d / "old.json").write_text(json.dumps(old))
    out = tmp_path / "report"

    assert main(["report", str(a), str(b), str(c), str(d), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "1 record(s) of an older schema" in captured.err
    assert "nan" not in captured.out
    text = (out / "report.md").read_text()
    assert "nan" not in text
    assert "None" not in text
    rows = {(r["run"], r["padding"]): r for r in padding_rows(load_all(a, b, c, d))}
    folded = rows[("a", "static")]
    assert folded["note"] == "re-measured (2 measurements; first 4.00 samples/s)"
    assert folded["samples/s"] == pytest.approx(8.0)  # the re-measure counts
    assert rows[("b", "dynamic")]["speedup"] is None
    assert rows[("c", "dynamic")]["speedup"] is None  # its static has no rate
    assert rows[("d", "dynamic")]["method"] == "full"
    assert "re-measured (2 measurements" in text
    assert "| re-measure 1  |" in text  # the cases table marks the later record
    run_b = text.split("run b\n")[1].split("###")[0]
    assert "| dynamic   | 12.5 (12.5-12.7)  | 1070       | 0.660          |" in run_b
    assert "speedup" not in run_b  # no static padding in run b: nothing to compare with
    run_c = text.split("run c\n")[1].split("###")[0]
    assert "| static    | no throughput measured | -                 |" in run_c


def load_all(*directories: Path) -> list[CaseResult]:
    from ftbench.core.record import load_runs

    return load_runs(list(directories))[0]


def test_rollout_rows_split_generation_from_the_optimizer_step(tmp_path: Path) -> None:
    from ftbench.report.sections import markdown_report
    from ftbench.report.tables import quality_summary, rollout_table

    result = _result("dynamic", job="grpo")
    result.axes["task"] = "grpo"
    result.metrics = {"eval_reward": 0.5, "untrained_eval_reward": 0.25, "eval_reward_gain": 0.25}
    result.throughput.update(generation_tokens_per_second=120.0, optimizer_tokens_per_second=400.0)
    result.rollout = {
        "timed_steps": 4, "generation_seconds": 40.0, "scoring_seconds": 2.0,
        "optimizer_seconds": 18.0, "generation_share": 0.667, "first_reward": 0.125,
        "mean_reward": 0.3, "last_reward": 0.5, "zero_variance_groups": 0.25,
        "clipped_ratio": 0.5,
    }  # fmt: skip
    table = rollout_table([result, _result("static")])

    assert len(table) == 1
    row = table.iloc[0]
    assert row["generated tokens/s"] == "120.0"
    assert row["optimizer tokens/s"] == "400.0"
    assert row["s/step: generate, score, optimize"] == "10.0 / 0.5 / 4.5"
    assert row["reward: first, mean, last step"] == "0.125 / 0.300 / 0.500"
    # Throughput metrics of a task are not quality: they stay out of the quality column.
    assert "tokens/s" not in quality_summary(result)
    assert "reward 0.5000 (untrained 0.2500)" in quality_summary(result)
    assert "## Online RL" in markdown_report([result])


def test_a_busy_measurement_is_marked_and_compared_with_nothing(tmp_path: Path) -> None:
    """A loaded device: static timed while another process ran, dynamic re-measured."""
    from ftbench.report.tables import cases_table

    busy = {"contention": {"busy": True, "other_cores": 0.9, "cpu_count": 2}}
    static = _measured("static", "e", rate_scale=0.6, machine=busy)
    first = _measured("dynamic", "e", rate_scale=0.6, machine=busy, created_at="2026-11-29T1")
    again = _measured("dynamic", "e", created_at="2026-11-29T2")
    results = load_all(_write_run(tmp_path, "e", [static, first, again]))
    rows = {r["padding"]: r for r in padding_rows(results)}
    assert rows["static"]["note"] == "device busy (other processes used 0.9 of 2 cores)"
    assert rows["dynamic"]["speedup"] is None  # against a loaded static: no speedup at all
    assert "no speedup: static padding was timed on a busy device" in rows["dynamic"]["note"]

    table = cases_table(results, baselines=["not gated: device busy (...)", "within bounds"] * 2)
    notes = dict(zip(table["samples/s"], table["measurement"], strict=True))
    assert notes == {
        "4.80": "device busy",
        "7.62": "device busy, re-measured",
        "12.7": "re-measure 1",
    }
    verdicts = dict(zip(table["samples/s"], table["baseline"], strict=True))
    assert verdicts["7.62"] == "-"  # the gate judged the re-measure, not this one
