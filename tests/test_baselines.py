"""Baseline files and gate arithmetic, without training anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftbench.core.errors import BaselineError, ConfigError
from ftbench.core.record import CaseResult
from ftbench.judge.baselines import (
    BaselineStore,
    entry_from_results,
    gate,
    metric_stats,
    recipe_differences,
    regression_message,
    repro_differences,
)
from ftbench.tasks import default_tolerances, parse_tolerance, tolerances_with

CASE = "finetune[minilm-l6-bucketed-cpu-fp32]"
ENV = {
    "versions": {"torch": "2.13.0", "transformers": "5.24.0"},
    "hardware_id": "cpu-2c",
    "device_name": "cpu",
    "git": {"commit": "abc1234def", "dirty": False},
}


def _result(accuracy: float, seed: int = 42, samples_per_second: float = 30.0) -> CaseResult:
    return CaseResult(
        case_id=CASE, job="finetune", profile="smoke",
        axes={}, metrics={"eval_accuracy": accuracy, "eval_f1": accuracy + 0.07},
        throughput={"train_samples_per_second": samples_per_second}, padding={},
        memory={"peak_bytes": 1000, "kind": "process_rss_sampled_per_step"}, times={},
        training={"seed": seed, "recipe": {"learning_rate": 1e-4}}, checkpoint={},
        environment=ENV, created_at="2026-11-28T07:00:00+0000",
    )  # fmt: skip


@pytest.fixture
def entry() -> dict:
    return entry_from_results([_result(0.78, 42), _result(0.79, 43), _result(0.80, 44)])


def test_entry_holds_values_stats_seeds_commit_and_environment(entry: dict) -> None:
    stats = entry["metrics"]["eval_accuracy"]
    assert stats["values"] == [0.78, 0.79, 0.80]
    assert stats["mean"] == pytest.approx(0.79)
    assert stats["std"] == pytest.approx(0.01)
    assert entry["seeds"] == [42, 43, 44]
    assert entry["commit"] == "abc1234def"
    assert entry["environment"]["versions"]["torch"] == "2.13.0"
    assert "peak_memory_bytes" not in entry["metrics"]  # CPU RSS is process-wide: not gated


def test_accuracy_bound_is_mean_minus_k_sigma_or_the_minimum(entry: dict) -> None:
    # mean 0.79, σ 0.01, k 3 -> 0.76
    [verdict] = gate(CASE, {"eval_accuracy": 0.761}, entry, default_tolerances())
    assert verdict.passed
    assert verdict.bound == pytest.approx(0.76)
    [verdict] = gate(CASE, {"eval_accuracy": 0.759}, entry, default_tolerances())
    assert not verdict.passed
    assert "mean 0.7900 - max(3 x σ 0.0100, 0.01), n=3, k=3" in verdict.how

    single = {"metrics": {"eval_accuracy": metric_stats([0.79])}}
    [verdict] = gate(CASE, {"eval_accuracy": 0.781}, single, default_tolerances())
    assert verdict.bound == pytest.approx(0.78)  # σ 0: the 0.01 minimum margin applies


def test_throughput_is_relative_to_the_median_and_memory_is_an_upper_bound() -> None:
    entry = {
        "metrics": {
            "train_samples_per_second": metric_stats([30.0]),
            "peak_memory_bytes": metric_stats([1000.0]),
        }
    }
    verdicts = gate(
        CASE, {"train_samples_per_second": 26.9, "peak_memory_bytes": 1099.0}, entry,
        default_tolerances(),
    )  # fmt: skip
    by_metric = {v.metric: v for v in verdicts}
    assert not by_metric["train_samples_per_second"].passed
    assert by_metric["train_samples_per_second"].bound == pytest.approx(27.0)
    assert by_metric["peak_memory_bytes"].passed
    assert by_metric["peak_memory_bytes"].bound == pytest.approx(1100.0)


def test_regression_message_names_everything_a_reader_needs(entry: dict, tmp_path: Path) -> None:
    [verdict] = gate(CASE, {"eval_accuracy": 0.70}, entry, default_tolerances())
    environment = {**ENV, "versions": {"torch": "2.14.1", "transformers": "5.24.0"}}
    message = regression_message(CASE, [verdict], tmp_path / "smoke.json", entry, environment)
    for part in (
        CASE,
        "eval_accuracy 0.7000 < bound 0.7600",
        "mean 0.7900",
        "n=3, k=3",
        "smoke.json",
        "commit abc1234def",
        "recorded 2026-11-28T07:00:00+0000",
        "versions.torch 2.14.1 (baseline 2.13.0)",
    ):
        assert part in message


def test_another_recipe_is_named_and_the_seed_is_not(entry: dict) -> None:
    assert recipe_differences({"learning_rate": 1e-4, "seed": 7}, entry) == []
    assert recipe_differences({"learning_rate": 0.01, "seed": 42}, entry) == [
        "learning_rate 0.01 (baseline 0.0001)"
    ]


def test_store_round_trip_and_atomic_update(tmp_path: Path, entry: dict) -> None:
    store = BaselineStore(tmp_path)
    assert store.entry("cpu-2c", "smoke", CASE) is None
    path = store.update("cpu-2c", "smoke", {CASE: entry})

    assert path == tmp_path / "cpu-2c" / "smoke.json"
    assert BaselineStore(tmp_path).entry("cpu-2c", "smoke", CASE) == json.loads(json.dumps(entry))
    # No temporary file left behind; the hidden lock file of concurrent updates may stay.
    assert [p.name for p in path.parent.iterdir() if p.name != ".smoke.json.lock"] == ["smoke.json"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"schema_version": 1, "cases": {"fine', "corrupt or truncated baseline file"),
        ('{"schema_version": 7, "cases": {}}', "schema version 7 is newer than this ftbench"),
        ('{"schema_version": 1, "cases": {"c": {"metrics": {"bogus": {}}}}}', "malformed metric"),
        ("[]", "not a baseline file"),
    ],
)
def test_bad_baseline_files_are_errors_not_missing_baselines(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "cpu-2c" / "smoke.json"
    path.parent.mkdir()
    path.write_text(content)
    with pytest.raises(BaselineError, match=message) as excinfo:
        BaselineStore(tmp_path).entry("cpu-2c", "smoke", CASE)
    assert str(path) in str(excinfo.value)


def test_a_newer_ftbench_s_metric_is_read_and_left_alone(tmp_path: Path) -> None:
    """An older checkout (bisecting) reads a baseline that a newer ftbench added metrics to."""
    stats = {"values": [1.0], "n": 1, "mean": 1.0, "std": 0.0, "median": 1.0}
    path = tmp_path / "cpu-2c" / "smoke.json"
    path.parent.mkdir()
    metrics = {"eval_accuracy": stats, "some_future_rate_per_probe": stats}
    path.write_text(json.dumps({"schema_version": 1, "cases": {CASE: {"metrics": metrics}}}))
    entry = BaselineStore(tmp_path).entry("cpu-2c", "smoke", CASE)
    [verdict] = gate(CASE, {"eval_accuracy": 1.0}, entry, tolerances_with(None))
    assert verdict.passed


def test_tolerances_parse_and_unknown_metrics_are_refused() -> None:
    assert parse_tolerance("train_samples_per_second:15%") == {
        "train_samples_per_second": {"relative": 0.15}
    }
    assert parse_tolerance("eval_accuracy:k=2,min=0.02") == {
        "eval_accuracy": {"k": 2.0, "min_tolerance": 0.02}
    }
    assert tolerances_with({"eval_f1": {"k": 2}})["eval_f1"].k == 2
    with pytest.raises(ConfigError, match="unknown metric 'bleu' in a tolerance"):
        parse_tolerance("bleu:5%")
    with pytest.raises(ConfigError, match="unknown field"):
        tolerances_with({"eval_f1": {"sigma": 2}})


def test_reproduction_is_checked_only_for_the_same_environment_and_seed(entry: dict) -> None:
    assert repro_differences(_result(0.78, 42), entry) == []
    differences = repro_differences(_result(0.781, 42), entry)
    assert differences[0] == "eval_accuracy 0.781 (baseline 0.78, seed 42)"
    assert differences[1].startswith("eval_f1 0.851")
    assert repro_differences(_result(0.70, 7), entry) is None  # another seed
    other = _result(0.70, 42)
    other.environment = {**ENV, "versions": {"torch": "2.14.1"}}
    assert repro_differences(other, entry) is None
