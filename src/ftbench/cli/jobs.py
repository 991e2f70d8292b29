"""`ftbench jobs`: the jobs pytest would collect, the size of each matrix, and where each is.

ftbench jobs                       # job files under the current directory
ftbench jobs recipes/ --json       # their names, for a CI matrix
ftbench jobs --profile full        # a built-in profile's jobs
ftbench jobs --fields              # every job-file field, as markdown (docs/jobs.md)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from pathlib import Path

from ftbench.config.invariants import pairs_of
from ftbench.config.jobfile import (
    builtin_profiles,
    fields_markdown,
    find_job_files,
    listed_in_pyproject,
    load_job_file,
)
from ftbench.config.profiles import Profile, get_profile
from ftbench.core.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        help="job files or folders to look in (default: the current directory, as pytest)",
    )
    parser.add_argument("--profile", help="a built-in profile's jobs instead: smoke or full")
    parser.add_argument("--json", action="store_true", help="only the names, as a JSON list")
    parser.add_argument(
        "--fields", action="store_true", help="every job-file field, as markdown (docs/jobs.md)"
    )


def main(args: argparse.Namespace) -> int:
    if args.fields:
        print(fields_markdown(), end="")
        return 0
    try:
        profiles = _profiles(args.profile, args.paths)
    except ConfigError as exc:
        print(f"ftbench jobs: {exc}", file=sys.stderr)
        return 2
    jobs = [job for profile in profiles for job in profile.jobs]
    if args.json:
        print(json.dumps([job.name for job in jobs]))
        return 0
    if not jobs:
        print(
            "ftbench jobs: no job files here (ftbench*.yaml, or [tool.ftbench] jobs in "
            f"pyproject.toml); built-in profiles: {', '.join(builtin_profiles())} "
            "(ftbench jobs --profile NAME); start one with `ftbench init`",
            file=sys.stderr,
        )
        return 1
    rows = [("job", "task", "cases", "profile", "gates", "source")]
    for profile in profiles:
        for job in profile.jobs:
            axes = (job.checkpoints, job.paddings, job.devices, job.precisions, job.methods,
                    job.processes)  # fmt: skip
            cases = math.prod(len(axis) for axis in axes)
            gates = ", ".join(job.gates)
            if job.invariants:  # its tests are its pairs, judged within their bounds
                cases = len(pairs_of(job, profile))
                gates = "invariants: " + ", ".join(job.invariants)
            rows.append((job.name, job.task, str(cases), profile.name, gates, _short(job)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1])
    return 0


def _profiles(profile: str | None, paths: list[Path]) -> list[Profile]:
    if profile is not None:
        return [get_profile(profile)]
    roots = paths or [Path.cwd()]
    files = []
    for root in roots:
        if not root.exists():
            raise ConfigError(f"{root}: no such file or folder")
        listed = listed_in_pyproject(root) if root.is_dir() else []
        files += find_job_files(root, listed)
    for path in files:
        _register_from_conftests(path.parent)
    return [load_job_file(path) for path in files]


def _register_from_conftests(folder: Path) -> None:
    """Tasks a conftest.py registers through `pytest_ftbench_register_tasks`, as pytest would
    before collecting a job file in `folder` (its conftest.py and those of its parents)."""
    import importlib.util

    from ftbench.tasks import register_task

    for directory in reversed([folder.resolve(), *folder.resolve().parents]):
        conftest = directory / "conftest.py"
        if not conftest.is_file():
            continue
        sys.path.insert(0, str(directory))  # as pytest's default import mode does
        spec = importlib.util.spec_from_file_location(f"conftest_{abs(hash(conftest))}", conftest)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # a conftest that only runs under pytest: its tasks stay unknown
            print(f"ftbench jobs: {conftest}: not loaded ({type(exc).__name__}: {exc})",
                  file=sys.stderr)  # fmt: skip
            continue
        hook = getattr(module, "pytest_ftbench_register_tasks", None)
        if hook is not None:
            hook(register=register_task)


def _short(job: object) -> str:
    """The job's file and line, relative to the current directory where it is under it."""
    origin = getattr(job, "origin", "")
    path, _, line = origin.rpartition(":")
    with contextlib.suppress(ValueError):  # outside the current directory: as it is
        path = str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    return f"{path}:{line}" if line else origin
