"""`ftbench history`: a metric over runs with its baseline band, and what changed between runs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from ftbench.cli import main
from ftbench.core.record import CaseResult, RunStore
from ftbench.report.history import history_rows

CASE = "throughput[minilm-l6-static-cpu-fp32-full]"


def _run(when: str, rate: float, torch: str, commit: str) -> CaseResult:
    return CaseResult(
        case_id=CASE, job="throughput", profile="smoke",
        axes={"checkpoint": "minilm-l6", "padding": "static", "device": "cpu",
              "precision": "fp32", "method": "full"},
        metrics={}, padding={}, memory={}, times={}, checkpoint={},
        throughput={"train_samples_per_second": rate},
        training={"seed": 42},
        environment={"hardware_id": "cpu-test-2c", "device_name": "CPU",
                     "versions": {"torch": torch, "transformers": "5.24.0"},
                     "git": {"commit": commit * 40, "dirty": False}},
        accuracy_meaningful=False, created_at=when,
    )  # fmt: skip


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """Three runs on one machine; torch went from 2.12 to 2.13 before the third, which is slow."""
    root = tmp_path / "results" / "runs"
    for name, (when, rate, torch, commit) in {
        "r1": ("2026-11-01T10:00:00+0000", 10.0, "2.12.0", "a"),
        "r2": ("2026-11-02T10:00:00+0000", 10.4, "2.12.0", "b"),
        "r3": ("2026-11-03T10:00:00+0000", 7.5, "2.13.0", "c"),
    }.items():
        store = RunStore(root / name)
        store.write(_run(when, rate, torch, commit))
        if name == "r3":  # the gate re-measured it: the later number is the one that counts
            store.write(_run("2026-11-03T10:09:00+0000", 8.0, torch, commit))
    baselines = tmp_path / "results" / "baselines" / "cpu-test-2c"
    baselines.mkdir(parents=True)
    stats = {"values": [9.8, 10.0, 10.2], "n": 3, "mean": 10.0, "std": 0.2, "median": 10.0}
    entry = {"metrics": {"train_samples_per_second": stats}}
    baseline = {"schema_version": 1, "hardware_id": "cpu-test-2c", "profile": "smoke"}
    (baselines / "smoke.json").write_text(json.dumps({**baseline, "cases": {CASE: entry}}))
    return root


def test_rows_follow_dates_and_carry_the_gates_band(runs: Path) -> None:
    from ftbench.core.record import load_runs

    results, _ = load_runs([runs])
    rows = history_rows(results, baselines_dir=runs.parent / "baselines")

    assert [r["run"] for r in rows] == ["r1", "r2", "r3"]
    assert [r["value"] for r in rows] == [10.0, 10.4, 8.0]  # r3's re-measure, not its first
    # smoke's throughput tolerance is 15% of the baseline median, as the gate computes it
    assert [r["bound"] for r in rows] == pytest.approx([8.5] * 3)
    assert [r["verdict"] for r in rows] == ["within bound", "within bound", "REGRESSED"]
    assert [r["changed"] for r in rows] == ["-", "-", "torch 2.12.0→2.13.0"]
    assert rows[2]["torch"] == "2.13.0"
    assert rows[0]["commit"] == "aaaaaaaaaa"


def test_history_command_writes_table_and_chart(runs: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "history"
    argv = ["history", str(runs), "--baselines", str(runs.parent / "baselines"), "--out", str(out)]

    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "torch 2.12.0→2.13.0" in printed
    assert "REGRESSED" in printed
    assert sorted(p.name for p in out.iterdir()) == ["history.csv", "history.md", "history.png"]
    assert (out / "history.png").read_bytes()[:4] == b"\x89PNG"
    text = (out / "history.md").read_text()
    assert "| 8.00    | 10.0       | 8.50    | REGRESSED    | torch 2.12.0→2.13.0 |" in text
    assert "smoke.json: lower bound: median 10.0 - 15%, n=3" in text


def test_history_without_baselines_or_matches(runs: Path, tmp_path: Path, capsys) -> None:
    assert main(["history", str(runs), "--baselines", str(tmp_path / "none"),
                 "--out", str(tmp_path / "h")]) == 0  # fmt: skip
    assert "no baseline" in capsys.readouterr().out
    assert main(["history", str(runs), "--case", "nothing", "--out", str(tmp_path / "h")]) == 2
    assert "no case matches 'nothing'" in capsys.readouterr().err
    assert main(["history", str(runs), "--metric", "eval_f1", "--out", str(tmp_path / "h")]) == 2
    assert "no record has 'eval_f1'" in capsys.readouterr().err


def test_order_by_commit_falls_back_to_dates_outside_git(runs: Path) -> None:
    from ftbench.core.record import load_runs
    from ftbench.report.history import run_order

    results, _ = load_runs([runs])
    later_first = [replace(r, created_at="2026-12-01") if r.run_id == "r1" else r for r in results]
    assert run_order(later_first, "date") == ["r2", "r3", "r1"]
    assert run_order(results, "commit") == ["r1", "r2", "r3"]  # unknown commits: by date


def _series(values: list[float], commits: str) -> list[CaseResult]:
    return [
        replace(
            _run(f"2026-11-{i + 1:02d}T10:00:00+0000", v, "2.13.0", commits[i]),
            run_id=f"r{i + 1:02d}",
        )
        for i, v in enumerate(values)
    ]


def test_a_planted_step_is_found_at_the_run_that_made_it(runs: Path) -> None:
    import random

    from ftbench.report.steps import lasting_step, steps

    rng = random.Random(0)
    before = [10.0 + rng.gauss(0, 0.3) for _ in range(8)]
    after = [7.5 + rng.gauss(0, 0.3) for _ in range(6)]
    [step] = steps(before + after)
    assert step.index == 8
    assert step.change == pytest.approx(-0.25, abs=0.05)
    assert lasting_step(before + after, bound=9.0, direction="higher") == step
    # Through the history: the row of the ninth run names its commit.
    rows = history_rows(
        _series(before + after, "abcdefghijklmn"), baselines_dir=runs.parent / "baselines"
    )
    [marked] = [row for row in rows if row["step"]]
    assert marked["run"] == "r09"
    assert marked["commit"].startswith("iiiiiii")
    assert marked["step"].endswith("left the band and stayed out")


def test_noisy_flat_history_has_no_step() -> None:
    import random

    from ftbench.report.steps import lasting_step, steps

    for seed in range(50):
        rng = random.Random(seed)
        values = [10.0 * (1 + rng.gauss(0, 0.05)) for _ in range(20)]  # 5% noise
        assert steps(values) == [], seed
        assert lasting_step(values, bound=8.5, direction="higher") is None


def test_a_dip_that_recovers_is_not_a_lasting_step() -> None:
    from ftbench.report.steps import lasting_step, steps

    values = [10.0, 10.1, 9.9, 10.0, 7.0, 7.1, 6.9, 10.0, 10.1, 9.9]
    assert [s.index for s in steps(values)] == [4, 7]
    assert lasting_step(values, bound=9.0, direction="higher") is None


def test_the_bound_drawn_is_the_job_s_own_where_it_has_one() -> None:
    """history draws the bound the gate computes: the smoke GRPO job's 30%, SFT's 15%."""
    from ftbench.report.history import _tolerances

    assert _tolerances("smoke", "grpo")["train_samples_per_probe"].relative == 0.30
    assert _tolerances("smoke", "sft")["train_samples_per_probe"].relative == 0.15
