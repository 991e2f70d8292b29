"""Records on disk: atomic writes, and clear errors for corrupt or foreign files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftbench.errors import FtbenchError
from ftbench.results import read_record, record_filename, write_json_atomic


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
