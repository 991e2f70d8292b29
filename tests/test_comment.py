"""`ftbench comment`: the pull request's comment, judged like the pytest gate."""

from __future__ import annotations

from pathlib import Path

from ftbench.cli import main
from ftbench.core.record import CaseResult, RunStore
from ftbench.judge.baselines import BaselineStore, entry_from_results
from ftbench.report.comment import MARKER

HW = "cpu-2c"
ENV = {"versions": {"torch": "2.13.0"}, "hardware_id": HW, "device_name": "cpu"}
RECIPE = {"learning_rate": 1e-4, "max_steps": 25, "evaluate": False}


def measured(case: str, samples: float, busy: bool = False, lr: float = 1e-4) -> CaseResult:
    return CaseResult(
        case_id=case, job="throughput", profile="smoke", axes={"device": "cpu"}, metrics={},
        throughput={"train_samples_per_second": samples}, padding={}, memory={}, times={},
        training={"seed": 42, "recipe": {**RECIPE, "learning_rate": lr}}, checkpoint={},
        environment=ENV, machine={"contention": {"busy": busy, "other_cores": 1.2, "cpu_count": 2}},
    )  # fmt: skip


CASES = [f"throughput[minilm-l6-{p}-cpu-fp32-full]" for p in ("static", "dynamic", "bucketed")]


def baselines(root: Path) -> Path:
    BaselineStore(root).update(
        HW, "smoke", {case: entry_from_results([measured(case, 30.0)]) for case in CASES}
    )
    return root


def run(root: Path, *results: CaseResult) -> Path:
    store = RunStore.create(root)
    for result in results:
        store.write(result)
    return store.directory


def test_a_regression_is_named_with_its_change(tmp_path: Path) -> None:
    runs = run(
        tmp_path / "results",
        measured(CASES[0], 20.0),
        measured(CASES[1], 31.0),
        measured(CASES[2], 29.0),
    )
    out = tmp_path / "comment.md"
    args = ["comment", str(runs), "--baselines", str(baselines(tmp_path / "base"))]
    assert main([*args, "--run-url", "https://example.invalid/run/1", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith(MARKER)
    assert "### ftbench: **1 of 3 cases regressed** beyond noise" in text
    row = f"| `{CASES[0]}` | train_samples_per_second | 20.0 | 30.0 | -33.3% | 25.5 |"
    assert row in text
    assert "2 other case(s) within bounds." in text
    assert "[The run, its records and report](https://example.invalid/run/1)" in text
    widest = max(line.count("|") - 1 for line in text.splitlines() if line.startswith("|"))
    assert widest <= 8


def test_no_regression_says_so(tmp_path: Path, capsys) -> None:
    runs = run(tmp_path / "results", *(measured(c, 30.5) for c in CASES))
    assert main(["comment", str(runs), "--baselines", str(baselines(tmp_path / "base"))]) == 0
    text = capsys.readouterr().out
    assert "### ftbench: no regression: 3 of 3 cases within bounds" in text
    assert "|" not in text


def test_what_was_not_judged_says_why(tmp_path: Path, capsys) -> None:
    runs = run(
        tmp_path / "results",
        measured(CASES[0], 10.0, busy=True),
        measured(CASES[1], 30.0, lr=1e-3),
        measured("throughput[minilm-l6-dynamic-x8-cpu-fp32-full]", 30.0),
    )
    assert main(["comment", str(runs), "--baselines", str(baselines(tmp_path / "base"))]) == 0
    text = capsys.readouterr().out
    assert "nothing judged: none of 3 cases could be gated" in text
    assert "<summary>3 not judged</summary>" in text
    assert "not gated: device busy (other processes used 1.2 of 2 cores)" in text
    assert "has another recipe: learning_rate 0.001 (baseline 0.0001)" in text
    assert "dynamic-x8-cpu-fp32-full]` (cpu-2c): no baseline" in text


def test_a_record_of_a_profile_not_found_here_is_judged_on_its_figures(tmp_path: Path) -> None:
    """A job file kept elsewhere: no job, so every figure the record has, at the defaults."""
    from dataclasses import replace

    elsewhere = [replace(measured(c, 30.0), profile="team-recipes") for c in CASES]
    BaselineStore(tmp_path / "base").update(
        HW, "team-recipes", {r.case_id: entry_from_results([r]) for r in elsewhere}
    )
    slow = replace(measured(CASES[0], 20.0), profile="team-recipes")
    out = tmp_path / "comment.md"
    args = ["comment", str(run(tmp_path / "results", slow)), "--baselines", str(tmp_path / "base")]
    assert main([*args, "--out", str(out)]) == 0
    assert "**1 of 1 cases regressed**" in out.read_text()
