"""Padding, hardware and time-to-accuracy tables, recomputed by hand from record fields."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import pytest

from ftbench.cli import main
from ftbench.devices import gpu_peak_flops
from ftbench.metrics import training_flops_per_token, utilisation
from ftbench.report import hardware_table, padding_rows, round_rates, time_to_accuracy_table
from ftbench.results import CaseResult, RunStore

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
    assert bucketed["ceiling"] == pytest.approx(0.98 / 0.42)
    assert bucketed["share of ceiling"] == pytest.approx(bucketed["speedup"] / (0.98 / 0.42))
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
    assert set(table["samples/s"].columns) == {"static", "dynamic", "bucketed"}


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
    assert "share of ceiling" in capsys.readouterr().out


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

    (run / "new.json").write_text(json.dumps({"schema_version": 2, "case_id": "x"}))
    assert main(["report", str(run), "--out", str(tmp_path / "o2")]) == 2
    assert "schema version 2" in capsys.readouterr().err
    (run / "new.json").unlink()

    if os.geteuid() != 0:  # root can write anywhere, so only a user sees this refusal
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert main(["report", str(run), "--out", str(locked)]) == 2
    assert main(["report", str(run), "--out", "/proc/ftbench-report"]) == 2
    assert "can't write to /proc/ftbench-report" in capsys.readouterr().err
