"""Records on disk: atomic writes, and clear errors for corrupt or foreign files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftbench.core.errors import FtbenchError
from ftbench.core.files import write_json_atomic
from ftbench.core.record import read_record, record_filename


class Unserialisable:
    def __repr__(self) -> str:
        raise RuntimeError("disk full, say")


def test_a_failed_write_leaves_the_old_file_and_no_debris(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "case.json"
    write_json_atomic(path, {"schema_version": 1, "value": 1})
    with pytest.raises(RuntimeError, match="disk full"):
        write_json_atomic(path, {"schema_version": 1, "value": Unserialisable()})

    assert read_record(path)["value"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["case.json"]


def test_truncated_record_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "case.json"
    path.write_text('{"schema_version": 1, "case_id": "fine')
    with pytest.raises(FtbenchError, match=r"case\.json: not a readable ftbench record"):
        read_record(path)


def test_record_from_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "case.json"
    path.write_text('{"schema_version": 99}')
    with pytest.raises(
        FtbenchError, match=r"schema version 99; this ftbench reads 2 and older \(1\)"
    ):
        read_record(path)


def test_file_names_are_safe() -> None:
    assert (
        record_filename("finetune[org/model-dynamic-cpu-fp32]")
        == "finetune-org-model-dynamic-cpu-fp32.json"
    )


def test_records_name_the_commit_the_run_started_from(tmp_path: Path) -> None:
    """A commit made while a run goes on must not relabel the records it writes afterwards."""
    import subprocess

    from ftbench.env.devices import git_state

    def git(*args: str) -> str:
        command = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
        out = subprocess.run(command, cwd=tmp_path, check=True, capture_output=True, text=True)
        return out.stdout

    git("init", "-q")
    (tmp_path / "code.py").write_text("a = 1\n")
    git("add", "code.py")
    git("commit", "-qm", "first")
    first = git("rev-parse", "HEAD").strip()
    assert git_state(tmp_path) == {"commit": first, "dirty": False}
    (tmp_path / "code.py").write_text("a = 2\n")
    git("commit", "-qam", "made during the run")
    assert git_state(tmp_path)["commit"] == first
