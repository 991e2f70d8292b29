"""Tasks: what differs between fine-tuning jobs, behind one small interface.

    from ftbench.tasks import get_task
    task = get_task("dpo")
    data = task.load_data(source)                          # checked splits, the task's schema
    train = task.encode(data, tokenizer, padding="padded", max_length=256)
    model, seconds = task.load_model(checkpoint, tokenizer, data, seed=42, method="lora", ...)
    trainer = task.trainer(spec, model=model, tokenizer=tokenizer, data=train, ...)

A task owns its data (sources, schema, checks, splits), the model class and peft task type, the
trainer and its collator, and the metrics it reports (`ftbench.core.measures.Metric`: direction,
default tolerance). Everything else is shared by all tasks: timing, token counting, memory,
records, gates and reports live in `ftbench.measure`, `ftbench.judge` and `ftbench.report`,
which never ask which task they hold.

A task of your own is a subclass of `Task`, registered by name in one of two ways:

    @register_task                  # in your conftest.py, or any module it imports
    class Kto(Task): name = "kto"; ...

    [project.entry-points."ftbench.tasks"]   # in your package's pyproject.toml
    kto = "my_package.kto:Kto"

A job file (`task: kto`) then runs it like a built-in one: records, gates, summary, report.

| task   | trainer              | default data (offline)                | quality metrics          |
| mrpc   | transformers.Trainer | GLUE MRPC                             | accuracy, F1             |
| sft    | trl.SFTTrainer       | GSM8K: question -> worked solution    | held-out loss, token acc |
| dpo    | trl.DPOTrainer       | GSM8K correct vs wrong; hh-rlhf       | reward accuracy, margin  |
| reward | trl.RewardTrainer    | the same pairs                        | pair accuracy, margin    |
| cpo    | trl.experimental CPO | the same pairs                        | reward acc., margin, NLL |
| orpo   | trl.experimental ORPO| the same pairs                        | + log odds ratio         |
| grpo   | trl.GRPOTrainer      | GSM8K prompts, the answer checked     | reward, gain; gen. t/s   |
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from ftbench.core.errors import ConfigError
from ftbench.core.measures import SHARED_METRICS, Metric, Tolerance, probe_twin_name, probe_twins
from ftbench.stack.checkpoints import is_causal_lm, load_model, model_config
from ftbench.stack.dataid import data_identity
from ftbench.stack.methods import apply_method, quantization_config

if TYPE_CHECKING:
    from datasets import DatasetDict

    from ftbench.core.spec import CaseSpec, Lora
    from ftbench.stack.checkpoints import Checkpoint
    from ftbench.stack.data import DataSource

# name -> module under ftbench.tasks; modules load only when a task is used.
TASK_MODULES = {
    "mrpc": "mrpc",
    "sft": "sft",
    "dpo": "preference",
    "reward": "reward",
    "cpo": "preference",
    "orpo": "preference",
    "grpo": "grpo",
}


ENTRY_POINTS = "ftbench.tasks"  # the entry-point group of tasks that live in other packages
_REGISTERED: dict[str, Task] = {}  # register_task's, and the entry points' once loaded


class Task:
    """The interface every task implements; defaults suit a Trainer on tokenized data.

    In the style of torchtune's recipes: a few named steps, each a plain method.
    """

    name: ClassVar[str]
    title: ClassVar[str]  # the data, in a few words: "GLUE MRPC sentence pairs"
    trainer_name: ClassVar[str]
    model_class: ClassVar[str] = "sequence-classification"  # or "causal-lm"
    peft_task_type: ClassVar[str] = "SEQ_CLS"  # or "CAUSAL_LM"
    paddings: ClassVar[tuple[str, ...]]
    metrics: ClassVar[tuple[Metric, ...]]
    # The columns the task reads from a user's files, in its own words; a job file's
    # `data.columns` maps them to the file's (`ftbench.stack.data.DataSource` fields).
    columns: ClassVar[dict[str, str]] = {}
    rows_per_sample: ClassVar[int] = 1  # preference batches hold chosen and rejected rows
    needs_decoder: ClassVar[bool] = False  # the TRL tasks train (or score with) a causal LM
    requires: ClassVar[tuple[str, ...]] = ()  # packages beyond the core install
    install: ClassVar[str] = ""
    experimental: ClassVar[bool] = False  # its trainer is in trl.experimental: unstable API

    def problem(self) -> str | None:
        """Why this task can't run here (a missing package), or None."""
        missing = [p for p in self.requires if importlib.util.find_spec(p) is None]
        if missing:
            return f"task {self.name} needs {', '.join(missing)}: {self.install}"
        return None

    def checkpoint_problem(self, checkpoint: Checkpoint) -> str | None:
        """Why this task can't train `checkpoint` (an encoder where it needs a causal LM)."""
        if self.needs_decoder and not is_causal_lm(model_config(checkpoint)):
            return f"checkpoint {checkpoint.spec!r} is not a causal LM; task {self.name} trains one"
        return None

    def case_problem(self, spec: CaseSpec) -> str | None:
        """Why this task can't run this case here (vLLM asked for without CUDA), or None."""
        return None

    # -- data ------------------------------------------------------------------------------------

    def load_data(self, source: DataSource) -> DatasetDict:
        raise NotImplementedError

    def encode(
        self,
        data: DatasetDict,
        tokenizer: Any,
        *,
        padding: str,
        max_length: int,
        eval_samples: int | None = None,
    ) -> DatasetDict:
        """What the trainer takes: tokenized for Trainer, or checked rows for TRL's trainers;
        evaluation on the first `eval_samples` held-out rows (None: all)."""
        raise NotImplementedError

    def collator(self, padding: str, tokenizer: Any) -> Any:
        return None  # the trainer's own

    # -- model -----------------------------------------------------------------------------------

    def model_arguments(self, data: DatasetDict) -> dict[str, Any]:
        """`checkpoints.load_model` arguments beyond the checkpoint: the head's labels."""
        return {}

    def load_case_model(
        self, spec: CaseSpec, checkpoint: Checkpoint, tokenizer: Any, data: DatasetDict
    ) -> tuple[Any, float]:
        """A fresh model for this case (its seed, method, precision) and the seconds it took."""
        return self.load_model(
            checkpoint,
            tokenizer,
            data,
            seed=spec.training.seed,
            method=spec.method,
            lora=spec.lora,
            precision=spec.precision,
            device=spec.device,
        )

    def load_model(
        self,
        checkpoint: Checkpoint,
        tokenizer: Any,
        data: DatasetDict,
        *,
        seed: int,
        method: str = "full",
        lora: Lora | None = None,
        precision: str = "fp32",
        device: str = "cpu",
    ) -> tuple[Any, float]:
        """A fresh model for a case (its seed, method, precision) and the seconds it took."""
        started = time.perf_counter()
        model = load_model(
            checkpoint,
            seed=seed,
            vocab_size=len(tokenizer),
            quantization=quantization_config(precision) if method == "qlora" else None,
            device=device,
            model_class=self.model_class,
            **self.model_arguments(data),
        )
        model = apply_method(model, method, lora, task_type=self.peft_task_type)
        return model, time.perf_counter() - started

    # -- training --------------------------------------------------------------------------------

    def config_class(self) -> Any:
        from transformers import TrainingArguments

        return TrainingArguments

    def config_arguments(self, spec: CaseSpec) -> dict[str, Any]:
        """The trainer config's settings beyond TrainingArguments' (TRL's max_length, ...)."""
        return {}

    def trainer(
        self,
        spec: CaseSpec,
        *,
        model: Any,
        args: Any,
        tokenizer: Any,
        data: DatasetDict,
        collator: Any,
        callbacks: list[Any],
    ) -> Any:
        raise NotImplementedError

    def quality(self, eval_metrics: dict[str, Any]) -> dict[str, float | None]:
        """The task's metrics, by their names here, from what `trainer.evaluate()` returned."""
        return {m.name: eval_metrics.get(m.name) for m in self.metrics}

    def measures(
        self,
        spec: CaseSpec,
        trainer: Any,
        window: dict[str, Any],
        quality: dict[str, Any],
        untrained: dict[str, Any],
    ) -> dict[str, dict[str, Any]]:
        """What the task measures beyond the shared figures, by record section ("metrics",
        "throughput", "rollout"), from the finished trainer and the timed window; it may
        raise when the run measured nothing (GRPO with no reward variance)."""
        return {}

    def data_summary(self, data: DatasetDict) -> dict[str, Any]:
        """What the record says about the rows used: split sizes, rows dropped and why."""
        return {"used_rows": {split: len(data[split]) for split in data}}

    def calibrated_on(self, source: DataSource) -> str:
        """The dataset the profile's floors were measured on (`ftbench.stack.dataid`)."""
        return "mrpc"

    def identity(self, source: DataSource, data: DatasetDict) -> dict[str, Any]:
        """Where the data came from and what it holds: compared with the baseline's."""
        return data_identity(source, data)

    # -- metrics ---------------------------------------------------------------------------------

    @classmethod
    def all_metrics(cls) -> tuple[Metric, ...]:
        return (*cls.metrics, *SHARED_METRICS)


