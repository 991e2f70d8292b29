"""Run records: one JSON file per case under results/runs/<run>/, written atomically.

    from ftbench.core.record import CaseResult, RunStore, read_record, task_of
    store = RunStore.create("results")          # results/runs/20261128-061000-ab12cd/
    path = store.write(result)                  # a CaseResult
    result = CaseResult.from_record(read_record(path))
    task_of(result), method_of(result), processes_of(result), is_busy(result)

The accessors at the end read a record's axes the same way everywhere, filling in what records
written before an axis existed leave out (no task: MRPC's; no method: full; one process).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ftbench.core.errors import FtbenchError, RecordVersionError
from ftbench.core.files import write_json_atomic

# 2: throughput records carry `cost_curve` and `padding.batches` (the padding ceiling's inputs).
SCHEMA_VERSION = 2


def _upgrade_v1(record: dict[str, Any]) -> dict[str, Any]:
    """Version 1 had no cost curve, and its earliest records no method axis (all full)."""
    record.setdefault("cost_curve", None)
    record.setdefault("axes", {}).setdefault("method", "full")
    return record


# Older records are read by lifting them one version at a time; newer ones are refused.
UPGRADES = {1: _upgrade_v1}


# The record's sections that are always a mapping (empty where nothing was measured).
SECTIONS = (
    "axes", "metrics", "throughput", "padding", "memory", "times", "training", "checkpoint",
    "environment", "utilisation", "method", "machine",
)  # fmt: skip


@dataclass
class CaseResult:
    """Everything measured for one case; `to_record()` is the JSON that lands on disk."""

    case_id: str
    job: str
    profile: str
    axes: dict[str, str]
    metrics: dict[str, float | None]
    throughput: dict[str, Any]
    padding: dict[str, Any]
    memory: dict[str, Any]
    times: dict[str, float]
    training: dict[str, Any]
    checkpoint: dict[str, Any]
    environment: dict[str, Any]
    utilisation: dict[str, Any] = field(default_factory=dict)
    # full, lora or qlora: trainable parameters, adapter size on disk, quantization
    method: dict[str, Any] = field(default_factory=dict)
    time_to_accuracy: dict[str, Any] | None = None
    # throughput cases: the measured step-cost curve behind the padding ceiling
    # (ftbench.measure.costcurve, ftbench.core.cost)
    cost_curve: dict[str, Any] | None = None
    accuracy_meaningful: bool = True
    run_id: str | None = None  # the run directory's name: tells runs on one machine apart
    # The device probe around the timed window and what other processes used
    # (ftbench.measure.machine).
    machine: dict[str, Any] = field(default_factory=dict)
    # What the case trained and evaluated on: source, files' sha256, split sizes and content
    # hashes (ftbench.stack.dataid), and the rows it used after dropping those that don't fit.
    data: dict[str, Any] | None = None
    # Online RL (grpo): generation against the optimizer step, and per-step reward statistics.
    rollout: dict[str, Any] | None = None
    # Processes, world size, per-device and global batch, per-process rates, every rank's step
    # times, and for N > 1 the launcher and its config (ftbench.env.distributed,
    # ftbench.measure.launch).
    distributed: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    created_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def __post_init__(self) -> None:
        # A section an older or partial record left null reads as empty, so readers need no
        # guard; the sections that may be absent (cost curve, data, rollout, ...) stay None.
        for name in SECTIONS:
            if getattr(self, name) is None:
                setattr(self, name, {})

    def to_record(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, **asdict(self)}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> CaseResult:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in record.items() if k in names})


def read_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise FtbenchError(f"{path}: not a readable ftbench record ({exc})") from None
    version = record.get("schema_version") if isinstance(record, dict) else None
    if version == SCHEMA_VERSION:
        return record
    if version not in UPGRADES:
        raise RecordVersionError(
            f"{path}: record schema version {version!r}; this ftbench reads {SCHEMA_VERSION}"
            + (f" and older ({', '.join(map(str, sorted(UPGRADES)))})" if UPGRADES else "")
        )
    original = version
    while version != SCHEMA_VERSION:
        record = UPGRADES[version](record)
        version += 1
    record.update(schema_version=version, read_from_schema_version=original)
    return record


def read_run(directory: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every record in a run directory, and a note for each file that could not be read.

    A corrupt file is skipped with a note; a record of another schema version is an error,
    since mixing versions would put unlike numbers side by side.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FtbenchError(f"{directory}: not a directory")
    records, skipped = [], []
    for path in sorted(directory.glob("*.json")):
        try:
            records.append(read_record(path))
        except RecordVersionError:
            raise
        except FtbenchError as exc:
            skipped.append(f"skipped {exc}")
    if not records:
        raise FtbenchError(f"{directory}: holds no ftbench records (*.json)")
    return records, skipped


def record_filename(case_id: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-._" else "-" for c in case_id)
    return safe.strip("-") + ".json"


@dataclass
class RunStore:
    """One directory per `pytest bench/` run (or script run), one record per case in it."""

    directory: Path

    @classmethod
    def create(cls, results_dir: str | Path) -> RunStore:
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
        return cls(Path(results_dir) / "runs" / run_id)

    def write(self, result: CaseResult) -> Path:
        """One file per measurement: seeds and re-measures of a case never overwrite each other."""
        seed = result.training.get("seed")
        stem = record_filename(result.case_id)[: -len(".json")] + (
            f"-seed{seed}" if seed is not None else ""
        )
        path = self.directory / f"{stem}.json"
        attempt = 1
        while path.exists():
            attempt += 1
            path = self.directory / f"{stem}-{attempt}.json"
        result.run_id = self.directory.name
        return write_json_atomic(path, result.to_record())


# -- run directories, as reports read them ---------------------------------------------------


def run_directories(paths: list[Path]) -> list[Path]:
    """Run directories as given, or every run directory inside a given parent (results/runs)."""
    found = []
    for path in map(Path, paths):
        if path.is_dir() and not _is_run(path):
            children = sorted(p for p in path.iterdir() if p.is_dir() and _is_run(p))
            found += children or [path]
        else:
            found.append(path)
    return found


def _is_run(path: Path) -> bool:
    """A run's directory: case records, or only an invariants job's pairs."""
    return any(path.glob("*.json")) or any(path.glob("invariants/*.json"))


def load_runs(directories: list[Path]) -> tuple[list[CaseResult], list[str]]:
    results, notes = [], []
    for directory in run_directories(directories):
        records, skipped = read_run(Path(directory))
        notes += skipped
        upgraded = 0
        for record in records:
            try:
                result = CaseResult.from_record(record)
            except TypeError as exc:  # a required field missing: not a usable case record
                notes.append(f"skipped a record of {record.get('case_id')!r} in {directory}: {exc}")
                continue
            upgraded += "read_from_schema_version" in record
            result.run_id = result.run_id or Path(directory).name
            results.append(result)
        if upgraded:
            notes.append(f"{directory}: {upgraded} record(s) of an older schema, read as current")
    if not results:
        raise FtbenchError("no records to report on")
    return results, notes


# -- accessors: one reading of a record's axes, older records included ---------------------------


def task_of(result: CaseResult) -> str:
    """mrpc, sft, dpo, ...; records from before the task axis were MRPC's."""
    return result.axes.get("task") or "mrpc"


