"""Reward: a reward model trained on preference pairs with TRL's RewardTrainer.

The same pairs as `dpo`. The model is the causal LM's body with a new one-output score head
(`AutoModelForSequenceClassification`, num_labels=1; peft's SEQ_CLS task type trains the head
with the adapter). Metrics: eval accuracy (chosen scored above rejected) and mean margin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ftbench.core.measures import Metric
from ftbench.tasks.lm import PairTask

if TYPE_CHECKING:
    from datasets import DatasetDict


class Reward(PairTask):
    name = "reward"
    title = "preference pairs: GSM8K correct vs wrong (or hh-rlhf)"
    trainer_name = "trl.RewardTrainer"
    model_class = "sequence-classification"
    peft_task_type = "SEQ_CLS"
    metrics = (
        Metric("eval_accuracy", "higher", k=3.0, min_tolerance=0.05, label="accuracy"),
        Metric("eval_margin", "higher", k=3.0, min_tolerance=0.05, label="margin"),
    )

    def model_arguments(self, data: DatasetDict) -> dict[str, Any]:
        return {"num_labels": 1}

    def load_model(self, checkpoint: Any, tokenizer: Any, data: DatasetDict, **kwargs: Any):
        # A checkpoint that is not a decoder was refused before (needs_decoder).
        model, seconds = super().load_model(checkpoint, tokenizer, data, **kwargs)
        if getattr(model.config, "pad_token_id", None) is None:
            model.config.pad_token_id = tokenizer.pad_token_id  # the head reads each row's end
        return model, seconds

    def config_class(self) -> Any:
        from trl import RewardConfig

        return RewardConfig

    def trainer_class(self) -> Any:
        from trl import RewardTrainer

        return RewardTrainer


TASKS = {"reward": Reward()}
