"""Invariant pairs as tests: `ftb_invariant` is one pair of an invariants job, ready to check.

    def test_invariant(ftb_invariant):
        ftb_invariant.check()     # train both sides (cached), compare, pass / fail / xfail

    bench/test_invariants.py::test_invariant[invariants-mrpc-grad-accum]

Each job with `invariants:` in the run's profile (or, in a job file, that job) gives one test per
pair. Side a of several pairs is often the same run: it trains once per session. Each pair's
comparison lands in results/runs/<run>/invariants/, and the summary shows the table; the chart
of every pair's loss curves is written beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ftbench.config.invariants import Pair, Side, pairs_of
from ftbench.core.errors import ConfigError
from ftbench.core.files import write_json_atomic
from ftbench.env.devices import device_problem, precision_problem
from ftbench.judge.invariants import EXPECTED, FAILED, FIXED, compare, outcome
from ftbench.plugin.collect import MARKER, NOT_SELECTED
from ftbench.report.invariants import FOLDER, invariants_chart, invariants_text, read_invariants

if TYPE_CHECKING:
    from pathlib import Path

    from ftbench.config.profiles import Job
    from ftbench.plugin.session import FtbSession
    from ftbench.plugin.settings import Settings

FIXTURE = "ftb_invariant"


def parametrize(metafunc: pytest.Metafunc, settings: Settings) -> None:
    """One parameter per pair of each selected invariants job (of the marker's job, if any)."""
    marker = metafunc.definition.get_closest_marker(MARKER)
    file = marker.kwargs.get("file") if marker else None
    profile = settings.profile_of(file)
    if marker and marker.args:
        jobs = [profile.job(marker.args[0])]
    else:
        jobs = [job for job in profile.jobs if job.invariants]
    params = []
    for job in jobs:
        if not settings.selected(job.name):
            continue
        try:
            pairs = pairs_of(job, profile)
        except ConfigError as exc:
            raise pytest.UsageError(f"ftbench: {exc}") from None
        # A job file's test is named after its job already: its ids are the pairs'.
        named = bool(marker and marker.args)
        params += [
            pytest.param(
                (file, job.name, pair.id), id=pair.id if named else f"{job.name}-{pair.id}"
            )
            for pair in pairs
        ]
    if not params:
        reason = f"no invariants job {NOT_SELECTED} {profile.name!r}"
        params = [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="not-selected")]
    metafunc.parametrize(FIXTURE, params, indirect=True)


class InvariantCase:
    """One pair: `check()` trains both sides, compares them and gives the verdict."""

    def __init__(self, session: FtbSession, job: Job, pair: Pair, file: str | None) -> None:
        self.session, self.job, self.pair, self.file = session, job, pair, file

    def problem(self) -> str | None:
        """Why this pair can't run here (a skip): a device, precision, package or processes."""
        parts = self.session.parts
        for side in (self.pair.a, self.pair.b):
            spec = side.spec
            problem = device_problem(spec.device)
            if problem:
                return f"device {spec.device}: {problem}"
            problem = precision_problem(spec.device, spec.precision)
            if problem:
                return f"{spec.precision} on {spec.device}: {problem}"
            checkpoint = parts.checkpoint(spec.checkpoint)
            if checkpoint is None:
                return parts.unavailable(spec.checkpoint)
            problem = parts.task_problem(spec.task, checkpoint) or self.session.processes_problem(
                spec
            )
            if problem:
                return problem
        return None

    def check(self) -> str:
        """Pass, fail with the one line, or xfail a known divergence; returns the status."""
        problem = self.problem()
        if problem:
            pytest.skip(problem)
        traces = self.session.invariants
        a, b = traces.trace(self.pair.a), traces.trace(self.pair.b)
        labels = (self.pair.a.label, self.pair.b.label)
        comparison = compare(self.pair.id, a, b, self.pair.bounds, labels)
        status, line = outcome(comparison, self.pair.expected)
        self.session.invariants.keep(self, comparison.to_dict(), status, line)
        if status in (FAILED, FIXED):
            pytest.fail(f"{self.job.name}: {line}", pytrace=False)
        if status == EXPECTED:
            pytest.xfail(f"{self.job.name}: {line}")
        return status


class Invariants:
    """A session's traces (each side trained once) and the pairs it compared."""

    def __init__(self, session: FtbSession) -> None:
        self.session = session
        self._traces: dict[tuple, Any] = {}
        self._written = 0

    def case(self, param: tuple[str | None, str, str]) -> InvariantCase:
        file, job_name, pair_id = param
        profile = self.session.settings.profile_of(file)
        job = profile.job(job_name)
        pair = next(p for p in pairs_of(job, profile) if p.id == pair_id)
        self.session.parts.use(pair.a.spec, job.data)
        return InvariantCase(self.session, job, pair, file)

    def trace(self, side: Side) -> Any:
        """The side's trace: trained now, or earlier in this session for another pair."""
        if side.key not in self._traces:
            from ftbench.measure.trace import trace_in_processes, train_traced

            spec = side.spec
            source = self.session.parts.source_of(spec)
            steps = spec.training.max_steps
            self.session.progress(f"{spec.job}: training {side.label}, {steps} steps")
            if spec.processes > 1:
                trace = trace_in_processes(
                    spec, source, dropout=side.dropout, timeout=self.session.settings.launch_timeout
                )
            else:
                data = self.session.parts.data(spec.task, source)
                trace = train_traced(
                    spec, source, resume_at=side.resume_at, dropout=side.dropout, data=data
                )
            self._traces[side.key] = trace
        return self._traces[side.key]

    def keep(self, case: InvariantCase, comparison: dict[str, Any], status: str, line: str) -> None:
        """The pair's comparison, as a file of the run (atomically)."""
        pair = case.pair
        row = {
            "job": case.job.name,
            "pair": pair.id,
            "invariant": pair.invariant,
            "title": pair.title,
            "task": pair.a.spec.task,
            "checkpoint": pair.a.spec.checkpoint,
            "device": pair.a.spec.device,
            "precision": pair.a.spec.precision,
            "bounds": pair.bounds.as_dict(),
            "expected": (
                {"reason": pair.expected.reason, "link": pair.expected.link}
                if pair.expected
                else None
            ),
            "status": status,
            "line": line,
            "order": self._written,
            "comparison": comparison,
        }
        self._written += 1
        directory = self.session.ledger.store.directory / FOLDER
        write_json_atomic(directory / f"{case.job.name}[{pair.id}].json", row)

    @property
    def run_dir(self) -> Path | None:
        return self.session.ledger.store.directory if self._written else None

    def summary(self) -> list[str]:
        """The table's lines, and where the chart is; nothing if no pair was compared."""
        if self.run_dir is None:
            return []
        rows = read_invariants(self.run_dir)
        chart = invariants_chart(rows, self.run_dir / "invariants.png")
        lines = invariants_text(rows)
        return [*lines, f"invariants chart: {chart}"] if chart else lines
