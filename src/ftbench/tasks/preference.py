"""Preference tuning: DPO (trl.DPOTrainer), and CPO and ORPO from `trl.experimental`.

Pairs: GSM8K's own solution chosen over a wrong model solution for the same question (split
by question), or hh-rlhf harmless-base (`--ftb-preference-data hh-rlhf`), or the user's own files.
Metrics: eval reward accuracy (chosen's implicit reward above rejected's) and margin. The
untrained policy equals its reference, so both start at exactly 0.

With `full`, the reference is a frozen copy of the starting model; with `lora`, TRL disables
the adapter for the reference pass (the token counter ignores that no-grad pass).

CPO and ORPO need no reference model, so they fit in less memory: a preference loss on the
policy's own log-probabilities plus a language-modelling (NLL) term on the chosen answer. Their
rewards are beta times the policy's mean log-probabilities, so a trained model starts from a
small nonzero margin rather than exactly 0. TRL keeps them in `trl.experimental` (unstable API):
ftbench pins trl>=1.16,<2 and skips them, with the reason, where the installed TRL lacks them.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any, ClassVar

from ftbench.core.measures import Metric
from ftbench.core.spec import CaseSpec
from ftbench.tasks.lm import PairTask

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

    def config_arguments(self, spec: CaseSpec) -> dict[str, Any]:
        return {**super().config_arguments(spec), "beta": self.beta}

    def trainer_class(self) -> Any:
        from trl import DPOTrainer

        return DPOTrainer

    def trainer_arguments(self, spec: CaseSpec, model: Any) -> dict[str, Any]:
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


class ExperimentalPreference(Dpo):
    """A trainer from `trl.experimental.<module>`: no reference model, same pairs and metrics."""

    experimental = True
    module: ClassVar[str]  # trl.experimental.<module>
    names: ClassVar[dict[str, str]]  # TRL's metric names -> ftbench's

    def problem(self) -> str | None:
        import trl

        missing = super().problem()
        if missing:
            return missing
        os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # see _experimental
        if importlib.util.find_spec(f"trl.experimental.{self.module}") is not None:
            return None
        return (
            f"task {self.name} needs trl.experimental.{self.module}, which trl {trl.__version__} "
            "does not have; ftbench runs it with trl>=1.16,<2"
        )

    def _experimental(self) -> Any:
        # Its import warns that the API is unstable: the task table says so once, not each case.
        os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
        return importlib.import_module(f"trl.experimental.{self.module}")

    def config_class(self) -> Any:
        return getattr(self._experimental(), f"{self.module.upper()}Config")

    def trainer_class(self) -> Any:
        return getattr(self._experimental(), f"{self.module.upper()}Trainer")

    def trainer_arguments(self, spec: CaseSpec, model: Any) -> dict[str, Any]:
        return {}  # no reference model

    def quality(self, eval_metrics: dict[str, Any]) -> dict[str, float | None]:
        return {ours: eval_metrics.get(theirs) for theirs, ours in self.names.items()}


class Cpo(ExperimentalPreference):
    """Contrastive Preference Optimization: DPO's sigmoid loss on the policy's log-probabilities
    alone, plus `cpo_alpha` (1) times the NLL of the chosen answer."""

    name = "cpo"
    trainer_name = "trl.experimental.cpo.CPOTrainer"
    module = "cpo"
    names: ClassVar[dict[str, str]] = {**DPO_NAMES, "eval_nll_loss": "eval_nll_loss"}
    metrics = (
        *Dpo.metrics,
        Metric("eval_nll_loss", "lower", k=3.0, min_tolerance=0.02, label="NLL"),
    )


class Orpo(ExperimentalPreference):
    """Odds Ratio Preference Optimization: the chosen answer's NLL plus beta times the log
    sigmoid of the log odds ratio of chosen over rejected."""

    name = "orpo"
    trainer_name = "trl.experimental.orpo.ORPOTrainer"
    module = "orpo"
    names: ClassVar[dict[str, str]] = {
        **DPO_NAMES,
        "eval_log_odds_ratio": "eval_log_odds_ratio",
    }
    metrics = (
        *Dpo.metrics,
        # log sigmoid(log odds chosen - log odds rejected): at most 0, higher is better
        # it moves by hundredths in a CPU budget of steps (seed 42: -0.845 to -0.827)
        Metric("eval_log_odds_ratio", "higher", k=3.0, min_tolerance=0.005, label="log odds ratio"),
    )


TASKS = {"dpo": Dpo(), "cpo": Cpo(), "orpo": Orpo()}
