"""One `pytest bench/` session's state: profile, data, cases, records, progress and summary.

The plugin's hooks hand off to an `FtbSession` here, so they stay one line each. Nothing heavy
is imported until a benchmark case is collected.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ftbench.devices import DEVICES, PRECISIONS
from ftbench.errors import ConfigError, FtbenchError
from ftbench.padding import STRATEGIES

if TYPE_CHECKING:
    from ftbench.checkpoints import Checkpoint
    from ftbench.data import DataSource
    from ftbench.profiles import Job, Profile
    from ftbench.results import CaseResult, RunStore
    from ftbench.runner import CaseSpec


# -- option types: argparse calls them, so a bad value is a usage error naming the option -------


def list_of(kind: Callable[[str], Any], length: int | None = None) -> Callable[[str], list]:
    def parse(text: str) -> list:
        values = [kind(v.strip()) for v in text.split(",") if v.strip()]
        if not values or (length is not None and len(values) != length):
            raise ValueError(text)
        return values

    parse.__name__ = f"comma-separated list{f' of {length}' if length else ''}"
    return parse


def choices_of(allowed: Iterable[str], what: str) -> Callable[[str], list[str]]:
    allowed = tuple(allowed)

    def parse(text: str) -> list[str]:
        import argparse

        values = list_of(str)(text)
        unknown = [v for v in values if v not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(unknown)}; choose from {', '.join(allowed)}"
            )
        return values

    return parse


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


def float_value(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


padding_names = choices_of(STRATEGIES, "padding strategy")
PRECISIONS_AND_DEVICES = {
    "devices": choices_of(DEVICES, "device"),
    "precisions": choices_of(PRECISIONS, "precision"),
}
OVERRIDE_OPTIONS = {
    "checkpoints": "ftb_checkpoint",
    "paddings": "ftb_padding",
    "devices": "ftb_device",
    "precisions": "ftb_precision",
    "epochs": "ftb_epochs",
    "max_steps": "ftb_max_steps",
    "batch_size": "ftb_batch_size",
    "learning_rate": "ftb_learning_rate",
    "seed": "ftb_seed",
    "max_length": "ftb_max_length",
    "jobs": "ftb_job",
}


@dataclass
class Case:
    """A parametrized case with its loaded parts; `run()` trains, evaluates and records it."""

    spec: CaseSpec
    job: Job
    session: FtbSession
    nodeid: str
    parts: dict[str, Any] = field(repr=False)

    def run(self) -> CaseResult:
        from ftbench.runner import train_and_evaluate

        result = train_and_evaluate(
            self.spec,
            report=self.session.progress,
            progress_every=self.session.progress_every,
            **self.parts,
        )
        self.session.record(self.nodeid, result)
        return result

    def check_floors(self, result: CaseResult) -> None:
        """Fail when a finished fine-tune is below the profile's accuracy or F1 floor."""
        from ftbench.baselines import check_floors

        check_floors(result, self.job)