def register_task(task: Task | type[Task]) -> Any:
    """Make a task known by its `name` (a class is instantiated); usable as a class decorator.
    A built-in task's name can't be taken; registering the same name again replaces it."""
    instance = task() if isinstance(task, type) else task
    if not isinstance(instance, Task):
        raise ConfigError(f"register_task: {task!r} is not an ftbench.tasks.Task")
    name = getattr(instance, "name", None)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"register_task: {type(instance).__name__} has no `name`")
    if name in TASK_MODULES:
        raise ConfigError(f"register_task: {name!r} is a built-in task's name; choose another")
    _REGISTERED[name] = instance
    return task


def defined_in(name: str) -> tuple[str, str] | None:
    """Where another process finds a task registered in this one only (a conftest's, or a
    module's that registers it on import): ("module:Class", the folder its import starts
    from). None for a built-in task or an installed entry point, which any process knows."""
    import inspect
    from pathlib import Path

    if name in TASK_MODULES or name not in _REGISTERED:
        return None
    kind = type(_REGISTERED[name])
    try:
        source = inspect.getsourcefile(kind)
    except TypeError:  # defined where no file holds it
        return None
    if source is None or kind.__module__ == "__main__" or "<locals>" in kind.__qualname__:
        return None
    root = Path(source).resolve().parents[kind.__module__.count(".")]
    return f"{kind.__module__}:{kind.__qualname__}", str(root)


