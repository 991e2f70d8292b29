"""One parametrized case inside pytest: run it (over seeds), then gate it.

    @pytest.mark.ftbench("finetune")
    def test_finetune(ftb_case):
        result = ftb_case.run()       # trains and evaluates once per seed, records each
        ftb_case.check()              # floors, then the baseline gates; raises on a miss

`Case.run()` trains through `ftbench.measure.runner.train_and_evaluate`. `Case.check()` asks
`ftbench.judge` for every verdict; what needs the device stays here: waiting for a busy device
to go quiet, and measuring a throughput regression once more before failing it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from ftbench.core.errors import RegressionError
from ftbench.core.record import is_busy
from ftbench.env.contention import wait_until_idle
from ftbench.judge import verdict
from ftbench.judge.baselines import BORROWED, check_floors
from ftbench.judge.scaling import loss_ratio, note_efficiency, one_process_of, quality_verdicts
from ftbench.judge.throughput import busy_message, depends_on_the_past, is_timed
from ftbench.measure.runner import release_model, train_and_evaluate
from ftbench.report.tables import timed_rounds
from ftbench.stack.dataid import floors_off
from ftbench.tasks import get_task, known_metrics

if TYPE_CHECKING:
    from ftbench.config.profiles import Job
    from ftbench.core.record import CaseResult
    from ftbench.core.spec import CaseSpec
    from ftbench.judge.baselines import BaselineStore
    from ftbench.plugin.settings import Settings


class CaseHost(Protocol):
    """What a case needs from the session that runs it (`FtbSession`): no pytest config; the
    options were read once, into `settings` (source, gate policy, progress, baselines)."""

    settings: Settings
    results: list[tuple[str, CaseResult]]  # this run's, so far

    def seeds(self, job: Job, base: int) -> list[int]: ...
    def fresh_model(self, spec: CaseSpec, checkpoint: Any, tokenizer: Any) -> dict[str, Any]: ...
    def cost_curve(self, spec: CaseSpec, parts: dict[str, Any]) -> dict[str, Any]: ...
    def record(self, nodeid: str, result: CaseResult) -> Any: ...
    def progress(self, line: str) -> None: ...
    def stage_baseline(self, case: Case) -> None: ...
    def launch(
        self, spec: CaseSpec, cost_curve: bool = False, evaluate_after: bool = True
    ) -> CaseResult: ...
    def runs_elsewhere(self, job: Job, spec: CaseSpec) -> bool: ...
    def known_cost_curve(self, spec: CaseSpec) -> dict[str, Any] | None: ...
    def keep_cost_curve(self, spec: CaseSpec, curve: dict[str, Any] | None) -> Any: ...
    def baseline_location(self, device: str, profile: str) -> tuple[BaselineStore, str, str]: ...


@dataclass
class Case:
    spec: CaseSpec
    job: Job
    session: CaseHost
    nodeid: str
    parts: dict[str, Any] = field(repr=False)
    results: list[CaseResult] = field(default_factory=list)
    status: str | None = None  # the gate's word on it, for the summary and JUnit

    # -- running ---------------------------------------------------------------------------------

    def run(self, benchmark: Any = None) -> CaseResult:
        """Train and evaluate, once per seed (`--ftb-seeds`); record each; return the first."""
        launched = benchmark if benchmark is not None and self.launched else None
        if launched is not None:
            benchmark = None  # pytest-benchmark times rounds in this process; this one can't
        for index, seed in enumerate(self.session.seeds(self.job, self.spec.training.seed)):
            spec = replace(self.spec, training=replace(self.spec.training, seed=seed))
            self.results.append(self._measure(spec, fresh_model=index > 0, benchmark=benchmark))
            benchmark = None  # pytest-benchmark times one run per test
        if launched is not None:
            hand_rounds(launched, self.results[0], self.spec)
        return self.results[0]

    @property
    def launched(self) -> bool:
        """Trained in other processes: N > 1 under accelerate, or a gated one in a fresh one."""
        return self.session.runs_elsewhere(self.job, self.spec)

    def _measure(
        self,
        spec: CaseSpec,
        *,
        fresh_model: bool,
        benchmark: Any = None,
        quality_from: CaseResult | None = None,
    ) -> CaseResult:
        """Train `spec` here or elsewhere, and record it. A re-measure (`quality_from`, the
        measurement it repeats) stops after training and keeps that one's quality."""
        evaluate_after = quality_from is None
        result = self._train(spec, fresh_model, benchmark, evaluate_after)
        if quality_from is not None:
            carry_quality(result, quality_from)
        self.session.record(self.nodeid, result)
        return result

    def _train(
        self, spec: CaseSpec, fresh_model: bool, benchmark: Any, evaluate_after: bool
    ) -> CaseResult:
        if spec.processes == 1 and self.launched:  # issue 20: timed apart from this process
            # MRPC's fixed-step padding cases time the ceiling's cost curve in the same fresh
            # process, once per group; the group's other cases reuse it.
            curve = spec.task == "mrpc" and not spec.training.evaluate
            known = self.session.known_cost_curve(spec) if curve else None
            result = self.session.launch(
                spec, cost_curve=curve and known is None, evaluate_after=evaluate_after
            )
            if curve:
                result.cost_curve = self.session.keep_cost_curve(spec, known or result.cost_curve)
            return result
        if spec.processes > 1:  # trained in N processes under accelerate launch, not here
            result = self.session.launch(spec, evaluate_after=evaluate_after)
            one_id = replace(spec, processes=1).case_id
            seed = spec.training.seed
            ran = [r for _, r in self.session.results]
            one = [r for r in ran if r.case_id == one_id and r.training.get("seed") == seed]
            note_efficiency(result, one[-1] if one else None)
            return result
        parts = dict(self.parts)
        if fresh_model:
            parts.update(self.session.fresh_model(spec, parts["checkpoint"], parts["tokenizer"]))
        result = train_and_evaluate(
            spec,
            report=self.session.progress,
            progress_every=self.session.settings.progress_every,
            benchmark=benchmark,
            evaluate_after=evaluate_after,
            **parts,
        )
        result.machine = {**result.machine, "timed_in": "pytest's process"}
        settings = self.session.settings
        if not settings.in_process and depends_on_the_past(self.job.gates):
            result.notes.append(  # it would have trained in a fresh process (issue 20)
                f"timed in pytest's process: another process can't import task {spec.task!r} "
                "(define its class in a module, or install it as an entry point)"
            )
        if benchmark is not None:
            benchmark.extra_info.update(_benchmark_info(result, spec))
        release_model(parts["model"], spec.device)  # the next seed's peak is its own
        # The padding ceiling's cost curve, once per group, for MRPC's fixed-step padding cases
        # (it times classification steps on made-up token ids).
        if spec.task == "mrpc" and not spec.training.evaluate:
            result.cost_curve = self.session.cost_curve(spec, parts)
        return result

    def _settle(self) -> None:
        """While the last measurement was taken on a busy device, wait for quiet and measure
        again, within `--ftb-busy-wait` seconds; the last measurement is then the one judged."""
        deadline = time.monotonic() + self.session.settings.policy_for(self.spec.profile).busy_wait
        while is_busy(self.results[-1]):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.session.progress(
                f"{self.spec.case_id}: {busy_message(self.results[-1])} while timed; waiting up "
                f"to {left:.0f} s for it to go quiet, then measuring again"
            )
            if wait_until_idle(self.spec.device, limit=left) is not None:
                return
            again = self._measure(self.spec, fresh_model=True, quality_from=self.results[0])
            self.results.append(again)

    # -- gating: the verdicts are `ftbench.judge`'s; waiting and re-measuring are the case's -----

    def check(self) -> str:
        """Floors first, then the baseline gates; raise a named error on a miss. Returns the
        status the summary shows ("within bounds", "no baseline", ...), also kept in `status`."""
        job = self.job
        # A built-in task's floors are calibrated on its default data; they say nothing about
        # other data. A job file's own data comes with its own floors.
        calibrated_on = get_task(self.spec.task).calibrated_on(self.session.settings.source)
        off = floors_off(self.results[0].data, calibrated_on) if job.data is None else None
        if off and job.floors_off is None and (job.floors or job.lora.floors):
            job = replace(job, floors={}, lora=replace(job.lora, floors={}), floors_off=off)
            self.results[0].notes.append(f"floors not checked: {off}")
        for result in self.results:
            check_floors(result, job)
        if self.spec.processes > 1:
            self._check_against_one_process()
        if self.session.settings.updating_baselines:
            self.session.stage_baseline(self)
            self.status = "staged for update"
        else:
            self.status = self._gate()
        return self.status

    def _check_against_one_process(self) -> None:
        """Same global batch, same steps: quality must match one process's, in this run,
        within the metric's accuracy gate (σ from the one-process baseline, if any)."""
        known = known_metrics()
        quality = [m for m in self.job.gates if m in known and known[m].quality]
        ran = [r for _, r in self.session.results]
        one_id = replace(self.spec, processes=1).case_id
        store, hardware_id, profile = self.session.baseline_location(
            self.spec.device, self.spec.profile
        )
        entry = store.entry(hardware_id, profile, one_id) or {}
        std = {m: s.get("std", 0.0) for m, s in (entry.get("metrics") or {}).items()}
        policy = self.session.settings.policy_for(self.spec.profile).for_job(self.job)
        tolerances = policy.tolerances
        failed = []
        for result in self.results:
            one = one_process_of(result, ran)
            if one is None:
                result.notes.append(f"quality not compared with one process: {one_id} not run")
                continue
            ratio = loss_ratio(result, one)
            if ratio is not None and abs(ratio - 1) > 0.2:  # same data and steps: expect ~1
                result.notes.append(
                    f"eval_loss is {ratio:.2f}x the one-process case's: the loss is scaled "
                    "differently in several processes (Trainer's average_tokens_across_devices)"
                )
            verdicts = quality_verdicts(result, one, quality, tolerances, std)
            failed += [v for v in verdicts if not v.passed]
            if verdicts:
                result.notes.append(
                    f"vs 1 process ({one_id}): " + "; ".join(v.describe() for v in verdicts)
                )
        if failed:
            lines = [f"{self.spec.case_id}: quality differs from one process ({one_id}, this "
                     "run, same global batch) beyond the accuracy gate:"]  # fmt: skip
            raise RegressionError("\n".join(lines + [f"  {v.describe()}" for v in failed]))

    def _gate(self) -> str:
        case_id = self.spec.case_id
        policy = self.session.settings.policy_for(self.spec.profile)
        store, hardware_id, profile = self.session.baseline_location(
            self.spec.device, self.spec.profile
        )
        entry = store.entry(hardware_id, profile, case_id)
        path = store.path(hardware_id, profile)
        if entry is None and not policy.require_baseline:
            # issue 20: no baseline on this host; quality recorded on another may judge it
            found = verdict.borrow(case_id, self.results[0], store, hardware_id, profile, policy)
            if found is not None:
                entry, path = found
        reason = verdict.comparable(case_id, self.results[0], entry, path, policy)
        if reason is not None:
            return reason
        seeds = list(self.results)  # quality is the seeds' mean; re-measures only time again
        if any(is_timed(m) for m in self.job.gates) and not entry.get(BORROWED):
            self._settle()  # issue 12: a busy device's throughput is measured again, if it can
        outcome = verdict.gate_case(case_id, seeds, self.job, entry, policy, self.results[-1])
        failed, status = outcome.failed, "within bounds"
        if outcome.timed_failure:  # shared runners are noisy: confirm once before failing
            first = next(v for v in failed if is_timed(v.metric))
            self.session.progress(
                f"{case_id}: {first.describe()}; re-measuring once before failing"
            )
            again = self._measure(self.spec, fresh_model=True, quality_from=self.results[0])
            self.results.append(again)
            self._settle()  # a busy re-measure waits for quiet too, rather than pass unjudged
            failed, status = verdict.confirm(
                case_id, outcome, self.results[-1], self.job, entry, policy
            )
        verdict.raise_regression(case_id, failed, path, entry, self.results[-1])
        # re-measures carry the first's quality: only the seeds' own say if it reproduced
        return outcome.status(status) + verdict.repro_status(case_id, seeds, entry, path, policy)