class FtbSession:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._profile: Profile | None = None
        self._pairs: Any = None
        self._checkpoints: dict[str, Checkpoint] = {}
        self._store: RunStore | None = None
        self.results: list[tuple[str, CaseResult]] = []
        self.outcomes: dict[str, str] = {}
        name = config.getoption("ftb_profile")
        from ftbench.profiles import PROFILES

        if name != "auto" and name not in PROFILES:
            raise pytest.UsageError(
                f"--ftb-profile: unknown profile {name!r}; choose from {', '.join(PROFILES)}, auto"
            )

    # -- configuration ---------------------------------------------------------------------------

    @property
    def profile(self) -> Profile:
        if self._profile is None:
            from ftbench.profiles import apply_overrides, default_profile_name, get_profile

            name = self.config.getoption("ftb_profile")
            overrides = {k: self.config.getoption(v) for k, v in OVERRIDE_OPTIONS.items()}
            try:
                profile = get_profile(default_profile_name() if name == "auto" else name)
                self._profile = apply_overrides(profile, **overrides)
                for job in overrides["jobs"] or ():
                    profile.job(job)
            except ConfigError as exc:
                raise pytest.UsageError(f"ftbench: {exc}") from None
        return self._profile

    @property
    def source(self) -> DataSource:
        from ftbench.data import DataSource

        option = self.config.getoption
        return DataSource(
            data_dir=option("ftb_data_dir"),
            train_file=option("ftb_train_file"),
            validation_file=option("ftb_validation_file"),
            test_file=option("ftb_test_file"),
            text_columns=tuple(option("ftb_text_columns")),
            label_column=option("ftb_label_column"),
        )

    @property
    def progress_every(self) -> float:
        every = self.config.getoption("ftb_progress_every")
        if every is not None:
            return every
        return 5.0 if sys.stdout.isatty() else 30.0

    # -- collection ------------------------------------------------------------------------------

    def job_of(self, node: Any) -> Job:
        marker = node.get_closest_marker("ftbench")
        if marker is None or not marker.args:
            raise ConfigError(f"{node.nodeid}: uses ftb_case but has no @pytest.mark.ftbench(job)")
        return self.profile.job(marker.args[0])

    def parametrize(self, metafunc: pytest.Metafunc) -> None:
        from ftbench.checkpoints import checkpoint_name

        marker = metafunc.definition.get_closest_marker("ftbench")
        wanted = marker.args[0] if marker and marker.args else None
        if wanted not in self.profile.job_names():
            # One skipped case, so the job shows up in the report with the reason.
            reason = f"job {wanted!r} is not selected in profile {self.profile.name!r}"
            unselected = pytest.param(
                None, marks=pytest.mark.skip(reason=reason), id="not-selected"
            )
            metafunc.parametrize("ftb_checkpoint", [unselected], indirect=True)
            return
        job = self.profile.job(wanted)
        axes = (
            ("ftb_checkpoint", job.checkpoints, [checkpoint_name(c) for c in job.checkpoints]),
            ("ftb_padding", job.paddings, None),
            ("ftb_device", job.devices, None),
            ("ftb_precision", job.precisions, None),
        )
        for fixture, values, ids in axes:
            metafunc.parametrize(fixture, list(values), ids=ids, indirect=True, scope="session")

    def preflight(self, items: list[pytest.Item]) -> None:
        """Fail the whole run early, with one message, on unusable data or checkpoints."""
        if self.config.option.collectonly:
            return
        cases = [i for i in items if "ftb_case" in getattr(i, "fixturenames", ())]
        cases = [i for i in cases if i.get_closest_marker("skip") is None]
        if not cases:
            return
        specs = {i.callspec.params["ftb_checkpoint"] for i in cases if hasattr(i, "callspec")}
        try:
            for spec in sorted(specs):
                self.checkpoint(spec)
            self.pairs()
        except FtbenchError as exc:
            raise pytest.UsageError(f"ftbench: {exc}") from None

    # -- shared parts, built once per session ----------------------------------------------------

    def checkpoint(self, spec: str) -> Checkpoint:
        if spec not in self._checkpoints:
            from ftbench.checkpoints import resolve_checkpoint

            self._checkpoints[spec] = resolve_checkpoint(spec)
        return self._checkpoints[spec]

    def pairs(self) -> Any:
        if self._pairs is None:
            from ftbench.data import load_pairs

            self._pairs = load_pairs(self.source)
        return self._pairs

    def case(
        self, *, node: Any, job: Job, padding: str, device: str, precision: str, **parts: Any
    ) -> Case:
        from ftbench.runner import CaseSpec

        spec = CaseSpec(
            job=job.name,
            checkpoint=parts["checkpoint"].spec,
            padding=padding,
            device=device,
            precision=precision,
            training=job.training,
            profile=self.profile.name,
            max_length=self.profile.max_length,
        )
        return Case(spec=spec, job=job, session=self, nodeid=node.nodeid, parts=parts)

    # -- results ---------------------------------------------------------------------------------

    @property
    def store(self) -> RunStore:
        if self._store is None:
            from ftbench.results import RunStore

            self._store = RunStore.create(self.config.getoption("ftb_results_dir"))
        return self._store

    def record(self, nodeid: str, result: CaseResult) -> Path:
        self.results.append((nodeid, result))
        return self.store.write(result)

    def progress(self, line: str) -> None:
        """Write a progress line to the terminal, past pytest's output capture."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        with capman.global_and_fixture_disabled() if capman else nullcontext():
            reporter.write_line(f"[ftbench] {line}")
            reporter.write("", flush=True)  # CI logs are files: show the line now

    def on_report(
        self, item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo
    ) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.outcomes[item.nodeid] = report.outcome
        # ftbench's own errors say all there is to say: show the message, not the traceback.
        if call.excinfo is not None and isinstance(call.excinfo.value, FtbenchError):
            report.longrepr = f"{type(call.excinfo.value).__name__}: {call.excinfo.value}"

    def display(self, reporter: Any) -> None:
        if not self.results:
            return
        from ftbench.report import cases_table

        reporter.section("ftbench results")
        table = cases_table(
            [r for _, r in self.results], [self.outcomes.get(n) for n, _ in self.results]
        )
        for line in table.to_string(index=False).splitlines():
            reporter.write_line(line)
        for _, result in self.results:
            for note in result.notes:
                reporter.write_line(f"note: {result.case_id}: {note}")
        ran = {r.job for _, r in self.results}
        for job in self.profile.jobs:
            if job.floors_off and job.name in ran:
                reporter.write_line(
                    f"note: {job.name}: accuracy floors not checked ({job.floors_off})"
                )
        reporter.write_line(f"records: {self.store.directory}")
