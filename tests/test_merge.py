"""`ftbench baselines merge`: shards recorded on separate runners become one baseline set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftbench.cli import main
from ftbench.core.record import CaseResult
from ftbench.judge.baselines import BaselineStore, entry_from_results
from ftbench.judge.merge import merge_entries

HW, PROFILE = "nvidia-h100-80gb-hbm3", "full"
ENV = {"versions": {"torch": "2.13.0"}, "hardware_id": HW, "device_name": "H100"}


def entry(case: str, *seeds: tuple[int, float], lr: float = 5e-5, at: str = "2026-12-01") -> dict:
    return entry_from_results([measured(case, seed, accuracy, lr, at) for seed, accuracy in seeds])


def measured(case: str, seed: int, accuracy: float, lr: float, at: str) -> CaseResult:
    return CaseResult(
        case_id=case, job=case.split("[")[0], profile=PROFILE, axes={},
        metrics={"eval_accuracy": accuracy}, throughput={}, padding={}, memory={}, times={},
        training={"seed": seed, "recipe": {"learning_rate": lr}}, checkpoint={},
        environment=ENV, created_at=at,
    )  # fmt: skip


def write(root: Path, cases: dict[str, dict]) -> Path:
    path = root / HW / f"{PROFILE}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"schema_version": 1, "hardware_id": HW, "profile": PROFILE, "cases": cases}
    path.write_text(json.dumps(data))
    return root


def test_disjoint_shards_each_bring_their_cases(tmp_path: Path, capsys) -> None:
    old = {"sft[x]": entry("sft[x]", (42, 0.5)), "dpo[x]": entry("dpo[x]", (42, 0.6))}
    committed = write(tmp_path / "committed", old)
    sft = write(tmp_path / "sft", {**old, "sft[x]": entry("sft[x]", (42, 0.7), (43, 0.72))})
    dpo = write(tmp_path / "dpo", {**old, "dpo[x]": entry("dpo[x]", (42, 0.8))})
    assert main(["baselines", "merge", str(sft), str(dpo), "--into", str(committed)]) == 0
    cases = BaselineStore(committed).load(HW, PROFILE)["cases"]
    assert cases["sft[x]"]["metrics"]["eval_accuracy"]["values"] == [0.7, 0.72]
    assert cases["dpo[x]"]["metrics"]["eval_accuracy"]["values"] == [0.8]
    assert f"{PROFILE}.json: 2 case(s): dpo[x], sft[x]" in capsys.readouterr().out


def test_seed_shards_of_one_case_are_pooled() -> None:
    merged, conflict = merge_entries(
        None, [("a", entry("sft[x]", (42, 0.70))), ("b", entry("sft[x]", (43, 0.74), (44, 0.72)))]
    )
    assert conflict is None
    assert merged["seeds"] == [42, 43, 44]
    stats = merged["metrics"]["eval_accuracy"]
    assert stats["values"] == [0.70, 0.74, 0.72]
    assert stats["mean"] == pytest.approx(0.72)
    assert stats["std"] == pytest.approx(0.02)
    assert stats["n"] == 3


def test_an_overlapping_seed_must_agree() -> None:
    same, conflict = merge_entries(
        None, [("a", entry("sft[x]", (42, 0.7))), ("b", entry("sft[x]", (42, 0.7), (43, 0.8)))]
    )
    assert conflict is None
    assert same["seeds"] == [42, 43]
    _, conflict = merge_entries(
        None, [("a", entry("sft[x]", (42, 0.7))), ("b", entry("sft[x]", (42, 0.71)))]
    )
    assert conflict == "a and b both recorded seed 42 with other numbers (eval_accuracy)"


def test_a_conflict_is_named_and_nothing_is_written(tmp_path: Path, capsys) -> None:
    old = {"sft[x]": entry("sft[x]", (42, 0.5))}
    committed = write(tmp_path / "committed", old)
    before = (committed / HW / f"{PROFILE}.json").read_text()
    a = write(tmp_path / "a", {"sft[x]": entry("sft[x]", (42, 0.7))})
    b = write(tmp_path / "b", {"sft[x]": entry("sft[x]", (43, 0.7), lr=1e-4)})
    assert main(["baselines", "merge", str(a), str(b), "--into", str(committed)]) == 1
    err = capsys.readouterr().err
    assert f"{HW}/{PROFILE}.json: sft[x]: {a} and {b} recorded it with another recipe" in err
    assert "nothing written" in err
    assert (committed / HW / f"{PROFILE}.json").read_text() == before


def test_a_shard_that_changed_nothing_is_not_news(tmp_path: Path, capsys) -> None:
    old = {"sft[x]": entry("sft[x]", (42, 0.5))}
    committed = write(tmp_path / "committed", old)
    assert (
        main(["baselines", "merge", str(write(tmp_path / "a", old)), "--into", str(committed)]) == 0
    )
    assert "nothing new" in capsys.readouterr().out
