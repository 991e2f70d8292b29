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

import collections
from typing import TYPE_CHECKING, Any

import pytest

from ftbench.config.invariants import Pair, Side, Unbuilt, pairs_of, plan
from ftbench.core.files import write_json_atomic
from ftbench.env.devices import device_problem, precision_problem
from ftbench.judge.invariants import EXPECTED, FAILED, FIXED, compare, outcome
from ftbench.measure.launch import processes_problem
from ftbench.plugin.collect import MARKER
from ftbench.report.invariants import FOLDER, invariants_chart, invariants_text, read_invariants
from ftbench.stack.checkpoints import load_tokenizer

if TYPE_CHECKING:
    from pathlib import Path

    from ftbench.config.profiles import Job
    from ftbench.plugin.session import FtbSession
    from ftbench.plugin.settings import Settings

FIXTURE = "ftb_invariant"
NO_INVARIANTS = "has no invariants job selected"  # the skip reason: no case, like NOT_SELECTED


def parametrize(metafunc: pytest.Metafunc, settings: Settings) -> None:
    """One parameter per pair of each selected invariants job (of the marker's job, if any);
    a pair the job's settings can't make (one padding left by --ftb-padding, say) is one
    skipped parameter saying why."""
    marker = metafunc.definition.get_closest_marker(MARKER)
    file = marker.kwargs.get("file") if marker else None
    profile = settings.profile_of(file)
    named = bool(marker and marker.args)  # a job file's test is named after its job already
    if named:
        jobs = [j for j in profile.jobs if j.name == marker.args[0]]
    else:
        jobs = [job for job in profile.jobs if job.invariants]
    params = []
    for job in jobs:
        if not settings.selected(job.name):
            continue
        for planned in plan(job, profile):
            pair_id = planned.id if named else f"{job.name}-{planned.id}"
            if isinstance(planned, Unbuilt):
                skip = pytest.mark.skip(reason=f"{job.name}: {planned.id}: {planned.reason}")
                params.append(pytest.param(None, marks=skip, id=pair_id))
            else:
                params.append(pytest.param((file, job.name, planned.id), id=pair_id))
    if not params:
        reason = f"profile {profile.name!r} {NO_INVARIANTS}"
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
            # The pair launches on this machine only (no --ftb-accelerate-config).
            problem = parts.task_problem(spec.task, checkpoint) or processes_problem(
                spec.processes, spec.device, spec.training.batch_size, None
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
        try:
            a, b = traces.trace(self.pair.a), traces.trace(self.pair.b)
        finally:
            traces.done(self.pair)
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
        self._uses: collections.Counter[tuple] = collections.Counter()  # pairs still to run
        self._tokenizers: dict[str, Any] = {}  # by checkpoint spec, as the case fixtures keep
        self._written = 0

    def order(self, items: list[pytest.Item]) -> None:
        """Put the pairs after every other case, so their training (and the memory of the
        traces they keep) never precedes a timed case in the process; count which pairs use
        each side, so a trace is freed after its last pair."""
        pairs = [i for i in items if FIXTURE in getattr(i, "fixturenames", ())]
        if not pairs:
            return
        items[:] = [i for i in items if FIXTURE not in getattr(i, "fixturenames", ())] + pairs
        for item in pairs:
            param = getattr(getattr(item, "callspec", None), "params", {}).get(FIXTURE)
            if param is not None:
                pair = self._pair(param)
                self._uses.update([pair.a.key, pair.b.key])

    def done(self, pair: Pair) -> None:
        """A pair is compared (or failed): free the traces no later pair needs."""
        for key in (pair.a.key, pair.b.key):
            self._uses[key] -= 1
            if self._uses[key] <= 0:
                self._traces.pop(key, None)

    def _pair(self, param: tuple[str | None, str, str]) -> Pair:
        file, job_name, pair_id = param
        profile = self.session.settings.profile_of(file)
        return next(p for p in pairs_of(profile.job(job_name), profile) if p.id == pair_id)

    def case(self, param: tuple[str | None, str, str]) -> InvariantCase:
        file, job_name, _ = param
        job = self.session.settings.profile_of(file).job(job_name)
        pair = self._pair(param)
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
                parts = self.session.parts
                checkpoint = parts.checkpoint(spec.checkpoint)
                if spec.checkpoint not in self._tokenizers:
                    self._tokenizers[spec.checkpoint] = load_tokenizer(checkpoint)
                tokenizer = self._tokenizers[spec.checkpoint]
                trace = train_traced(
                    spec,
                    source,
                    resume_at=side.resume_at,
                    dropout=side.dropout,
                    data=parts.data(spec.task, source),
                    prepared=(checkpoint, tokenizer, parts.encoded(spec, checkpoint, tokenizer)),
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
