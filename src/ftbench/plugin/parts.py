"""The parts cases share, built once per run: checkpoints, data, encoded data, cost curves.

    parts = Parts(source)
    checkpoint = parts.checkpoint("minilm-l6")     # None: a missing optional package (a skip)
    data = parts.data("mrpc")                       # loaded and checked once (per source)
    parts.use(spec, job.data)                       # a job file's own data, for its cases
    encoded = parts.encoded(spec, checkpoint, tokenizer)

A case's own model is never shared: `fresh_model` loads a new one for another seed or a
re-measure.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ftbench.core.errors import MissingPackageError
from ftbench.measure.costcurve import measure_for_case
from ftbench.measure.runner import encode
from ftbench.stack.checkpoints import Checkpoint, resolve_checkpoint
from ftbench.tasks import get_task

if TYPE_CHECKING:
    from collections.abc import Callable

    from ftbench.core.spec import CaseSpec
    from ftbench.stack.data import DataSource


class Parts:
    def __init__(self, source: DataSource) -> None:
        self.source = source
        self._checkpoints: dict[str, Checkpoint] = {}
        self._unavailable: dict[str, str] = {}  # checkpoint spec -> why it can't be had here
        self._data: dict[tuple, Any] = {}  # per task and source
        self._identity: dict[tuple, dict[str, Any]] = {}  # per task and source
        self._encoded: dict[tuple, Any] = {}  # per task, source, checkpoint, padding, length, rows
        self._sources: dict[tuple[str, str], DataSource] = {}  # a job file's data, by job
        self._cost_curves: dict[tuple[str, ...], dict[str, Any]] = {}

    def checkpoint(self, spec: str) -> Checkpoint | None:
        """The resolved checkpoint; None when an optional package it needs is missing (its
        cases skip with the install command). Any other problem stops the run."""
        if spec not in self._checkpoints and spec not in self._unavailable:
            try:
                self._checkpoints[spec] = resolve_checkpoint(spec)
            except MissingPackageError as exc:
                self._unavailable[spec] = str(exc)
        return self._checkpoints.get(spec)

    def unavailable(self, spec: str) -> str | None:
        return self._unavailable.get(spec)

    def task_problem(self, task_name: str, checkpoint: Checkpoint | None) -> str | None:
        """Why a task's cases can't run on this checkpoint here (a skip), or None."""
        task = get_task(task_name)
        problem = task.problem()
        if problem or checkpoint is None:
            return problem
        return task.checkpoint_problem(checkpoint)

    def use(self, spec: CaseSpec, source: DataSource | None) -> None:
        """The case's job reads its own data (a job file's `data:`), not the run's."""
        if source is not None:
            self._sources[(spec.profile, spec.job)] = self.complete(source)

    def complete(self, source: DataSource | None) -> DataSource:
        """A job's own data where it has some, with the run's --ftb-data-dir where it names
        none (a job's `preference_data: hh-rlhf` is read there); else the run's data."""
        if source is None:
            return self.source
        if source.data_dir is None and self.source.data_dir is not None:
            return replace(source, data_dir=self.source.data_dir)
        return source

    def source_of(self, spec: CaseSpec) -> DataSource:
        return self.source_for(spec.profile, spec.job)

    def source_for(self, profile: str, job: str) -> DataSource:
        """Where a job's cases read their data: its own, else the run's (the options')."""
        return self._sources.get((profile, job), self.source)

    def data(self, task_name: str, source: DataSource | None = None) -> Any:
        """The task's data, loaded and checked once per run and source; None where the task
        can't run."""
        source = self.complete(source)
        if (task_name, source) not in self._data:
            task = get_task(task_name)
            if task.problem() is not None:
                return None
            self._data[task_name, source] = task.load_data(source)
        return self._data[task_name, source]

    def data_identity(self, task_name: str, source: DataSource | None = None) -> dict[str, Any]:
        """What a task's cases train and evaluate on: stored in each record and baseline."""
        source = self.complete(source)
        if (task_name, source) not in self._identity:
            task = get_task(task_name)
            data = self.data(task_name, source)
            self._identity[task_name, source] = task.identity(source, data)
        return self._identity[task_name, source]

    def encoded(self, spec: CaseSpec, checkpoint: Checkpoint, tokenizer: Any) -> Any:
        """The task's data for a tokenizer and padding (tokenized for Trainer), built once."""
        source = self.source_of(spec)
        key = (
            spec.task,
            source,
            checkpoint.spec,
            spec.padding,
            spec.max_length,
            spec.training.eval_samples,
        )
        if key not in self._encoded:
            task = get_task(spec.task)
            self._encoded[key] = encode(task, self.data(spec.task, source), tokenizer, spec)
        return self._encoded[key]

    def fresh_model(self, spec: CaseSpec, checkpoint: Checkpoint, tokenizer: Any) -> dict[str, Any]:
        """Another seed, or a re-measure: a new model, never one that has trained already."""
        task = get_task(spec.task)
        data = self.data(spec.task, self.source_of(spec))
        model, seconds = task.load_case_model(spec, checkpoint, tokenizer, data)
        return {"model": model, "model_load_seconds": seconds}

    def cost_curve(
        self, spec: CaseSpec, parts: dict[str, Any], report: Callable[[str], None]
    ) -> dict[str, Any]:
        """What a batch costs on this device, for the padding ceiling: measured once per
        checkpoint, device, precision and method, on a fresh model (ftbench.core.cost)."""
        key = _curve_key(spec)
        if key not in self._cost_curves:
            self._cost_curves[key] = measure_for_case(
                spec,
                parts["checkpoint"],
                parts["tokenizer"],
                self.data(spec.task, self.source_of(spec)),
                report=report,
            )
        return self._cost_curves[key]

    def known_cost_curve(self, spec: CaseSpec) -> dict[str, Any] | None:
        """The group's cost curve, if a case of it has measured one (in a fresh process)."""
        return self._cost_curves.get(_curve_key(spec))

    def keep_cost_curve(self, spec: CaseSpec, curve: dict[str, Any] | None) -> Any:
        """Keep the curve a fresh process measured, for the group's other cases."""
        if curve is not None:
            self._cost_curves.setdefault(_curve_key(spec), curve)
        return self._cost_curves.get(_curve_key(spec), curve)


def _curve_key(spec: CaseSpec) -> tuple[str, ...]:
    """One curve per checkpoint, device, precision and method: what a step costs there."""
    return (spec.checkpoint, spec.device, spec.precision, spec.method)
