"""`ftbench compare A B` on stored records: the table, the exit status, and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftbench.cli import main
from ftbench.core.record import CaseResult, RunStore


def _store(directory: Path, samples_per_second: float, accuracy: float) -> Path:
    store = RunStore(directory)
    for job, case in (
        ("throughput", "throughput[m-dynamic-cpu-fp32]"),
        ("finetune", "finetune[m-bucketed-cpu-fp32]"),
    ):
        store.write(
            CaseResult(
                case_id=case, job=job, profile="smoke", axes={},
                metrics={"eval_accuracy": accuracy if job == "finetune" else None, "eval_f1": None},
                throughput={"train_samples_per_second": samples_per_second}, padding={},
                memory={"peak_bytes": 1, "kind": "process_rss_sampled_per_step"}, times={},
                training={"seed": 42}, checkpoint={}, environment={},
            )
        )  # fmt: skip
    return directory


def test_a_slower_run_is_a_regression_with_exit_status_1(tmp_path: Path, capsys) -> None:
    before = _store(tmp_path / "before", 30.0, 0.80)
    after = _store(tmp_path / "after", 24.0, 0.80)

    assert main(["compare", str(before), str(after), "--csv", str(tmp_path / "c.csv")]) == 1
    out = capsys.readouterr().out
    assert "train_samples_per_second" in out
    assert "-20.0%" in out
    assert "REGRESSED" in out
    assert "eval_accuracy" in out
    assert (tmp_path / "c.csv").read_text().startswith("case,metric,A,B,change,bound,verdict")


def test_within_noise_exits_0_and_tolerances_apply(tmp_path: Path, capsys) -> None:
    before = _store(tmp_path / "before", 30.0, 0.80)
    after = _store(tmp_path / "after", 28.0, 0.795)

    assert main(["compare", str(before), str(after)]) == 0
    assert (
        main(["compare", str(before), str(after), "--tolerance", "train_samples_per_second:5%"])
        == 1
    )


def test_bad_inputs_exit_2_with_a_message(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    good = _store(tmp_path / "good", 30.0, 0.8)
    assert main(["compare", str(tmp_path / "empty"), str(good)]) == 2
    assert "holds no ftbench records" in capsys.readouterr().err

    (good / "broken.json").write_text('{"schema_version": 1, "case')
    assert main(["compare", str(good), str(good)]) == 0
    err = capsys.readouterr().err
    assert "skipped" in err
    assert "broken.json" in err


@pytest.mark.parametrize(
    "content", ['{"schema_version": 1, "cases": {"x', '{"schema_version": 9, "cases": {}}']
)
def test_bad_baseline_file_exits_2(tmp_path: Path, content: str, capsys) -> None:
    path = tmp_path / "smoke.json"
    path.write_text(content)
    assert main(["compare", str(path), str(_store(tmp_path / "run", 30.0, 0.8))]) == 2
    assert str(path) in capsys.readouterr().err