def travels(name: str) -> bool:
    """Whether another process can know the task: built in, an installed entry point, or a
    class it can import (`defined_in`); a configured instance is rebuilt from its class."""
    return name in TASK_MODULES or name in _entry_points() or defined_in(name) is not None


def register_from(where: str) -> None:
    """Register the task class at "module:Class" (`defined_in`), in a launched process."""
    module, _, qualname = where.partition(":")
    try:
        kind: Any = importlib.import_module(module)
        for part in qualname.split("."):
            kind = getattr(kind, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"task class {where}: can't import it here ({exc})") from None
    register_task(kind)


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINTS)}


def task_names() -> list[str]:
    """Every task this installation knows: built-in, registered, and installed entry points."""
    return list(dict.fromkeys([*TASK_MODULES, *_REGISTERED, *_entry_points()]))


def get_task(name: str) -> Task:
    if name in TASK_MODULES:
        module = importlib.import_module(f"ftbench.tasks.{TASK_MODULES[name]}")
        return module.TASKS[name]
    if name not in _REGISTERED:
        entry = _entry_points().get(name)
        if entry is None:
            raise ConfigError(f"unknown task {name!r}; choose from {', '.join(task_names())}")
        try:
            register_task(entry.load())
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"task {name!r}: its entry point {entry.value!r} ({ENTRY_POINTS}) can't be "
                f"loaded: {type(exc).__name__}: {exc}"
            ) from None
    return _REGISTERED[name]


def all_tasks() -> list[Task]:
    """The built-in tasks and the registered ones (entry points load when named)."""
    return [get_task(name) for name in dict.fromkeys([*TASK_MODULES, *_REGISTERED])]


def known_metrics() -> dict[str, Metric]:
    """Every metric any task reports, by name; a name two tasks share has one definition."""
    metrics: dict[str, Metric] = {}
    for task in all_tasks():
        for metric in task.all_metrics():
            metrics.setdefault(metric.name, metric)
    return {**metrics, **probe_twins(metrics)}


# -- the gates: each metric's default tolerance, and a user's changes to them ---------------------


def default_tolerances() -> dict[str, Tolerance]:
    """Every task's metrics with their default gates (a name two tasks share has one)."""
    return {name: metric.tolerance for name, metric in known_metrics().items()}


def tolerances_with(
    overrides: dict[str, dict[str, Any]] | None, base: dict[str, Tolerance] | None = None
) -> dict[str, Tolerance]:
    """The default tolerances (or `base`) with per-metric fields replaced; unknown names are
    refused."""
    merged = dict(base) if base is not None else default_tolerances()
    for metric, fields in (overrides or {}).items():
        if metric not in merged:
            raise ConfigError(
                f"unknown metric {metric!r} in a tolerance; known: {', '.join(merged)}"
            )
        unknown = set(fields) - {"k", "min_tolerance", "relative"}
        if unknown:
            raise ConfigError(f"tolerance of {metric!r}: unknown field(s) {sorted(unknown)}")
        merged[metric] = replace(merged[metric], **fields)
    for metric in overrides or {}:
        twin = probe_twin_name(metric)
        if twin in merged and twin not in overrides:
            merged[twin] = merged[metric]  # a rate's per-probe twin takes the rate's gate
    return merged


def parse_tolerance(text: str) -> dict[str, dict[str, float]]:
    """`train_samples_per_second:15%`, `eval_accuracy:k=2,min=0.02` -> a tolerance override."""
    metric, _, rule = text.partition(":")
    if not rule:
        raise ValueError(text)
    if rule.endswith("%"):
        fields: dict[str, float] = {"relative": float(rule[:-1]) / 100}
    else:
        names = {"k": "k", "min": "min_tolerance", "relative": "relative"}
        fields = {}
        for part in rule.split(","):
            key, _, value = part.partition("=")
            if key not in names or not value:
                raise ValueError(text)
            fields[names[key]] = float(value)
    tolerances_with({metric: fields})  # validates the metric name
    return {metric: fields}
