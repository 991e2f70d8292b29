"""Profiles: named sets of jobs (axis values and training arguments). Data, not code paths.

    from ftbench.config.profiles import get_profile, apply_overrides
    profile = apply_overrides(get_profile("smoke"), paddings=("dynamic",), max_steps=10)

The built-in profiles are job files (ftbench/config/jobs/smoke.yaml, full.yaml), read by
`ftbench.config.jobfile` as a user's are. A profile holds jobs: `finetune` trains to
convergence and checks accuracy; `throughput` runs a fixed number of steps per case and times
the steady state. `pytest bench/` runs each job's
checkpoint × padding × device × precision × method matrix.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ftbench.core.errors import ConfigError
from ftbench.core.invariants import Expected
from ftbench.core.measures import rate_and_twin
from ftbench.core.spec import Lora, Training
from ftbench.stack.data import DataSource
from ftbench.stack.methods import ADAPTER_METHODS
from ftbench.tasks import get_task

AXES = ("checkpoints", "paddings", "devices", "precisions", "methods", "processes")
# Overrides of the job's LoRA settings, by the field of `Lora` they replace.
LORA_OVERRIDES = {
    "lora_rank": "rank",
    "lora_alpha": "alpha",
    "lora_dropout": "dropout",
    "lora_targets": "targets",
}
# Overrides that change the recipe, after which the profile's accuracy floors no longer apply.
RECIPE_OVERRIDES = (
    "checkpoints",
    "epochs",
    "max_steps",
    "batch_size",
    "learning_rate",
    "max_length",
    "max_completion_length",
    "num_generations",
    *LORA_OVERRIDES,
)


@dataclass(frozen=True)
class Job:
    name: str
    checkpoints: tuple[str, ...]
    paddings: tuple[str, ...]
    devices: tuple[str, ...]
    precisions: tuple[str, ...]
    training: Training
    methods: tuple[str, ...] = ("full",)
    lora: Lora = field(default_factory=Lora)  # for the lora and qlora methods
    # Floors by metric: a finished fine-tune on their wrong side fails (a loss: above it).
    floors: dict[str, float] = field(default_factory=dict, hash=False)
    floors_off: str | None = None  # why the floors were dropped, when an override dropped them
    gates: tuple[str, ...] = ("eval_accuracy", "eval_f1", "peak_memory_bytes")  # vs. baselines
    task: str = "mrpc"  # what is trained: mrpc, sft, dpo, reward (ftbench.tasks)
    max_length: int | None = None  # tokens; None: the profile's
    # 1: in pytest's process; N > 1: under accelerate launch, same global batch
    # (ftbench.measure.launch)
    processes: tuple[int, ...] = (1,)
    # The job's own data (a job file's `data:`); None: the run's (--ftb-data-dir and friends).
    data: DataSource | None = None
    origin: str = ""  # the job file it came from
    # Pairs of settings that must train the same model (ftbench.config.invariants), and the
    # ones known to part, with the reason and a link (they fail if they stop parting).
    invariants: tuple[str, ...] = ()
    expected: dict[str, Expected] = field(default_factory=dict, hash=False)
    # Per-metric changes to the gates for this job's cases, over the profile's (a noisier
    # recipe's speed, say); --ftb-tolerance still wins.
    tolerances: dict[str, dict[str, float]] = field(default_factory=dict, hash=False)

    def training_for(self, method: str) -> Training:
        """The job's training, with the adapter's own learning rate where it has one."""
        if method in ADAPTER_METHODS and self.lora.learning_rate is not None:
            return replace(self.training, learning_rate=self.lora.learning_rate)
        return self.training

    def floors_for(self, method: str) -> dict[str, float]:
        """Floors by metric; adapters converge lower, so they may have their own."""
        if method in ADAPTER_METHODS:
            return {**self.floors, **self.lora.floors}
        return dict(self.floors)


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    jobs: tuple[Job, ...]
    max_length: int = 128  # tokens; static padding pads every pair to this
    # Per-metric changes to the metrics' default gates, e.g. {"eval_accuracy": {"k": 2}}.
    tolerances: dict[str, dict[str, float]] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    origin: str = ""  # the job file it came from

    def job(self, name: str) -> Job:
        for job in self.jobs:
            if job.name == name:
                return job
        raise ConfigError(f"profile {self.name!r} has no job {name!r}; it has {self.job_names()}")

    def job_names(self) -> list[str]:
        return [job.name for job in self.jobs]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def profile_names() -> list[str]:
    """The profiles ftbench ships: job files in ftbench/config/jobs/ (smoke, full)."""
    from ftbench.config.jobfile import builtin_profiles

    return list(builtin_profiles())


@functools.cache
def get_profile(name: str) -> Profile:
    """A built-in profile, read from its job file once."""
    from ftbench.config.jobfile import builtin_profiles, load_job_file

    files = builtin_profiles()
    if name not in files:
        raise ConfigError(f"unknown profile {name!r}; choose from {', '.join(files)} or 'auto'")
    return load_job_file(files[name])


def known_profile(name: str, root: str | None = None) -> Profile | None:
    """The profile of that name: built-in, or a job file's under `root` (default: the current
    directory, as pytest would find it); None if none is found or readable."""
    from pathlib import Path

    from ftbench.config.jobfile import find_job_files, listed_in_pyproject, load_job_file

    if name in profile_names():
        return get_profile(name)
    folder = Path(root or Path.cwd())
    try:
        files = find_job_files(folder, listed_in_pyproject(folder))
    except ConfigError:
        return None
    for path in files:
        try:
            profile = load_job_file(path)
        except ConfigError:  # a broken file, or a task only its conftest registers
            continue
        if profile.name == name:
            return profile
    return None


def default_profile_name() -> str:
    """`full` where a GPU is found, else `smoke`."""
    import torch

    return "full" if torch.cuda.is_available() else "smoke"


def apply_overrides(profile: Profile, **overrides: Any) -> Profile:
    """A copy of `profile` with axes and training arguments replaced; None means "keep"."""
    given = {k: v for k, v in overrides.items() if v is not None}
    training_fields = set(Training.__dataclass_fields__)
    known = {"max_length", "jobs", "tolerances", *LORA_OVERRIDES}
    unknown = set(given) - training_fields - set(AXES) - known
    if unknown:
        raise ConfigError(f"unknown override(s) {sorted(unknown)}")
    recipe_changed = [k for k in RECIPE_OVERRIDES if k in given]
    jobs = []
    for job in profile.jobs:
        if "jobs" in given and job.name not in given["jobs"]:
            continue
        axes = {k: tuple(given[k]) for k in AXES if k in given}
        if "paddings" in axes:  # each task has its own strategies (TRL's are packed, ...)
            supported = get_task(job.task).paddings
            axes["paddings"] = tuple(p for p in axes["paddings"] if p in supported)
            if not axes["paddings"]:
                continue
        if "max_length" in given:
            axes["max_length"] = given["max_length"]
        training = replace(job.training, **{k: v for k, v in given.items() if k in training_fields})
        lora = replace(job.lora, **{f: given[k] for k, f in LORA_OVERRIDES.items() if k in given})
        if lora.targets is not None:
            lora = replace(lora, targets=tuple(lora.targets))
        if "learning_rate" in given:  # a learning rate given is the one every method uses
            lora = replace(lora, learning_rate=None)
        new = replace(job, training=training, lora=lora, **axes)
        if given.get("tolerances"):  # the command line's tolerance is the one that holds
            named = {n for m in given["tolerances"] for n in rate_and_twin(m)}
            kept = {m: f for m, f in job.tolerances.items() if not set(rate_and_twin(m)) & named}
            new = replace(new, tolerances=kept)
        if recipe_changed and (job.floors or job.lora.floors):
            flags = ", ".join(_flag(k) for k in recipe_changed)
            new = replace(
                new,
                floors={},
                lora=replace(new.lora, floors={}),
                floors_off=f"recipe changed by {flags}",
            )
        jobs.append(new)
    return replace(
        profile,
        jobs=tuple(jobs),
        max_length=given.get("max_length", profile.max_length),
        tolerances={**profile.tolerances, **given.get("tolerances", {})},
        overrides={**profile.overrides, **given},
    )


def check_job(job: Job) -> None:
    """Refuse step counts that leave nothing to time, before any model is loaded."""
    t = job.training
    if t.max_steps <= 0:
        return
    rounds = not t.evaluate  # a throughput job: timed in pytest-benchmark rounds
    needed = t.timing_warmup_steps + (t.steps_per_round if rounds else 1)
    if t.max_steps < needed:
        raise ConfigError(
            f"job {job.name!r}: {t.max_steps} max steps leave nothing to time: it needs at "
            f"least {needed} ({t.timing_warmup_steps} warm-up"
            + (f" + one round of {t.steps_per_round}" if rounds else " + 1")
            + ")"
        )


def _flag(override: str) -> str:
    name = {"checkpoints": "checkpoint"}.get(override, override)
    return "--ftb-" + name.replace("_", "-")
