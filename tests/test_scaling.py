"""N processes against one: merged rank windows, efficiency, the accuracy check, the table."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ftbench.core.record import CaseResult
from ftbench.env.distributed import merge_contention, merge_windows
from ftbench.judge.scaling import (
    efficiency,
    loss_ratio,
    note_efficiency,
    one_process_of,
    quality_verdicts,
)
from ftbench.report.scaling import scaling_rows, scaling_sections
from ftbench.tasks import tolerances_with


def window(seconds: list[float], samples: int, real: int) -> dict:
    return {
        "warmup_steps": 1, "timed_steps": len(seconds), "timed_samples": samples * len(seconds),
        "timed_seconds": sum(seconds), "train_samples_per_second": samples * len(seconds)
        / sum(seconds), "train_tokens_per_second": real / sum(seconds),
        "train_padded_tokens_per_second": 2 * real / sum(seconds),
        "step_seconds": seconds, "step_samples": [samples] * len(seconds),
        "step_times_synchronized": True, "real_tokens": real, "padded_tokens": 2 * real,
        "batches": [[samples, 10, real // len(seconds), 0]] * len(seconds),
    }  # fmt: skip


def test_rank_windows_merge_into_global_figures() -> None:
    ranks = [
        {"rank": 0, "host": "a", "window": window([0.5, 0.4], samples=4, real=400)},
        {"rank": 1, "host": "a", "window": window([0.4, 0.6], samples=4, real=300)},
    ]
    merged = merge_windows(ranks)
    assert merged["step_seconds"] == [0.5, 0.6]  # each step as long as its slowest rank
    assert merged["step_samples"] == [8, 8]  # and as big as all ranks together
    assert merged["timed_samples"] == 16
    assert merged["timed_seconds"] == pytest.approx(1.0)  # the longer window
    assert merged["train_samples_per_second"] == pytest.approx(16.0)
    assert merged["train_tokens_per_second"] == pytest.approx(700.0)
    assert merge_windows(ranks[:1]) == ranks[0]["window"]  # one process: unchanged


def test_sibling_ranks_are_not_other_load() -> None:
    figures = {"own_cores": 1.0, "other_cores": 0.9, "cpu_count": 2, "busy": True}
    ranks = [
        {"host": "a", "contention": figures},
        {"host": "a", "contention": {**figures, "own_cores": 0.85}},
    ]
    merged = merge_contention(ranks)
    assert merged["other_cores"] == pytest.approx(0.05)
    assert merged["busy"] is False


def result(processes: int, rate: float, accuracy: float | None = 0.80, run: str = "r1",
           seed: int = 42) -> CaseResult:  # fmt: skip
    suffix = f"-{processes}proc" if processes > 1 else ""
    axes = {"task": "mrpc", "checkpoint": "minilm-l6", "padding": "dynamic", "device": "cpu",
            "precision": "fp32", "method": "full"}  # fmt: skip
    if processes > 1:
        axes["processes"] = processes
    return CaseResult(
        case_id=f"finetune[minilm-l6-dynamic-cpu-fp32-full{suffix}]", job="finetune",
        profile="smoke", axes=axes,
        metrics={"eval_accuracy": accuracy, "eval_f1": 0.85},
        throughput={"train_samples_per_second": rate, "train_tokens_per_second": 40 * rate},
        padding={}, memory={}, times={},
        training={"seed": seed, "recipe": {"batch_size": 32}}, checkpoint={},
        environment={"device_name": "Xeon"}, run_id=run,
        distributed={"processes": processes, "per_device_batch_size": 32 // processes,
                     "global_batch_size": 32, "backend": "gloo" if processes > 1 else None},
    )  # fmt: skip


def test_efficiency_pairs_with_one_process_of_the_same_run() -> None:
    one, two = result(1, 20.0), result(2, 30.0)
    other_run = result(1, 40.0, run="r0")
    assert one_process_of(two, [other_run, one, two]) is one
    assert efficiency(two, one) == pytest.approx(30.0 / (2 * 20.0))
    assert one_process_of(two, [other_run]) is None
    assert one_process_of(result(2, 30.0, seed=43), [one]) is None


def test_the_record_keeps_its_efficiency_when_one_process_ran_first() -> None:
    two = result(2, 30.0)
    note_efficiency(two, result(1, 20.0))
    assert two.distributed["scaling_efficiency"] == pytest.approx(0.75)
    assert two.distributed["one_process_samples_per_second"] == 20.0
    alone = result(2, 30.0)
    note_efficiency(alone, None)
    assert "scaling_efficiency" not in alone.distributed


def test_the_scaling_table_reads_like_the_issue() -> None:
    rows = scaling_rows([result(2, 30.0, accuracy=0.79), result(1, 20.0)])
    assert [r["processes"] for r in rows] == [1, 2]
    two = rows[1]
    assert two["per-device batch"] == 16
    assert two["global batch"] == 32
    assert two["samples/s per process"] == pytest.approx(15.0)
    assert two["tokens/s per process"] == pytest.approx(600.0)
    assert two["efficiency"] == pytest.approx(0.75)
    assert two["vs 1 process"] == "-0.0100"
    blocks = scaling_sections(__import__("pandas").DataFrame(rows))
    text = "\n".join(f"{title}\n{block.to_string(index=False)}" for title, block in blocks)
    assert "efficiency" in text
    assert "75%" in text
    assert "gloo" in text
    assert scaling_rows([result(1, 20.0)]) == []  # nothing to scale: no table


def test_quality_is_held_to_the_accuracy_gate() -> None:
    tolerances = tolerances_with(None)
    one = result(1, 20.0, accuracy=0.80)
    close = quality_verdicts(result(2, 30.0, accuracy=0.795), one, ["eval_accuracy"], tolerances)
    assert close[0].passed  # within max(3σ, 0.01)
    far = quality_verdicts(result(2, 30.0, accuracy=0.78), one, ["eval_accuracy"], tolerances)
    assert not far[0].passed
    assert "1 process 0.8000" in far[0].how
    wide = quality_verdicts(
        result(2, 30.0, accuracy=0.78), one, ["eval_accuracy"], tolerances, {"eval_accuracy": 0.01}
    )
    assert wide[0].passed  # 3σ of the one-process baseline's seeds
    meaningless = replace(result(2, 30.0), accuracy_meaningful=False)
    assert quality_verdicts(meaningless, one, ["eval_accuracy"], tolerances) == []


def test_a_loss_scaled_by_the_number_of_processes_shows() -> None:
    one, two = result(1, 20.0), result(2, 30.0)
    one.metrics["eval_loss"], two.metrics["eval_loss"] = 0.5957, 1.1992
    assert loss_ratio(two, one) == pytest.approx(2.013, abs=1e-3)
    assert loss_ratio(two, None) is None
