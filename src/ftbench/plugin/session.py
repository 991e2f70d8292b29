"""One `pytest bench/` run: the plugin's hooks hand off here, so each stays one line.

    session = FtbSession(config)
    session.parametrize(metafunc); session.preflight(items)    # collection
    case = session.case(node=..., job=..., spec=..., **parts)   # what `ftb_case` hands a test
    session.display(terminalreporter)                           # the summary

It composes the run's parts, each in its own module: `Settings` (the options, read once),
`Parts` (checkpoints and data, built once), `Ledger` (records, outcomes, statuses, baselines),
and collection (`collect`). A `Case` sees the session only through `CaseHost`. Nothing heavy
is imported until a benchmark case is collected.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ftbench.config.build import case_spec, source_options
from ftbench.core.errors import CaseOutOfMemoryError, FtbenchError
from ftbench.env.oom import release
from ftbench.judge.throughput import depends_on_the_past
from ftbench.measure.launch import DATA_OPTIONS, launch_case, option_args, processes_problem
from ftbench.plugin import collect, invariants
from ftbench.plugin.case import Case
from ftbench.plugin.collect import NOT_SELECTED
from ftbench.plugin.interrupt import was_interrupted
from ftbench.plugin.invariants import NO_INVARIANTS, Invariants
from ftbench.plugin.ledger import Ledger
from ftbench.plugin.parts import Parts
from ftbench.plugin.settings import Settings
from ftbench.report.terminal import write_summary
from ftbench.tasks import known_metrics, travels

CASE_FIXTURES = {"ftb_case", "ftb_invariant"}  # what makes a test one of the run's cases

if TYPE_CHECKING:
    from ftbench.config.profiles import Job
    from ftbench.core.record import CaseResult
    from ftbench.core.spec import CaseSpec
    from ftbench.judge.baselines import BaselineStore
    from ftbench.stack.checkpoints import Checkpoint


class FtbSession:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.settings = Settings(config)
        self.parts = Parts(self.settings.source)
        self.ledger = Ledger(self.settings)
        self._usage_error: pytest.UsageError | None = None
        self.skips: dict[str, str | None] = {}  # the run's cases: nodeid -> why skipped, or None
        self.nothing_ran: str | None = None  # why the run fails though nothing failed
        self.invariants = Invariants(self)

    # -- collection ------------------------------------------------------------------------------

    def parametrize(self, metafunc: pytest.Metafunc) -> None:
        self._usage_error = collect.parametrize(metafunc, self.settings) or self._usage_error

    def parametrize_invariants(self, metafunc: pytest.Metafunc) -> None:
        try:
            invariants.parametrize(metafunc, self.settings)
        except pytest.UsageError as exc:
            self._usage_error = self._usage_error or exc
            metafunc.parametrize("ftb_invariant", [pytest.param(None, id="unusable-options")])

    def preflight(self, items: list[pytest.Item]) -> None:
        if self._usage_error is not None:
            raise self._usage_error
        if not self.config.option.collectonly:
            collect.preflight(items, self.settings, self.parts, self.ledger)

    def job_of(self, node: Any) -> Job:
        return collect.job_of(node, self.settings)

    # -- a case: what the fixtures build, and `CaseHost` for the case ----------------------------

    def case_spec(self, job: Job, file: str | None = None, **axes: Any) -> CaseSpec:
        """The case's spec, from its job's profile (a job file's, or the built-in one)."""
        spec = case_spec(job, self.settings.profile_of(file), **axes)
        self.parts.use(spec, job.data)
        return spec

    def case(self, *, node: Any, job: Job, spec: CaseSpec, **parts: Any) -> Case:
        return Case(spec=spec, job=job, session=self, nodeid=node.nodeid, parts=parts)

    @property
    def results(self) -> list[tuple[str, CaseResult]]:
        return self.ledger.results

    @property
    def statuses(self) -> dict[str, str]:
        return self.ledger.statuses

    def seeds(self, job: Job, base: int) -> list[int]:
        """`--ftb-seeds N` repeats quality cases over N seeds, so the spread is measured."""
        known = known_metrics()
        has_quality = any(known[m].quality for m in job.gates if m in known)
        count = self.settings.seeds if has_quality and job.training.evaluate else 1
        return [base + i for i in range(count)]

    def fresh_model(self, spec: CaseSpec, checkpoint: Checkpoint, tokenizer: Any) -> dict[str, Any]:
        return self.parts.fresh_model(spec, checkpoint, tokenizer)

    def cost_curve(self, spec: CaseSpec, parts: dict[str, Any]) -> dict[str, Any]:
        return self.parts.cost_curve(spec, parts, report=self.progress)

    def processes_problem(self, spec: CaseSpec) -> str | None:
        """Why this case can't run in its number of processes here (a skip), or None."""
        return processes_problem(
            spec.processes, spec.device, spec.training.batch_size, self.settings.accelerate_config
        )

    def fresh_process(self, job: Job, spec: CaseSpec) -> bool:
        """Whether a one-process case trains in a fresh process of its own (issue 20): those
        that gate a figure the process's past moves, unless --ftb-in-process or its task is
        known to this process only."""
        return (
            spec.processes == 1
            and not self.settings.in_process
            and depends_on_the_past(job.gates)
            and travels(spec.task)
        )

    def runs_elsewhere(self, job: Job, spec: CaseSpec) -> bool:
        """Trained in other processes (N > 1 under accelerate, or a fresh one), which load
        their own model and data: this process builds neither for it."""
        return spec.processes > 1 or self.fresh_process(job, spec)

    def known_cost_curve(self, spec: CaseSpec) -> dict[str, Any] | None:
        return self.parts.known_cost_curve(spec)

    def keep_cost_curve(self, spec: CaseSpec, curve: dict[str, Any] | None) -> Any:
        return self.parts.keep_cost_curve(spec, curve)

    def launch(
        self, spec: CaseSpec, cost_curve: bool = False, evaluate_after: bool = True
    ) -> CaseResult:
        """Run a case in other processes (ftbench.measure.launch): N > 1 under accelerate
        launch, one in a fresh interpreter; `cost_curve` times the ceiling's curve there too;
        without `evaluate_after` it stops after training (a re-measure)."""
        config_file = self.settings.accelerate_config
        source = self.parts.source_of(spec)
        data_options = source_options(source) if source is not self.parts.source else None
        result = launch_case(
            spec,
            option_args(data_options or self.settings.get, DATA_OPTIONS),
            config_file=config_file,
            timeout=self.settings.launch_timeout,
            echo=self.progress,
            extra_args=["--progress-every", str(self.settings.progress_every)]
            + (["--cost-curve"] if cost_curve else [])
            + ([] if evaluate_after else ["--no-evaluation-after"]),
        )
        if result is None:
            pytest.skip(f"{config_file} is not machine rank 0: the main machine keeps the record")
        return result

    def record(self, nodeid: str, result: CaseResult) -> Path:
        # Every record knows its data: the identity beside the rows the case used.
        task = result.axes.get("task", "mrpc")
        source = self.parts.source_for(result.profile, result.job)
        result.data = {**self.parts.data_identity(task, source), **(result.data or {})}
        return self.ledger.record(nodeid, result)

    def baseline_location(self, device: str, profile: str) -> tuple[BaselineStore, str, str]:
        return self.ledger.baseline_location(device, profile)

    def stage_baseline(self, case: Case) -> None:
        self.ledger.stage_baseline(case)

    def progress(self, line: str) -> None:
        """Write a progress line to the terminal, past pytest's output capture."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        with capman.global_and_fixture_disabled() if capman else nullcontext():
            reporter.write_line(f"[ftbench] {line}")
            reporter.write("", flush=True)  # CI logs are files: show the line now

    # -- outcomes --------------------------------------------------------------------------------

    def called(self, item: pytest.Item, error: BaseException | None) -> None:
        """After a test's call phase: its case's status, from the gate or its error."""
        case = getattr(item, "funcargs", {}).get("ftb_case")
        if isinstance(case, Case):
            self.ledger.case_status(case, error)

    def on_report(
        self, item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo
    ) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.ledger.outcomes[item.nodeid] = report.outcome
        fixtures = getattr(item, "fixturenames", ())
        if CASE_FIXTURES & set(fixtures) and report.when in ("setup", "call"):
            reason = _skip_reason(report)
            if hasattr(report, "wasxfail"):  # an expected divergence ran: it is no skip
                reason = None
            # an unselected job isn't a case
            if reason is None or not any(n in reason for n in (NOT_SELECTED, NO_INVARIANTS)):
                self.skips[item.nodeid] = reason
        error = call.excinfo.value if call.excinfo is not None else None
        if isinstance(error, CaseOutOfMemoryError):
            release(error)  # issue 12: the next case gets the memory back
        # ftbench's own errors say all there is to say: show the message, not the traceback.
        if isinstance(error, FtbenchError):
            report.longrepr = f"{type(error).__name__}: {error}"

    def finish(self, session: pytest.Session) -> None:
        self.ledger.finish(was_interrupted(self.config))
        skipped = [why for why in self.skips.values() if why is not None]
        all_skipped = bool(self.skips) and len(skipped) == len(self.skips)
        if all_skipped and session.exitstatus == 0 and not self.settings.get("ftb_allow_skips"):
            # issue 20: a GPU runner that can't see its GPU would otherwise pass green
            reasons = sorted(set(skipped))
            more = f" (and {len(reasons) - 1} other reason(s))" if len(reasons) > 1 else ""
            self.nothing_ran = (
                f"ftbench: all {len(skipped)} selected case(s) skipped, so nothing was "
                f"measured: {reasons[0]}{more}; --ftb-allow-skips accepts such a run"
            )
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def display(self, reporter: Any) -> None:
        ran = {r.job for _, r in self.results}
        jobs = [job for profile in self.settings.profiles_in_use() for job in profile.jobs]
        floors_off = {j.name: j.floors_off for j in jobs if j.floors_off and j.name in ran}
        write_summary(
            reporter,
            self.results,
            self.ledger.outcomes,
            self.statuses,
            floors_off,
            self.ledger.store.directory if self.results else None,
            self.ledger.baseline_report,
        )
        invariant_lines = self.invariants.summary()
        if invariant_lines:
            reporter.section("ftbench invariants")
            for line in invariant_lines:
                reporter.write_line(line, red="fail" in line or "unexpectedly" in line)
        if self.nothing_ran:
            reporter.write_line(self.nothing_ran, red=True, bold=True)


def _skip_reason(report: pytest.TestReport) -> str | None:
    """The reason of a skipped report ("device cuda: CUDA is not available ..."), else None."""
    if not report.skipped:
        return None
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")