def method_of(result: CaseResult) -> str:
    """full, lora or qlora; records from before the method axis were full fine-tunes."""
    return result.axes.get("method") or "full"


def processes_of(result: CaseResult) -> int:
    """How many processes trained a record's case (records before the axis: one)."""
    return int((result.distributed or {}).get("processes") or result.axes.get("processes") or 1)


def batches_of(result: CaseResult) -> tuple[int | None, int | None]:
    """(per-device batch, global batch)."""
    d = result.distributed or {}
    batch = trained_recipe(result).get("batch_size")
    return d.get("per_device_batch_size", batch), d.get("global_batch_size", batch)


def device_label(result: CaseResult) -> str:
    """`Intel(R) Xeon(R) Processor (cpu)`: the device's name and the axis value."""
    env = result.environment or {}
    device = result.axes.get("device")
    return f"{env.get('device_name') or device} ({device})"


def seed_of(result: CaseResult) -> int | None:
    return result.training.get("seed")


def trained_recipe(result: CaseResult) -> dict[str, Any]:
    """What the case trained with (`CaseSpec.recipe`); {} in records that lack it."""
    return result.training.get("recipe") or {}


def contention_of(result: CaseResult) -> dict[str, Any]:
    """What other processes used while the case was timed (`ftbench.env.contention`)."""
    return result.machine.get("contention") or {}


def is_busy(result: CaseResult) -> bool:
    """Other processes loaded the device while `result` was timed."""
    return bool(contention_of(result).get("busy"))
