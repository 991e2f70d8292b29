"""Job files: a recipe in YAML (task, checkpoints, data, trainer settings, axes, gates, floors).

    from ftbench.config.jobfile import load_job_file
    profile = load_job_file("ftbench.yaml")     # a Profile of the file's jobs; ConfigError if bad

A file holds one job (its keys at the top) or a list under `jobs:`, with file-wide keys beside
it (`profile`, `description`, `max_length`, `tolerances`). Trainer settings go under `trainer:`
with the trainer config's own field names (`TrainingArguments`, `SFTConfig`, `DPOConfig`, ...),
checked against the installed class. ftbench's own settings have their own sections:
`evaluation:`, `timing:`, `lora:`. The built-in profiles (`smoke`, `full`) are such files,
shipped in `ftbench/config/jobs/`. Every field is listed in docs/jobs.md (`ftbench jobs --fields`).

Every mistake is one ConfigError naming the file, the line and the job, before anything trains.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ftbench.core.errors import ConfigError
from ftbench.core.measures import probe_twins
from ftbench.core.spec import Lora, Training
from ftbench.env.devices import DEVICES, PRECISIONS
from ftbench.stack.data import DataSource
from ftbench.stack.methods import METHODS

# Names pytest collects as job files under the rootdir, as it collects test_*.py.
JOB_FILE_PATTERNS = ("ftbench*.yaml", "ftbench*.yml", "*.ftbench.yaml", "*.ftbench.yml")
BUILTIN_DIR = Path(__file__).parent / "jobs"


@dataclass(frozen=True)
class Field:
    """One key of a job file: where it lands, and what the docs say of it."""

    key: str
    kind: str  # as the docs name the type
    doc: str
    target: str | None = None  # the Training field it sets (None: handled by the loader)


FILE_FIELDS = (
    Field("profile", "string", "The name baselines are kept under "
          "(results/baselines/<hardware>/<profile>.json). Default: the file's name."),
    Field("description", "string", "One line about the file's jobs."),
    Field("max_length", "integer", "Tokens per row for every job that sets none. Default 128."),
    Field("tolerances", "mapping", "Per metric, changes to its gate: `{train_samples_per_second: "
          "{relative: 0.15}}`, `{eval_accuracy: {k: 2, min_tolerance: 0.02}}`."),
    Field("jobs", "list", "The jobs, each a mapping of the job keys below. Without it the file "
          "is one job, its keys at the top."),
)  # fmt: skip

JOB_FIELDS = (
    Field("name", "string", "The job's name: case ids are `name[checkpoint-padding-device-"
          "precision-method]`, and `-k name` selects it. Default: the task's name."),
    Field("task", "string", "What is trained: mrpc, sft, dpo, reward, cpo, orpo, grpo, or a "
          "registered task (ftbench.tasks.register_task, entry point group ftbench.tasks)."),
    Field("checkpoints", "list", "Checkpoints: a bundled name (minilm-l6, smollm2-135m), a Hub "
          "id, a local directory of safetensors, or `<arch>@random`. `checkpoint:` takes one."),
    Field("checkpoint", "string", "One checkpoint, instead of `checkpoints`."),
    Field("data", "mapping", "Your data (keys below). Default: the task's own data "
          "(--ftb-data-dir)."),
    Field("paddings", "list", "Padding strategies (the task's; MRPC: static, dynamic, bucketed, "
          "dynamic-x8; sft: padded, packed, padding-free; the other TRL tasks: padded). "
          "Default: the task's first."),
    Field("devices", "list", f"{', '.join(DEVICES)}. Default: cpu."),
    Field("precisions", "list", f"{', '.join(PRECISIONS)}. Default: fp32."),
    Field("methods", "list", f"{', '.join(METHODS)}. Default: full."),
    Field("processes", "list", "Processes per case (accelerate launch; the global batch stays "
          "the same). Default: [1]."),
    Field("max_length", "integer", "Tokens per row (also accepted under `trainer:`). Default: "
          "the file's."),
    Field("trainer", "mapping", "The trainer config's own fields (below), checked against the "
          "installed class."),
    Field("evaluation", "mapping", "When and on what the model is evaluated (keys below)."),
    Field("timing", "mapping", "Which steps are timed (keys below)."),
    Field("lora", "mapping", "The lora and qlora methods' settings (keys below)."),
    Field("gates", "list", "The metrics judged against the baselines. Default: the task's "
          "quality metrics and peak_memory_bytes (a job that doesn't evaluate: "
          "train_samples_per_second and peak_memory_bytes)."),
    Field("floors", "mapping", "Per metric, the worst value a finished fine-tune may reach "
          "(a loss: the highest). Missing one fails the case, baseline or not."),
    Field("tolerances", "mapping", "Per metric, this job's changes to its gate, over the "
          "file's `tolerances` (a noisier recipe's speed, say); `--ftb-tolerance` still wins."),
    Field("invariants", "list", "Makes the job an invariants job: pairs of settings that must "
          "train the same model, compared step by step (docs/invariants.md): determinism, "
          "resume, grad-accum, processes, padding, precision. An entry may be a mapping "
          "`{grad-accum: {expected: why, link: url}}`: a known divergence, reported as "
          "expected; the pair fails if it stops diverging."),
)  # fmt: skip

DATA_FIELDS = (
    Field("train", "path", "Training rows: CSV, TSV, JSON lines or Parquet, relative to the "
          "job file. With `hub:`, the split's name (default train)."),
    Field("validation", "path", "Held-out rows, evaluated after training (with `hub:`: the "
          "split, default validation)."),
    Field("test", "path", "MRPC only: unlabelled rows, not gated."),
    Field("hub", "string", "A Hub dataset id, loaded with datasets.load_dataset when the Hub is "
          "reachable (or from its cache)."),
    Field("config", "string", "The Hub dataset's configuration name."),
    Field("columns", "mapping", "The task's column names -> yours, e.g. `{chosen: good, "
          "rejected: bad}`; the task's names are listed below."),
    Field("preference_data", "string", "dpo, reward, cpo, orpo without files: gsm8k or "
          "hh-rlhf, read under --ftb-data-dir."),
)  # fmt: skip

# The trainer config fields ftbench keeps in its own Training (the rest pass through as given).
TRAINER_FIELDS = (
    Field("num_train_epochs", "number", "Passes over the training rows (if max_steps <= 0).",
          "epochs"),
    Field("max_steps", "integer", "Optimizer steps; > 0 overrides the epochs.", "max_steps"),
    Field("per_device_train_batch_size", "integer", "Rows a step, over all processes: with N "
          "processes each takes 1/N, so the optimizer steps match.", "batch_size"),
    Field("per_device_eval_batch_size", "integer", "Rows an evaluation step.", "eval_batch_size"),
    Field("learning_rate", "number", "The peak learning rate.", "learning_rate"),
    Field("weight_decay", "number", "AdamW's weight decay.", "weight_decay"),
    Field("warmup_steps", "number", "Learning-rate warm-up: steps, or a fraction of them "
          "below 1 (transformers 5).", "warmup"),
    Field("seed", "integer", "The first seed (--ftb-seeds N adds the next N-1).", "seed"),
    Field("gradient_checkpointing", "boolean", "Recompute activations: less memory, more time.",
          "gradient_checkpointing"),
    Field("max_completion_length", "integer", "GRPO: tokens generated per completion.",
          "max_completion_length"),
    Field("num_generations", "integer", "GRPO: completions per prompt.", "num_generations"),
    Field("use_vllm", "boolean", "GRPO: generate with vLLM (CUDA).", "use_vllm"),
)  # fmt: skip
# Trainer fields ftbench sets itself, and what to use instead.
TRAINER_RESERVED = {
    "output_dir": "ftbench trains in a temporary directory and writes records under results/",
    "bf16": "use the `precisions` axis",
    "fp16": "use the `precisions` axis",
    "use_cpu": "use the `devices` axis",
    "eval_strategy": "ftbench evaluates after training (evaluation.target_accuracy: periodically)",
    "eval_steps": "set evaluation.evaluations",
    "do_eval": "use evaluation.evaluate",
    "report_to": "ftbench records every run under results/",
    "warmup_ratio": "use warmup_steps: a fraction below 1 (transformers 5)",
}

INVARIANT_FIELDS = (
    Field("expected", "string", "Why the pair is known to part (upstream), in a sentence."),
    Field("link", "string", "Where that is tracked: an issue or a commit."),
)  # fmt: skip

EVALUATION_FIELDS = (
    Field("evaluate", "boolean", "Evaluate after training (false: a throughput job, timed "
          "over fixed steps in rounds). Default true.", "evaluate"),
    Field("evaluate_untrained", "boolean", "Also evaluate before training, on the same rows.",
          "evaluate_untrained"),
    Field("eval_samples", "integer", "Evaluate on the first N held-out rows (default: all).",
          "eval_samples"),
    Field("target_accuracy", "number", "Time to this accuracy: evaluate periodically until "
          "reached.", "target_accuracy"),
    Field("evaluations", "integer", "Periodic evaluations over training, with a target.",
          "evaluations"),
)  # fmt: skip
TIMING_FIELDS = (
    Field("warmup_steps", "integer", "Steps left out of the steady-state timing (allocator, "
          "caches). Default 3.", "timing_warmup_steps"),
    Field("steps_per_round", "integer", "A throughput job's timed steps per round (the "
          "tables' spread; pytest-benchmark's rounds with --ftb-in-process). Default 2.",
          "steps_per_round"),
)  # fmt: skip
LORA_FIELDS = (
    Field("rank", "integer", "LoRA rank r. Default 8.", "rank"),
    Field("alpha", "integer", "LoRA alpha. Default 16.", "alpha"),
    Field("dropout", "number", "LoRA dropout. Default 0 (peft's).", "dropout"),
    Field("targets", "list", "Module names; default: peft's for the architecture.", "targets"),
    Field("learning_rate", "number", "The adapters' learning rate (default: the job's).",
          "learning_rate"),
    Field("gradient_checkpointing", "boolean", "qlora: recompute activations. Default true.",
          "gradient_checkpointing"),
    Field("floors", "mapping", "Floors for the adapter methods, replacing the job's by metric.",
          "floors"),
)  # fmt: skip

KINDS = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "list": (list,),
    "mapping": (dict,),
    "path": (str,),
}


def is_job_file(path: Path) -> bool:
    return any(fnmatch.fnmatch(path.name, pattern) for pattern in JOB_FILE_PATTERNS)


# Folders pytest would not look in either (its norecursedirs, and virtual environments).
SKIPPED_DIRS = ("build", "dist", "node_modules", "results", "__pycache__", "site-packages")


def find_job_files(root: str | Path, listed: list[str] = ()) -> list[Path]:  # type: ignore[assignment]
    """Job files under `root` as pytest collects them: named ftbench*.yaml, or matching one of
    the `listed` globs (pyproject.toml's [tool.ftbench] jobs, relative to `root`)."""
    import os

    root = Path(root)
    if root.is_file():
        return [root]
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(
            d for d in dirs
            if not d.startswith(".") and d not in SKIPPED_DIRS and not d.endswith(".egg-info")
            and not (Path(folder, d) / "pyvenv.cfg").exists()
        )  # fmt: skip
        for name in sorted(files):
            path = Path(folder, name)
            relative = path.relative_to(root).as_posix()
            if path.suffix in (".yaml", ".yml") and (
                is_job_file(path) or any(fnmatch.fnmatch(relative, g) for g in listed)
            ):
                found.append(path)
    return found


def listed_in_pyproject(root: str | Path) -> list[str]:
    """pyproject.toml's `[tool.ftbench] jobs`: paths or globs of job files, relative to it."""
    import tomllib

    pyproject = Path(root) / "pyproject.toml"
    if not pyproject.is_file():
        return []
    try:
        table = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{pyproject}: {exc}") from None
    jobs = table.get("tool", {}).get("ftbench", {}).get("jobs", [])
    if not isinstance(jobs, list) or not all(isinstance(j, str) for j in jobs):
        raise ConfigError(f"{pyproject}: [tool.ftbench] jobs must be a list of paths or globs")
    return jobs


def builtin_profiles() -> dict[str, Path]:
    """The profiles shipped with ftbench, by name: smoke, full."""
    return {path.stem: path for path in sorted(BUILTIN_DIR.glob("*.yaml"))}


def load_job_file(path: str | Path, *, name: str | None = None) -> Any:
    """The file's jobs as a `Profile`; `name` overrides the profile's name."""
    import yaml

    from ftbench.config.profiles import Profile

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"job file {path}: can't read it ({exc.strerror or exc})") from None
    try:
        doc = yaml.safe_load(text)
        lines = _key_lines(yaml.compose(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    reader = _Reader(path, lines)
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: a job file is a mapping (a job, or `jobs:` and a list)")
    if "jobs" in doc:
        reader.check_keys(doc, FILE_FIELDS, (), "the file")
        entries = doc["jobs"]
        if not isinstance(entries, list) or not entries:
            raise reader.error(("jobs",), "`jobs` must be a list of one or more jobs")
        top = {k: v for k, v in doc.items() if k != "jobs"}
        paths = [("jobs", i) for i in range(len(entries))]
    else:
        file_keys = {f.key for f in FILE_FIELDS} - {"max_length", "jobs"}
        reader.check_keys(doc, (*FILE_FIELDS, *JOB_FIELDS), (), "the file")
        top = {k: v for k, v in doc.items() if k in file_keys}
        entries = [{k: v for k, v in doc.items() if k not in file_keys}]
        paths = [()]
    max_length = reader.typed(top.get("max_length", 128), "integer", ("max_length",))
    jobs = [reader.job(entry, at) for entry, at in zip(entries, paths, strict=True)]
    seen: dict[str, tuple] = {}
    for job, at in zip(jobs, paths, strict=True):
        if job.name in seen:
            first = reader.line(seen[job.name])
            raise reader.error(at, f"two jobs are named {job.name!r} (the other at line {first})")
        seen[job.name] = at
    tolerances = reader.typed(top.get("tolerances", {}), "mapping", ("tolerances",))
    _check_tolerances(tolerances, reader)
    return Profile(
        name=name or str(reader.typed(top.get("profile", path.stem), "string", ("profile",))),
        description=str(top.get("description", "")),
        jobs=tuple(jobs),
        max_length=max_length,
        tolerances=tolerances,
        origin=str(path),
    )


class _Reader:
    """Reads one file's values, raising errors that name the file, line and key."""

    def __init__(self, path: Path, lines: dict[tuple, int]) -> None:
        self.path, self.lines = path, lines

    def line(self, at: tuple) -> int | None:
        while at and at not in self.lines:
            at = at[:-1]
        return self.lines.get(at)

    def error(self, at: tuple, message: str) -> ConfigError:
        line = self.line(at)
        where = f"{self.path}:{line}" if line else str(self.path)
        return ConfigError(f"{where}: {message}")

    def check_keys(self, mapping: dict, known: tuple[Field, ...], at: tuple, what: str) -> None:
        names = [f.key for f in known]
        for key in mapping:
            # x-...: YAML anchors' keys (docker compose's convention); `<<` merges them
            if key not in names and not str(key).startswith("x-"):
                message = f"unknown key {key!r} in {what}" + _nearest(key, names)
                raise self.error((*at, key), message)

    def typed(self, value: Any, kind: str, at: tuple) -> Any:
        if kind == "number":
            value = _number(value)  # YAML 1.1 reads 1e-5 (no dot) as a string
        allowed = KINDS[kind]
        wrong = not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)
        if wrong:
            shown = type(value).__name__ if value is not None else "nothing"
            raise self.error(at, f"`{'.'.join(map(str, at[-1:]))}` must be a {kind}, not {shown}"
                             f" ({value!r})")  # fmt: skip
        return value

    def strings(self, value: Any, at: tuple, allowed: tuple[str, ...] | None = None) -> tuple:
        items = [value] if isinstance(value, str) else value
        items = list(items) if isinstance(items, tuple) else self.typed(items, "list", at)
        if not items:
            raise self.error(at, f"`{at[-1]}` lists nothing: give at least one value")
        for item in items:
            self.typed(item, "string", at)
            if allowed is not None and item not in allowed:
                raise self.error(at, f"{at[-1]}: unknown value {item!r}; choose from "
                                     f"{', '.join(allowed)}")  # fmt: skip
        return tuple(items)

    def section(self, mapping: Any, known: tuple[Field, ...], at: tuple, what: str) -> dict:
        if mapping is None:
            return {}
        mapping = _without_extensions(self.typed(mapping, "mapping", at))
        self.check_keys(mapping, known, at, what)
        by_key = {f.key: f for f in known}
        return {k: self.typed(v, by_key[k].kind, (*at, k)) for k, v in mapping.items()}

    # -- one job -------------------------------------------------------------------------------

    def job(self, entry: Any, at: tuple) -> Any:
        from ftbench.config.profiles import Job
        from ftbench.tasks import get_task

        if not isinstance(entry, dict):
            raise self.error(at, "a job is a mapping of keys (task, checkpoints, trainer, ...)")
        self.check_keys(entry, JOB_FIELDS, at, "a job")
        if "task" not in entry:
            raise self.error(at, "a job needs `task:` (mrpc, sft, dpo, ...)")
        task_name = self.typed(entry["task"], "string", (*at, "task"))
        try:
            task = get_task(task_name)
        except ConfigError as exc:
            raise self.error((*at, "task"), str(exc)) from None
        name = self.typed(entry.get("name", task_name), "string", (*at, "name"))
        what = f"job {name!r}"
        if "checkpoint" in entry and "checkpoints" in entry:
            raise self.error(at, f"{what}: give `checkpoint` or `checkpoints`, not both")
        key = "checkpoints" if "checkpoints" in entry else "checkpoint"
        if key not in entry:
            raise self.error(at, f"{what} needs `checkpoints:` (or `checkpoint:`)")
        checkpoints = self.strings(entry[key], (*at, key))
        axes: dict[str, tuple] = {"checkpoints": checkpoints}
        for axis, default, allowed in (
            ("paddings", task.paddings[:1], task.paddings),
            ("devices", ("cpu",), DEVICES),
            ("precisions", ("fp32",), PRECISIONS),
            ("methods", ("full",), METHODS),
        ):
            axes[axis] = self.strings(entry.get(axis, default), (*at, axis), allowed)
        processes = self.typed(entry.get("processes", [1]), "list", (*at, "processes"))
        if not processes:
            raise self.error((*at, "processes"), "`processes` lists nothing: give at least one")
        for n in processes:
            if self.typed(n, "integer", (*at, "processes")) < 1:
                raise self.error((*at, "processes"), f"{what}: processes must be 1 or more")
        trainer = self.typed(entry.get("trainer") or {}, "mapping", (*at, "trainer"))
        training, max_length = self.training(entry, trainer, task, at, what)
        if "max_length" in entry:
            max_length = self.typed(entry["max_length"], "integer", (*at, "max_length"))
        metrics = _task_metrics(task)
        gates = entry.get("gates")
        if gates is None:
            gates = _default_gates(task, training)
        gates = self.strings(gates, (*at, "gates"))
        floors = self.floors(entry.get("floors"), (*at, "floors"), metrics, task.name)
        for metric in gates:
            if metric not in metrics:
                raise self.error((*at, "gates"), f"{what}: task {task.name} does not report "
                                 f"{metric!r}" + _nearest(metric, list(metrics)))  # fmt: skip
        lora = self.lora(entry.get("lora"), (*at, "lora"), metrics, task.name)
        tolerances = self.typed(entry.get("tolerances", {}), "mapping", (*at, "tolerances"))
        _check_tolerances(tolerances, self, (*at, "tolerances"))
        invariants, expected = self.invariants(entry.get("invariants"), (*at, "invariants"))
        if invariants and training.max_steps <= 0:
            raise self.error(at, f"{what}: an invariants job trains a fixed number of steps; "
                             "set trainer.max_steps")  # fmt: skip
        return Job(
            name,
            training=training,
            lora=lora,
            floors=floors,
            gates=gates,
            task=task.name,
            max_length=max_length,
            processes=tuple(processes),
            data=self.data(entry.get("data"), (*at, "data"), task, what),
            origin=f"{self.path}:{self.line(at) or 1}",
            invariants=invariants,
            expected=expected,
            tolerances=tolerances,
            **axes,
        )

    def invariants(self, value: Any, at: tuple) -> tuple[tuple[str, ...], dict[str, Any]]:
        """`[determinism, grad-accum, ...]`, each entry a name or `{name: {expected, link}}`."""
        from ftbench.core.invariants import INVARIANTS, Expected

        names: list[str] = []
        expected: dict[str, Expected] = {}
        for i, entry in enumerate(self.typed(value or [], "list", at)):
            where = (*at, i)
            if isinstance(entry, dict) and len(entry) == 1:
                name, mark = next(iter(entry.items()))
                fields = self.typed(mark or {}, "mapping", (*where, name))
                self.check_keys(fields, INVARIANT_FIELDS, (*where, name), f"invariant {name}")
                if "expected" not in fields:
                    why = "give `expected:` and why (a known divergence), or list it by name alone"
                    raise self.error((*where, name), f"invariant {name}: {why}")
                expected[name] = Expected(
                    self.typed(fields["expected"], "string", (*where, name, "expected")),
                    self.typed(fields.get("link", ""), "string", (*where, name, "link")),
                )
            else:
                name = self.typed(entry, "string", where)
            if name not in INVARIANTS:
                known = ", ".join(INVARIANTS)
                hint = _nearest(name, list(INVARIANTS))
                raise self.error(where, f"unknown invariant {name!r}; known: {known}{hint}")
            if name in names:
                raise self.error(where, f"invariant {name!r} is listed twice")
            names.append(name)
        return tuple(names), expected

    def training(
        self, entry: dict, trainer: dict, task: Any, at: tuple, what: str
    ) -> tuple[Training, int | None]:
        mapped = {f.key: f for f in TRAINER_FIELDS}
        values: dict[str, Any] = {}
        passed: dict[str, Any] = {}
        max_length = None
        config, known = None, None
        for key, value in _without_extensions(trainer).items():
            where = (*at, "trainer", key)
            if key in TRAINER_RESERVED:
                raise self.error(where, f"{what}: trainer.{key} is set by ftbench: "
                                 f"{TRAINER_RESERVED[key]}")  # fmt: skip
            if key == "max_length":
                max_length = self.typed(value, "integer", where)
                continue
            if key in mapped:
                values[mapped[key].target] = self.typed(value, mapped[key].kind, where)
                continue
            if known is None and (config := _config_class(task)) is not None:
                known = {f.name: f for f in fields(config)}  # imports the trainer: only now
            if known is not None and key not in known:
                version = _version_of(config)
                raise self.error(where, f"{what}: unknown trainer field {key!r} for "
                                 f"{config.__module__}.{config.__name__} ({version})"
                                 + _nearest(key, list(known)))  # fmt: skip
            else:
                if known is not None:
                    value = _check_type(self, value, known[key], where, what)
                passed[key] = value
        for section, table in (("evaluation", EVALUATION_FIELDS), ("timing", TIMING_FIELDS)):
            given = self.section(entry.get(section), table, (*at, section), f"{what}'s {section}")
            targets = {f.key: f.target for f in table}
            values.update({targets[k]: v for k, v in given.items()})
        for key in ("learning_rate", "weight_decay", "target_accuracy"):
            if values.get(key) is not None:
                values[key] = float(values[key])
        return Training(**values, trainer_args=passed), max_length

    def floors(self, value: Any, at: tuple, metrics: dict, task: str) -> dict[str, float]:
        floors = self.typed(value or {}, "mapping", at)
        for metric, floor in floors.items():
            if metric not in metrics:
                raise self.error((*at, metric), f"a floor on {metric!r}, which task {task} does "
                                 "not report" + _nearest(metric, list(metrics)))  # fmt: skip
            self.typed(floor, "number", (*at, metric))
        return {m: float(v) for m, v in floors.items()}

    def lora(self, value: Any, at: tuple, metrics: dict, task: str) -> Lora:
        given = self.section(value, LORA_FIELDS, at, "lora")
        targets = {f.key: f.target for f in LORA_FIELDS}
        settings = {targets[k]: v for k, v in given.items()}
        if "targets" in settings:
            settings["targets"] = self.strings(settings["targets"], (*at, "targets"))
        if "floors" in settings:
            settings["floors"] = self.floors(settings["floors"], (*at, "floors"), metrics, task)
        for key in ("dropout", "learning_rate"):
            if settings.get(key) is not None:
                settings[key] = float(settings[key])
        return Lora(**settings)

    def data(self, value: Any, at: tuple, task: Any, what: str) -> DataSource | None:
        given = self.section(value, DATA_FIELDS, at, f"{what}'s data")
        if not given:
            return None
        base = self.path.parent
        settings: dict[str, Any] = {}
        if "hub" in given:
            settings["hub_dataset"] = given["hub"]
            settings["hub_config"] = given.get("config")
        elif "config" in given:
            raise self.error((*at, "config"), f"{what}: data.config names a Hub dataset's "
                             "configuration; give data.hub too")  # fmt: skip
        for split in ("train", "validation", "test"):
            if split in given:
                where = given[split] if "hub" in given else str((base / given[split]).resolve())
                settings[f"{split}_file"] = where
        if ("train_file" in settings) != ("validation_file" in settings) and "hub" not in given:
            raise self.error(at, f"{what}: data needs both train and validation files")
        if "preference_data" in given:
            settings["preference_data"] = given["preference_data"]
        columns = self.typed(given.get("columns", {}), "mapping", (*at, "columns"))
        own = task.columns
        for column, theirs in columns.items():
            if column not in own:
                names = ", ".join(own) or "none"
                raise self.error((*at, "columns", column), f"{what}: task {task.name} reads no "
                                 f"column {column!r}; its columns: {names}")  # fmt: skip
            self.typed(theirs, "string", (*at, "columns", column))
            target = own[column]
            if target == "text_columns":  # sentence1 and sentence2 form one pair
                pair = list(settings.get("text_columns", DataSource.text_columns))
                pair[0 if column == "sentence1" else 1] = theirs
                settings["text_columns"] = tuple(pair)
            else:
                settings[target] = theirs
        return DataSource(**settings)


def _key_lines(node: Any, at: tuple = ()) -> dict[tuple, int]:
    """Each key's line (1-based) by its path in the document, for error messages."""
    import yaml

    lines: dict[tuple, int] = {}
    if node is None:
        return lines
    lines[at] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                lines.update(_key_lines(value, (*at, key.value)))
                lines[(*at, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_key_lines(item, (*at, index)))
    return lines


def _without_extensions(mapping: dict) -> dict:
    """The mapping without its `x-` keys, which hold YAML anchors and are otherwise ignored."""
    return {k: v for k, v in mapping.items() if not str(k).startswith("x-")}


def _number(value: Any) -> Any:
    """`1e-5` as a float: YAML 1.1 reads an exponent without a dot as a string."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _nearest(name: Any, names: list[str]) -> str:
    close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


def _task_metrics(task: Any) -> dict[str, Any]:
    metrics = {m.name: m for m in task.all_metrics()}
    return {**metrics, **probe_twins(metrics)}


def _default_gates(task: Any, training: Training) -> tuple[str, ...]:
    if not training.evaluate:
        return ("train_samples_per_second", "peak_memory_bytes")
    return (*(m.name for m in task.metrics if m.quality), "peak_memory_bytes")


def _config_class(task: Any) -> Any:
    """The task's trainer config class, or None where its package is missing (the job's
    cases then skip with the install command)."""
    if task.problem() is not None:
        return None
    return task.config_class()


def _version_of(config: Any) -> str:
    from importlib.metadata import PackageNotFoundError, version

    package = config.__module__.split(".")[0]
    try:
        return f"{package} {version(package)}"
    except PackageNotFoundError:
        return package


def _check_type(reader: _Reader, value: Any, field: Any, at: tuple, what: str) -> Any:
    """A trainer field's value, refused where its default shows another kind (a flag given a
    number, a name given a list); numbers pass for numbers, and None for anything, which the
    config class checks itself."""
    default = field.default
    if value is None or default is None or not isinstance(default, bool | int | float | str):
        return value
    if isinstance(default, bool):
        ok, expected = isinstance(value, bool), "boolean"
    elif isinstance(default, int | float):
        value = _number(value)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        expected = "number"
    else:
        ok, expected = isinstance(value, str), "string"
    if not ok:
        raise reader.error(at, f"{what}: trainer.{field.name} must be a {expected}, not "
                           f"{type(value).__name__} ({value!r})")  # fmt: skip
    return value


def _check_tolerances(tolerances: dict, reader: _Reader, at: tuple = ("tolerances",)) -> None:
    from ftbench.tasks import tolerances_with

    for metric, rule in tolerances.items():
        reader.typed(rule, "mapping", (*at, metric))
        for key, value in rule.items():
            rule[key] = reader.typed(value, "number", (*at, metric, key))
    try:
        tolerances_with(tolerances)
    except ConfigError as exc:
        raise reader.error(at, str(exc)) from None


def fields_markdown() -> str:
    """docs/jobs.md's reference tables, from the definitions above."""
    from ftbench.tasks import all_tasks

    def table(title: str, rows: tuple[Field, ...]) -> list[str]:
        out = [f"### {title}", "", "| key | type | meaning |", "| --- | --- | --- |"]
        out += [f"| `{f.key}` | {f.kind} | {f.doc} |" for f in rows]
        return [*out, ""]

    lines = [*table("The file", FILE_FIELDS), *table("A job", JOB_FIELDS)]
    lines += table("`data:`", DATA_FIELDS)
    lines += ["Each task's column names, for `data.columns`:", ""]
    lines += [f"- {t.name}: {', '.join(t.columns) or '(none)'}" for t in all_tasks()]
    lines += [""]
    lines += table("`trainer:` (fields ftbench also records)", TRAINER_FIELDS)
    lines += ["Any other field of the task's trainer config passes through as given. These are "
              "ftbench's own:", ""]  # fmt: skip
    lines += [f"- `{k}`: {why}" for k, why in TRAINER_RESERVED.items()]
    lines += [""]
    lines += table("`evaluation:`", EVALUATION_FIELDS)
    lines += table("`timing:`", TIMING_FIELDS)
    lines += table("`lora:`", LORA_FIELDS)
    lines += table("An `invariants:` entry's mark", INVARIANT_FIELDS)
    return "\n".join(lines)
