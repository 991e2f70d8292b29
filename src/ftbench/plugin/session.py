"""One `pytest bench/` session's state: the profile, its parametrization, the parts built once
(checkpoints, data), the cases' records and progress lines.

The plugin's hooks hand off to an `FtbSession` here, so they stay one line each. Baselines are
staged and written by `recording.BaselineRecorder`, and the terminal summary is
`summary.write_summary`'s. Nothing heavy is imported until a benchmark case is collected.
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ftbench.core.errors import CaseOutOfMemoryError, ConfigError, FtbenchError, RegressionError
from ftbench.plugin.case import Case

if TYPE_CHECKING:
    from ftbench.config.profiles import Job, Profile
    from ftbench.core.record import CaseResult, RunStore
    from ftbench.core.spec import CaseSpec
    from ftbench.judge.baselines import BaselineStore, Tolerance
    from ftbench.judge.recording import BaselineRecorder
    from ftbench.stack.checkpoints import Checkpoint
    from ftbench.stack.data import DataSource


class FtbSession:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._profile: Profile | None = None
        self._data: dict[str, Any] = {}  # per task
        self._encoded: dict[tuple, Any] = {}  # per task, checkpoint, padding, length
        self._checkpoints: dict[str, Checkpoint] = {}
        self._unavailable: dict[str, str] = {}  # checkpoint spec -> why it can't be had here
        self._store: RunStore | None = None
        self.results: list[tuple[str, CaseResult]] = []
        self.outcomes: dict[str, str] = {}
        self.statuses: dict[str, str] = {}
        self._baselines: BaselineStore | None = None
        self._hardware: dict[str, str] = {}
        self._recorder: BaselineRecorder | None = None
        self._usage_error: pytest.UsageError | None = None
        self._cost_curves: dict[tuple[str, ...], dict[str, Any]] = {}
        self._data_identity: dict[str, dict[str, Any]] = {}  # per task
        name = config.getoption("ftb_profile")
        from ftbench.config.profiles import PROFILES

        if name != "auto" and name not in PROFILES:
            raise pytest.UsageError(
                f"--ftb-profile: unknown profile {name!r}; choose from {', '.join(PROFILES)}, auto"
            )
        known = sorted({job.name for p in PROFILES.values() for job in p.jobs})
        unknown = [j for j in config.getoption("ftb_job") or () if j not in known]
        if unknown:
            raise pytest.UsageError(f"--ftb-job: unknown job(s) {unknown}; choose from {known}")

    # -- configuration ---------------------------------------------------------------------------

    @property
    def profile(self) -> Profile:
        if self._profile is None:
            from ftbench.config.options import overrides_from
            from ftbench.config.profiles import (
                apply_overrides,
                check_job,
                default_profile_name,
                get_profile,
            )

            name = self.config.getoption("ftb_profile")
            overrides = overrides_from(self.config.getoption)
            try:
                profile = get_profile(default_profile_name() if name == "auto" else name)
                self._profile = apply_overrides(profile, **overrides)
                for job in overrides["jobs"] or ():
                    profile.job(job)
                for job in self._profile.jobs:
                    check_job(job)
            except ConfigError as exc:
                raise pytest.UsageError(f"ftbench: {exc}") from None
        return self._profile

    @property
    def source(self) -> DataSource:
        from ftbench.stack.data import DataSource

        option = self.config.getoption
        return DataSource(
            data_dir=option("ftb_data_dir"),
            train_file=option("ftb_train_file"),
            validation_file=option("ftb_validation_file"),
            test_file=option("ftb_test_file"),
            text_columns=tuple(option("ftb_text_columns")),
            label_column=option("ftb_label_column"),
            prompt_column=option("ftb_prompt_column"),
            completion_column=option("ftb_completion_column"),
            chosen_column=option("ftb_chosen_column"),
            rejected_column=option("ftb_rejected_column"),
            preference_data=option("ftb_preference_data"),
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
        from ftbench.core.spec import checkpoint_name

        marker = metafunc.definition.get_closest_marker("ftbench")
        wanted = marker.args[0] if marker and marker.args else None
        try:
            profile = self.profile
        except pytest.UsageError as exc:
            # Raised here it would read as a collection error; preflight reports it cleanly.
            self._usage_error = exc
            metafunc.parametrize("ftb_checkpoint", [pytest.param(None, id="unusable-options")])
            return
        if wanted not in profile.job_names():
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
            ("ftb_method", job.methods, None),
        )
        if tuple(job.processes) != (1,):  # one process alone keeps the ids it always had
            axes += (("ftb_processes", job.processes, [f"{n}proc" for n in job.processes]),)
        for fixture, values, ids in axes:
            metafunc.parametrize(fixture, list(values), ids=ids, indirect=True, scope="session")

    def preflight(self, items: list[pytest.Item]) -> None:
        """Fail the whole run early, with one message, on unusable data, checkpoints, baselines."""
        if self._usage_error is not None:
            raise self._usage_error
        if self.config.option.collectonly:
            return
        from ftbench.env.devices import device_problem, git_state

        cases = [i for i in items if "ftb_case" in getattr(i, "fixturenames", ())]
        cases = [i for i in cases if i.get_closest_marker("skip") is None]
        if not cases:
            return
        params = [i.callspec.params for i in cases if hasattr(i, "callspec")]
        specs = {p["ftb_checkpoint"] for p in params}
        devices = {p["ftb_device"] for p in params}
        tasks = {self.job_of(i).task for i in cases}
        try:
            for spec in sorted(specs):
                self.checkpoint(spec)
            self.check_lora_targets(cases)
            for task in sorted(tasks):
                self.data(task)
            self.tolerances  # noqa: B018 - validates the tolerance options now
            self.check_writable_dirs()  # issue 12: before any training, not after the first case
            git_state()  # the commit the run starts from, not one made while it runs
            for device in sorted(devices):
                if device_problem(device) is None:  # a corrupt baseline file stops the run here
                    store, hardware_id, profile = self.baseline_location(device)
                    store.load(hardware_id, profile)
        except FtbenchError as exc:
            raise pytest.UsageError(f"ftbench: {exc}") from None

    def check_lora_targets(self, cases: list[pytest.Item]) -> None:
        """LoRA targets that match nothing stop the run before any model trains."""
        from ftbench.stack.checkpoints import model_config
        from ftbench.stack.methods import ADAPTER_METHODS, check_targets_of_config
        from ftbench.tasks import get_task

        checked = set()
        for item in cases:
            params = getattr(getattr(item, "callspec", None), "params", {})
            if params.get("ftb_method") not in ADAPTER_METHODS:
                continue
            job = self.job_of(item)
            checkpoint = self.checkpoint(params["ftb_checkpoint"])
            task = get_task(job.task)
            key = (params["ftb_checkpoint"], job.lora, task.model_class)
            if key not in checked and self.task_problem(job.task, checkpoint) is None:
                checked.add(key)
                config = model_config(checkpoint, num_labels=2)
                check_targets_of_config(config, job.lora, task.model_class)

    def check_writable_dirs(self) -> None:
        from ftbench.core.files import check_writable

        check_writable(self.config.getoption("ftb_results_dir"), "--ftb-results-dir")
        if self.updating_baselines:
            check_writable(self.config.getoption("ftb_baselines_dir"), "--ftb-baselines-dir")

    # -- shared parts, built once per session ----------------------------------------------------

    def checkpoint(self, spec: str) -> Checkpoint | None:
        """The resolved checkpoint; None when an optional package it needs is missing (its
        cases skip with the install command). Any other problem stops the run."""
        from ftbench.core.errors import MissingPackageError

        if spec not in self._checkpoints and spec not in self._unavailable:
            from ftbench.stack.checkpoints import resolve_checkpoint

            try:
                self._checkpoints[spec] = resolve_checkpoint(spec)
            except MissingPackageError as exc:
                self._unavailable[spec] = str(exc)
        return self._checkpoints.get(spec)

    def unavailable(self, spec: str) -> str | None:
        return self._unavailable.get(spec)

    def task_problem(self, task_name: str, checkpoint: Checkpoint | None) -> str | None:
        """Why a task's cases can't run on this checkpoint here (a skip), or None."""
        from ftbench.stack.checkpoints import is_causal_lm, model_config
        from ftbench.tasks import get_task

        task = get_task(task_name)
        problem = task.problem()
        if problem or checkpoint is None:
            return problem
        if task.needs_decoder and not is_causal_lm(model_config(checkpoint)):
            return f"checkpoint {checkpoint.spec!r} is not a causal LM; task {task.name} trains one"
        return None

    def data(self, task_name: str) -> Any:
        """The task's data, loaded and checked once per session."""
        if task_name not in self._data:
            from ftbench.tasks import get_task

            task = get_task(task_name)
            if task.problem() is None:
                self._data[task_name] = task.load_data(self.source)
            else:
                return None
        return self._data[task_name]

    def data_identity(self, task_name: str) -> dict[str, Any]:
        """What a task's cases train and evaluate on: stored in each record and baseline."""
        if task_name not in self._data_identity:
            from ftbench.tasks import get_task

            task = get_task(task_name)
            self._data_identity[task_name] = task.identity(self.source, self.data(task_name))
        return self._data_identity[task_name]

    def encoded(self, spec: CaseSpec, checkpoint: Checkpoint, tokenizer: Any) -> Any:
        """The task's data for a tokenizer and padding (tokenized for Trainer), built once."""
        from ftbench.measure.runner import encode
        from ftbench.tasks import get_task

        key = (
            spec.task,
            checkpoint.spec,
            spec.padding,
            spec.max_length,
            spec.training.eval_samples,
        )
        if key not in self._encoded:
            task = get_task(spec.task)
            self._encoded[key] = encode(task, self.data(spec.task), tokenizer, spec)
        return self._encoded[key]

    def case(self, *, node: Any, job: Job, spec: CaseSpec, **parts: Any) -> Case:
        return Case(spec=spec, job=job, session=self, nodeid=node.nodeid, parts=parts)

    def case_spec(
        self,
        job: Job,
        checkpoint: str,
        padding: str,
        device: str,
        precision: str,
        method: str,
        processes: int = 1,
    ) -> CaseSpec:
        from ftbench.core.spec import CaseSpec

        return CaseSpec(
            job=job.name,
            checkpoint=checkpoint,
            padding=padding,
            device=device,
            precision=precision,
            method=method,
            training=job.training_for(method),
            profile=self.profile.name,
            max_length=job.max_length or self.profile.max_length,
            lora=job.lora if method != "full" else None,
            task=job.task,
            processes=processes,
        )

    def processes_problem(self, spec: CaseSpec) -> str | None:
        """Why this case can't run in its number of processes here (a skip), or None."""
        from ftbench.measure.launch import processes_problem

        return processes_problem(
            spec.processes,
            spec.device,
            spec.training.batch_size,
            self.config.getoption("ftb_accelerate_config"),
        )

    def launch(self, spec: CaseSpec) -> CaseResult:
        """Run a case of N > 1 processes under accelerate launch (ftbench.measure.launch)."""
        from ftbench.measure.launch import DATA_OPTIONS, launch_case, option_args

        config_file = self.config.getoption("ftb_accelerate_config")
        result = launch_case(
            spec,
            option_args(self.config.getoption, DATA_OPTIONS),
            config_file=config_file,
            timeout=self.config.getoption("ftb_launch_timeout"),
            echo=self.progress,
        )
        if result is None:
            pytest.skip(f"{config_file} is not machine rank 0: the main machine keeps the record")
        return result

    def seeds(self, job: Job, base: int) -> list[int]:
        """`--ftb-seeds N` repeats quality cases over N seeds, so the spread is measured."""
        from ftbench.tasks import known_metrics

        count = self.config.getoption("ftb_seeds")
        known = known_metrics()
        has_quality = any(known[m].quality for m in job.gates if m in known)
        return [base + i for i in range(count)] if has_quality and job.training.evaluate else [base]

    def fresh_model(self, spec: CaseSpec, checkpoint: Checkpoint, tokenizer: Any) -> dict[str, Any]:
        """Another seed, or a re-measure: a new model, never one that has trained already."""
        from ftbench.tasks import get_task

        task = get_task(spec.task)
        model, seconds = task.load_case_model(spec, checkpoint, tokenizer, self.data(spec.task))
        return {"model": model, "model_load_seconds": seconds}

    def cost_curve(self, spec: CaseSpec, parts: dict[str, Any]) -> dict[str, Any]:
        """What a batch costs on this device, for the padding ceiling: measured once per
        checkpoint, device, precision and method, on a fresh model (see ftbench.measure.costcurve)."""
        from ftbench.measure.costcurve import measure_for_case

        key = (spec.checkpoint, spec.device, spec.precision, spec.method)
        if key not in self._cost_curves:
            self._cost_curves[key] = measure_for_case(
                spec,
                parts["checkpoint"],
                parts["tokenizer"],
                self.data(spec.task),
                report=self.progress,
            )
        return self._cost_curves[key]

    # -- baselines -------------------------------------------------------------------------------

    @property
    def updating_baselines(self) -> bool:
        return bool(self.config.getoption("ftb_update_baselines"))

    @property
    def tolerances(self) -> dict[str, Tolerance]:
        from ftbench.judge.baselines import tolerances_with

        return tolerances_with(self.profile.tolerances)

    def baseline_location(self, device: str) -> tuple[BaselineStore, str, str]:
        from ftbench.env.devices import hardware_id
        from ftbench.judge.baselines import BaselineStore

        if self._baselines is None:
            self._baselines = BaselineStore(Path(self.config.getoption("ftb_baselines_dir")))
        if device not in self._hardware:
            self._hardware[device] = hardware_id(device)
        return self._baselines, self._hardware[device], self.profile.name

    @property
    def recorder(self) -> BaselineRecorder:
        if self._recorder is None:
            from ftbench.judge.recording import BaselineRecorder

            self._recorder = BaselineRecorder(self.baseline_location("cpu")[0])
        return self._recorder

    def stage_baseline(self, case: Case) -> None:
        _, hardware_id, profile = self.baseline_location(case.spec.device)
        self.recorder.stage(hardware_id, profile, case.spec.case_id, case.results, case.job)
        self.set_status(case.spec.case_id, "staged for update")

    def set_status(self, case_id: str, status: str) -> None:
        self.statuses[case_id] = status

    def finish(self) -> None:
        """With --ftb-update-baselines: write what passed, or nothing if anything failed."""
        if not self.updating_baselines:
            return
        from ftbench.plugin.interrupt import was_interrupted

        for case_id in self.recorder.write(self.outcomes, was_interrupted(self.config)):
            self.statuses[case_id] = "baseline recorded"

    # -- results ---------------------------------------------------------------------------------

    @property
    def store(self) -> RunStore:
        if self._store is None:
            from ftbench.core.record import RunStore

            self._store = RunStore.create(self.config.getoption("ftb_results_dir"))
        return self._store

    def record(self, nodeid: str, result: CaseResult) -> Path:
        # Every record knows its data: the identity beside the rows the case used.
        task = (result.axes or {}).get("task", "mrpc")
        result.data = {**self.data_identity(task), **(result.data or {})}
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
        if call.excinfo is not None and isinstance(call.excinfo.value, CaseOutOfMemoryError):
            from ftbench.env.oom import release

            release(call.excinfo.value)  # issue 12: the next case gets the memory back
        if call.excinfo is not None and isinstance(call.excinfo.value, RegressionError):
            case = getattr(item, "funcargs", {}).get("ftb_case")
            if case is not None:
                self.statuses[case.spec.case_id] = "REGRESSED"
        # ftbench's own errors say all there is to say: show the message, not the traceback.
        if call.excinfo is not None and isinstance(call.excinfo.value, FtbenchError):
            report.longrepr = f"{type(call.excinfo.value).__name__}: {call.excinfo.value}"

    def display(self, reporter: Any) -> None:
        from ftbench.report.terminal import write_summary

        ran = {r.job for _, r in self.results}
        floors_off = {
            j.name: j.floors_off for j in self.profile.jobs if j.floors_off and j.name in ran
        }
        write_summary(
            reporter,
            self.results,
            self.outcomes,
            self.statuses,
            floors_off,
            self.store.directory if self.results else None,
            self.recorder.report,
        )
