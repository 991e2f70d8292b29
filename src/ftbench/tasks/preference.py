"""DPO: preference tuning with TRL's DPOTrainer (CPO and ORPO belong here too, later).

Pairs: GSM8K's own solution chosen over a wrong model solution for the same question (split
by question), or hh-rlhf harmless-base (`--ftb-preference-data hh-rlhf`), or the user's own files.
Metrics: eval reward accuracy (chosen's implicit reward above rejected's) and margin. The
untrained policy equals its reference, so both start at exactly 0.

With `full`, the reference is a frozen copy of the starting model; with `lora`, TRL disables
the adapter for the reference pass (the token counter ignores that no-grad pass).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ftbench.measures import Metric
from ftbench.tasks.lm import PairTask

if TYPE_CHECKING:
    pass

# TRL's metric names -> ftbench's (no slashes: they become file names and columns).
DPO_NAMES = {
    "eval_rewards/accuracies": "eval_reward_accuracy",
    "eval_rewards/margins": "eval_reward_margin",
}


class Dpo(PairTask):
    name = "dpo"
    title = "preference pairs: GSM8K correct vs wrong (or hh-rlhf)"
    trainer_name = "trl.DPOTrainer"
    metrics = (
        Metric("eval_reward_accuracy", "higher", k=3.0, min_tolerance=0.05, label="reward acc."),
        Metric("eval_reward_margin", "higher", k=3.0, min_tolerance=0.05, label="margin"),
    )
    beta = 0.1  # TRL's default: how far the policy may move from the reference

    def config_class(self) -> Any:
        from trl import DPOConfig

        return DPOConfig

    def config_arguments(self, spec: Any) -> dict[str, Any]:
        return {**super().config_arguments(spec), "beta": self.beta}

    def trainer_class(self) -> Any:
        from trl import DPOTrainer

        return DPOTrainer

    def trainer_arguments(self, spec: Any, model: Any) -> dict[str, Any]:
        return {"ref_model": reference_model(model, spec.method)}

    def quality(self, eval_metrics: dict[str, Any]) -> dict[str, float | None]:
        return {ours: eval_metrics.get(theirs) for theirs, ours in DPO_NAMES.items()}


def reference_model(model: Any, method: str) -> Any:
    """A frozen copy of the starting policy for full fine-tuning; None for adapters, whose
    reference is the base model with the adapter disabled. A copy, rather than TRL loading the
    checkpoint again, also serves `<arch>@random` weights, which exist nowhere on disk."""
    if method != "full":
        return None
    import copy

    reference = copy.deepcopy(model).eval()
    reference.requires_grad_(False)
    return reference


TASKS = {"dpo": Dpo()}
