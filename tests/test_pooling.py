"""`ftbench baselines record`: a baseline from several runs, each rate's median over all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftbench.cli import main
from ftbench.config.build import GatePolicy
from ftbench.config.profiles import get_profile
from ftbench.core.record import CaseResult, RunStore
from ftbench.judge.baselines import BaselineStore, entry_from_results
from ftbench.judge.verdict import gate_case
from ftbench.tasks import tolerances_with

HW, PROFILE, CASE = "amd-epyc-2c", "smoke", "sft[smollm2-135m-padded-cpu-fp32-full]"
DATA = {"name": "gsm8k", "splits": {"validation": {"rows": 32, "content_sha256": "ab"}}}


def measured(samples_per_second: float, loss: float = 1.0686, seed: int = 42, **over) -> CaseResult:
    """An SFT record as the smoke profile makes it: quality, and samples/s over the probe."""
    probe = over.pop("probe", 200.0)
    return CaseResult(
        case_id=CASE, job="sft", profile=PROFILE, axes={"task": "sft"},
        metrics={"eval_loss": loss, "eval_mean_token_accuracy": 0.7325},
        throughput={"train_samples_per_second": samples_per_second,
                    "train_samples_per_probe": samples_per_second / probe},
        padding={}, memory={}, times={},
        training={"seed": seed, "recipe": {"max_steps": over.pop("max_steps", 16)}},
        checkpoint={"weights": {"kind": "bundled", "sha256": "b179"}},
        environment={"versions": {"torch": over.pop("torch", "2.13.0")}, "hardware_id": HW},
        machine={"probe": {"name": "matmul", "score": probe}, "timed_in": "a fresh process"},
        data=over.pop("data", DATA), **over,
    )  # fmt: skip


def runs(root: Path, *results: CaseResult) -> Path:
    """Each result in a run directory of its own, as separate CI runs leave them."""
    for hour, result in enumerate(results):
        result.created_at = f"2026-12-01T{10 + hour}:00:00+0000"
        RunStore.create(root).write(result)
    return root / "runs"


def record(runs_dir: Path, into: Path) -> int:
    return main(["baselines", "record", str(runs_dir), "--into", str(into)])


def test_a_rate_s_baseline_is_the_median_of_every_run(tmp_path: Path, capsys) -> None:
    """A fast hour, then two slower ones: the baseline is the middle run, not the fastest, so a
    run in the slow hours passes at 15% where a baseline from the fast hour failed it."""
    found = runs(tmp_path, measured(0.80, probe=220.0), measured(0.60), measured(0.66))
    assert record(found, tmp_path / "baselines") == 0
    entry = BaselineStore(tmp_path / "baselines").entry(HW, PROFILE, CASE)
    rate = entry["metrics"]["train_samples_per_probe"]
    assert rate["n"] == 3
    assert rate["median"] == pytest.approx(0.66 / 200)
    assert entry["metrics"]["eval_loss"]["values"] == [1.0686]  # quality: per seed, once
    assert entry["seeds"] == [42]
    assert len(entry["runs"]) == 3
    out = capsys.readouterr().out
    assert f"{CASE}: 3 measurement(s) pooled, from 3 run(s); train_samples_per_probe" in out
    assert "train_samples_per_probe median 0.0033 (0.003-0.003636)" in out

    sft = get_profile("smoke").job("sft")
    policy = GatePolicy(tolerances=tolerances_with(get_profile("smoke").tolerances))
    slow_hour = measured(0.58)
    fast_only = entry_from_results([measured(0.80, probe=220.0)], sft)
    assert gate_case(CASE, [slow_hour], sft, fast_only, policy).failed
    assert not gate_case(CASE, [slow_hour], sft, entry, policy).failed
    assert gate_case(CASE, [measured(0.66 * 0.7)], sft, entry, policy).failed  # 30% slower


def test_records_of_another_experiment_are_refused_and_nothing_is_written(
    tmp_path: Path, capsys
) -> None:
    into = tmp_path / "baselines"
    for name, other in [
        ("recipe", measured(0.6, max_steps=8)),
        ("environment", measured(0.6, torch="2.14.1")),
    ]:
        found = runs(tmp_path / name, measured(0.7), other)
        assert record(found, into) == 1
        err = capsys.readouterr().err
        assert f"{CASE}: the records are not one experiment: run " in err, err
        assert f"another {name}" in err
        assert err.rstrip().endswith("nothing written")
    assert not into.exists()


def test_seeds_keep_their_own_quality_and_a_differing_one_is_named(tmp_path: Path, capsys) -> None:
    found = runs(
        tmp_path,
        measured(0.70, seed=42),
        measured(0.64, seed=43, loss=1.0600),
        measured(0.66, seed=42, loss=1.0687),  # a later run: seed 42's loss moved
    )
    assert record(found, tmp_path / "b") == 0
    entry = BaselineStore(tmp_path / "b").entry(HW, PROFILE, CASE)
    assert entry["seeds"] == [42, 43]
    assert entry["metrics"]["eval_loss"]["values"] == [1.0687, 1.0600]  # the newest seed 42
    assert entry["metrics"]["train_samples_per_second"]["values"] == [0.70, 0.64, 0.66]
    assert "seed 42's eval_loss in run" in capsys.readouterr().out


def test_a_case_that_gates_no_rate_keeps_its_seeds_baseline(tmp_path: Path, capsys) -> None:
    """The MRPC fine-tune's baseline holds three seeds' quality: a run of one seed must not
    replace it."""
    into = tmp_path / "b"
    store = BaselineStore(into)
    seeds = [measured(0.7, seed=s, loss=1.06 + s / 1000) for s in (42, 43, 44)]
    quality_only = entry_from_results(seeds, get_profile("smoke").job("sft"))
    for m in ("train_samples_per_second", "train_samples_per_probe"):
        quality_only["metrics"].pop(m)
    store.update(HW, PROFILE, {CASE: quality_only})
    one = measured(0.7)
    one.throughput = {}
    assert record(runs(tmp_path, one), into) == 0
    assert BaselineStore(into).entry(HW, PROFILE, CASE)["seeds"] == [42, 43, 44]
    assert f"{CASE}: not recorded: it gates no rate" in capsys.readouterr().out


def test_a_busy_device_s_rates_are_left_out(tmp_path: Path, capsys) -> None:
    busy = measured(0.30)
    busy.machine["contention"] = {"busy": True, "other_cores": 1.2, "cpu_count": 2}
    assert record(runs(tmp_path, measured(0.70), busy, measured(0.66)), tmp_path / "b") == 0
    entry = BaselineStore(tmp_path / "b").entry(HW, PROFILE, CASE)
    assert entry["metrics"]["train_samples_per_second"]["values"] == [0.70, 0.66]
    assert "rates left out: device busy (" in capsys.readouterr().out


def test_one_measurement_per_run_and_seed_and_a_run_given_twice_counts_once(
    tmp_path: Path, capsys
) -> None:
    """A re-measure follows a slow first measurement in the same hour: the run's vote is its
    last measurement, the number its gate judged."""
    found = runs(tmp_path, measured(0.80, probe=220.0))
    evening = RunStore.create(tmp_path)
    for rate, at in ((0.50, "2026-12-01T20:00:00+0000"), (0.55, "2026-12-01T20:10:00+0000")):
        evening.write(measured(rate, probe=180.0, created_at=at))
    assert main(["baselines", "record", str(found), str(evening.directory), "--into",
                 str(tmp_path / "b")]) == 0  # fmt: skip
    entry = BaselineStore(tmp_path / "b").entry(HW, PROFILE, CASE)
    assert entry["metrics"]["train_samples_per_second"]["values"] == [0.80, 0.55]
    assert entry["probe"]["score"] == pytest.approx(200.0)  # the pooled runs' median probe
    assert "2 measurement(s) pooled, from 2 run(s)" in capsys.readouterr().out


def test_every_record_busy_leaves_the_case_as_it_is(tmp_path: Path, capsys) -> None:
    busy = measured(0.30)
    busy.machine["contention"] = {"busy": True, "other_cores": 1.2, "cpu_count": 2}
    assert record(runs(tmp_path, busy), tmp_path / "b") == 0
    assert BaselineStore(tmp_path / "b").entry(HW, PROFILE, CASE) is None
    assert "not recorded: every record's device was busy" in capsys.readouterr().out


def test_a_record_without_data_identity_is_refused(tmp_path: Path, capsys) -> None:
    found = runs(tmp_path, measured(0.7), measured(0.7, data={"used_rows": {"train": 64}}))
    assert record(found, tmp_path / "b") == 1
    assert "record has no data identity" in capsys.readouterr().err


def test_a_directory_that_is_not_there_is_an_error(tmp_path: Path, capsys) -> None:
    found = runs(tmp_path, measured(0.7))
    assert main(["baselines", "record", str(found), str(tmp_path / "nope")]) == 2
    assert "no such directory: " in capsys.readouterr().err


def test_runs_of_invariants_alone_are_passed_over(tmp_path: Path) -> None:
    found = runs(tmp_path, measured(0.7))
    pairs = found / "20261201-000000-abcdef" / "invariants"
    pairs.mkdir(parents=True)
    (pairs / "grad-accum.json").write_text(json.dumps({"pair": "grad-accum"}))
    assert record(found, tmp_path / "b") == 0


def test_merge_takes_a_pooled_entry_whole_and_refuses_to_split_it(tmp_path: Path) -> None:
    from ftbench.judge.merge import merge_entries

    found = runs(tmp_path, measured(0.80), measured(0.60), measured(0.66))
    assert record(found, tmp_path / "b") == 0
    pooled = BaselineStore(tmp_path / "b").entry(HW, PROFILE, CASE)
    assert merge_entries(None, [("shard", pooled)]) == (pooled, None)
    other = entry_from_results([measured(0.7)])
    merged, conflict = merge_entries(None, [("shard", pooled), ("other", other)])
    assert merged is None
    assert conflict.startswith("shard holds rates pooled over runs")


def test_only_the_jobs_asked_for_are_recorded(tmp_path: Path, capsys) -> None:
    found = runs(tmp_path, measured(0.7))
    into = tmp_path / "b"
    assert main(["baselines", "record", str(found), "--into", str(into), "--job", "dpo"]) == 2
    assert "no records of dpo" in capsys.readouterr().err
    assert main(["baselines", "record", str(found), "--into", str(into), "--job", "sft,dpo"]) == 0
    assert BaselineStore(into).entry(HW, PROFILE, CASE) is not None
