"""The parts cases share, built once per run: checkpoints, data, encoded data, cost curves.

    parts = Parts(source)
    checkpoint = parts.checkpoint("minilm-l6")     # None: a missing optional package (a skip)
    data = parts.data("mrpc")                       # loaded and checked once
    encoded = parts.encoded(spec, checkpoint, tokenizer)

A case's own model is never shared: `fresh_model` loads a new one for another seed or a
re-measure.
"""

from __future__ import annotations

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
        self._data: dict[str, Any] = {}  # per task
        self._identity: dict[str, dict[str, Any]] = {}  # per task
        self._encoded: dict[tuple, Any] = {}  # per task, checkpoint, padding, length, rows
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

    def data(self, task_name: str) -> Any:
        """The task's data, loaded and checked once per run; None where the task can't run."""
        if task_name not in self._data:
            task = get_task(task_name)
            if task.problem() is not None:
                return None
            self._data[task_name] = task.load_data(self.source)
        return self._data[task_name]

    def data_identity(self, task_name: str) -> dict[str, Any]:
        """What a task's cases train and evaluate on: stored in each record and baseline."""
        if task_name not in self._identity:
            task = get_task(task_name)
            self._identity[task_name] = task.identity(self.source, self.data(task_name))
        return self._identity[task_name]

    def encoded(self, spec: CaseSpec, checkpoint: Checkpoint, tokenizer: Any) -> Any:
        """The task's data for a tokenizer and padding (tokenized for Trainer), built once."""
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

    def fresh_model(self, spec: CaseSpec, checkpoint: Checkpoint, tokenizer: Any) -> dict[str, Any]:
        """Another seed, or a re-measure: a new model, never one that has trained already."""
        task = get_task(spec.task)
        model, seconds = task.load_case_model(spec, checkpoint, tokenizer, self.data(spec.task))
        return {"model": model, "model_load_seconds": seconds}

    def cost_curve(
        self, spec: CaseSpec, parts: dict[str, Any], report: Callable[[str], None]
    ) -> dict[str, Any]:
        """What a batch costs on this device, for the padding ceiling: measured once per
        checkpoint, device, precision and method, on a fresh model (ftbench.core.cost)."""
        key = (spec.checkpoint, spec.device, spec.precision, spec.method)
        if key not in self._cost_curves:
            self._cost_curves[key] = measure_for_case(
                spec, parts["checkpoint"], parts["tokenizer"], self.data(spec.task), report=report
            )
        return self._cost_curves[key]
