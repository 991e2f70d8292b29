"""Profiles as data, overrides, and the accuracy floors of a finished fine-tune."""

from __future__ import annotations

import pytest

from ftbench.config.profiles import apply_overrides, get_profile
from ftbench.core.errors import AccuracyFloorError, ConfigError
from ftbench.core.record import CaseResult
from ftbench.judge.baselines import check_floors

SMOKE = get_profile("smoke")
FULL = get_profile("full")


def test_full_profile_is_the_hf_course_recipe() -> None:
    finetune = FULL.job("finetune")
    assert finetune.checkpoints == ("bert-base-uncased",)
    assert (finetune.training.epochs, finetune.training.batch_size) == (3, 8)
    assert (finetune.training.learning_rate, finetune.training.seed) == (5e-5, 42)
    assert set(finetune.paddings) == {"static", "dynamic", "bucketed", "dynamic-x8"}
    assert set(finetune.precisions) == {"fp32", "bf16", "fp16"}


def test_smoke_times_every_padding_strategy() -> None:
    assert set(SMOKE.job("throughput").paddings) == {"static", "dynamic", "bucketed", "dynamic-x8"}
    assert SMOKE.job("finetune").floors["eval_accuracy"] == 0.77


def test_axis_overrides_keep_the_floors_and_recipe_overrides_drop_them() -> None:
    padded = apply_overrides(SMOKE, paddings=["dynamic"], seed=1)
    assert padded.job("finetune").paddings == ("dynamic",)
    assert padded.job("finetune").floors["eval_accuracy"] == 0.77
    assert padded.job("throughput").training.seed == 1

    shortened = apply_overrides(SMOKE, max_steps=10)
    assert shortened.job("finetune").floors == {}
    assert shortened.job("finetune").floors_off == "recipe changed by --ftb-max-steps"


def test_jobs_can_be_selected_and_unknown_names_are_refused() -> None:
    assert apply_overrides(SMOKE, jobs=["throughput"]).job_names() == ["throughput"]
    with pytest.raises(ConfigError, match="unknown profile 'huge'"):
        get_profile("huge")
    with pytest.raises(ConfigError, match="has no job 'pretrain'"):
        SMOKE.job("pretrain")


def _result(accuracy: float, f1: float, meaningful: bool = True) -> CaseResult:
    return CaseResult(
        case_id="finetune[minilm-l6-bucketed-cpu-fp32]", job="finetune", profile="smoke", axes={},
        metrics={"eval_accuracy": accuracy, "eval_f1": f1}, throughput={}, padding={}, memory={},
        times={}, training={}, checkpoint={}, environment={}, accuracy_meaningful=meaningful,
    )  # fmt: skip


def test_floors_pass_and_fail_with_a_message_naming_case_metric_value_and_floor() -> None:
    job = SMOKE.job("finetune")
    assert check_floors(_result(0.80, 0.86), job) == [
        "eval_accuracy 0.8000 (floor 0.77)",
        "eval_f1 0.8600 (floor 0.84)",
    ]
    with pytest.raises(AccuracyFloorError) as excinfo:
        check_floors(_result(0.684, 0.812), job)
    assert str(excinfo.value).startswith(
        "finetune[minilm-l6-bucketed-cpu-fp32]: below the smoke profile's floor: "
        "eval_accuracy 0.6840 (floor 0.77); eval_f1 0.8120 (floor 0.84)."
    )


def test_floors_ignore_random_weights() -> None:
    assert check_floors(_result(0.5, 0.1, meaningful=False), SMOKE.job("finetune")) == []