def carry_quality(again: CaseResult, first: CaseResult) -> None:
    """A re-measure times training again and stops: the gate judges quality on the first
    measurement, and evaluating the same seed's model again would cost minutes a case on a
    CPU. Its record keeps the first's evaluation figures and peak memory (which, on CUDA,
    counts the evaluation), and says so."""
    if first.training.get("seed") != again.training.get("seed"):
        return
    metrics = again.metrics
    carried = {
        k: v
        for k, v in first.metrics.items()
        if k.startswith("eval_") and v is not None and metrics.get(k) is None
    }
    if carried:
        metrics.update(carried)
        again.memory = {**again.memory, **first.memory}
        again.notes.append(
            "re-measure: trained and timed again; quality and peak memory are the first's"
        )


def hand_rounds(benchmark: Any, result: CaseResult, spec: CaseSpec) -> None:
    """pytest-benchmark's statistics from the rounds a case timed in a fresh process: the same
    rounds of `steps_per_round` steps it times in pedantic mode here, so --benchmark-autosave
    and --benchmark-compare keep working. Through its fixture's own stats maker; for N > 1
    processes, or where that is missing (another version), the fixture is disabled and used
    once, so it neither warns that it went unused nor adds an empty row."""
    rounds = [seconds for seconds, _ in timed_rounds(result)] if spec.processes == 1 else []
    make_stats = getattr(benchmark, "_make_stats", None)
    if not rounds or make_stats is None or not benchmark.enabled:
        benchmark.disabled = True
        benchmark(lambda: None)
        return
    benchmark._mode = "benchmark.pedantic(...)"  # what pedantic marks: used once
    stats = make_stats(1)
    for seconds in rounds:
        stats.update(seconds)
    benchmark.extra_info.update({**_benchmark_info(result, spec), "timed_in": "a fresh process"})


def _benchmark_info(result: CaseResult, spec: CaseSpec) -> dict[str, Any]:
    return {
        "case_id": result.case_id,
        "samples_per_round": spec.training.batch_size * spec.training.steps_per_round,
        "train_samples_per_second": result.throughput["train_samples_per_second"],
        "real_tokens": result.padding["real_tokens"],
        "padded_tokens": result.padding["padded_tokens"],
        "padding_efficiency": result.padding["efficiency"],
    }
