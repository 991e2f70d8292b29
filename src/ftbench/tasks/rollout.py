"""Where an online-RL step's time goes: generation against the optimizer step (GRPO).

    clock = RolloutClock("cpu", warmup_steps=2)
    trainer = GRPOTrainer(..., callbacks=[clock]); clock.attach(trainer)
    trainer.train(); clock.summary(step_timer.summary())

GRPOTrainer samples completions in `_generate`, then scores them (reward functions, old
log-probabilities) in the rest of `_generate_and_score_completions`; both run inside the step
the StepTimer times. The clock wraps the two on the trainer instance, so it times them without
changing what they do, and keeps TRL's per-step reward logs.
"""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback

from ftbench.env.devices import synchronize

# TRL's per-step training logs kept in the record, by ftbench's name.
STEP_LOGS = {
    "reward": "reward",
    "reward_std": "reward_std",
    "frac_reward_zero_std": "zero_variance_groups",
    "completions/clipped_ratio": "clipped_ratio",
    "completions/mean_length": "completion_length",
    "rewards/correct_answer/mean": "correct",
    "rewards/answer_format/mean": "format",
    "loss": "loss",
}


class RolloutClock(TrainerCallback):
    def __init__(self, device: str, warmup_steps: int) -> None:
        self.device = device
        self.warmup_steps = warmup_steps
        self._step = [0.0, 0.0, 0]  # this step: generation s, rollout s, completion tokens
        self.timed: list[tuple[float, float, int]] = []  # per timed step
        self.logs: list[dict[str, Any]] = []

    def attach(self, trainer: Any) -> None:
        generate, rollout = trainer._generate, trainer._generate_and_score_completions

        def timed_generate(prompts: list) -> Any:
            started = time.perf_counter()
            out = generate(prompts)
            synchronize(self.device)
            if trainer.model.training:  # evaluation generates too; it is not a training step
                self._step[0] += time.perf_counter() - started
                self._step[2] += sum(len(ids) for ids in out[1])  # completion ids
            return out

        def timed_rollout(inputs: Any) -> Any:
            started = time.perf_counter()
            out = rollout(inputs)
            synchronize(self.device)
            if trainer.model.training:
                self._step[1] += time.perf_counter() - started
            return out

        trainer._generate = timed_generate
        trainer._generate_and_score_completions = timed_rollout

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step > self.warmup_steps:
            self.timed.append(tuple(self._step))
        self._step = [0.0, 0.0, 0]

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any):
        logs = logs or {}
        if "reward" in logs:  # a training step's log; evaluation's keys start with eval_
            entry = {ours: logs.get(theirs) for theirs, ours in STEP_LOGS.items()}
            self.logs.append({"step": state.global_step, **entry})

    def summary(self, window: dict[str, Any]) -> dict[str, Any]:
        """The timed steps split into generation, scoring and the optimizer step (`window`:
        the StepTimer's summary of the same steps), and the per-step reward logs."""
        generation = sum(s[0] for s in self.timed)
        rollout = sum(s[1] for s in self.timed)
        tokens = sum(s[2] for s in self.timed)
        optimizer = window["timed_seconds"] - rollout

        def mean(key: str) -> float | None:
            values = [s[key] for s in self.logs if s.get(key) is not None]
            return sum(values) / len(values) if values else None

        return {
            "generation_tokens_per_second": tokens / generation if generation else None,
            # the tokens trained (prompt and completion, real) over the step without its rollout
            "optimizer_tokens_per_second": (
                window["real_tokens"] / optimizer if optimizer > 0 else None
            ),
            "timed_steps": len(self.timed),
            "generation_seconds": generation,
            "scoring_seconds": rollout - generation,
            "optimizer_seconds": optimizer,
            "generation_share": generation / window["timed_seconds"],
            "completion_tokens": tokens,
            "mean_reward": mean("reward"),
            "first_reward": self.logs[0]["reward"] if self.logs else None,
            "last_reward": self.logs[-1]["reward"] if self.logs else None,
            "zero_variance_groups": mean("zero_variance_groups"),
            "clipped_ratio": mean("clipped_ratio"),
            "steps": self.logs,
        }
