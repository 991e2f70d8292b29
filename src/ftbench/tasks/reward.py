"""Reward: a reward model trained on preference pairs with TRL's RewardTrainer.

The same pairs as `dpo`. The model is the causal LM's body with a new one-output score head
(`AutoModelForSequenceClassification`, num_labels=1; peft's SEQ_CLS task type trains the head
with the adapter). Metrics: eval accuracy (chosen scored above rejected) and mean margin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ftbench.measures import Metric
from ftbench.tasks.lm import TrlTask

if TYPE_CHECKING:
    from datasets import DatasetDict

    from ftbench.data import DataSource


class Reward(TrlTask):
    name = "reward"
    title = "preference pairs: GSM8K correct vs wrong (or hh-rlhf)"
    trainer_name = "trl.RewardTrainer"
    model_class = "sequence-classification"
    peft_task_type = "SEQ_CLS"
    paddings = ("padded",)
    completions = ("chosen", "rejected")
    rows_per_sample = 2  # chosen and rejected are concatenated into one batch
    metrics = (
        Metric("eval_accuracy", "higher", k=3.0, min_tolerance=0.05, label="accuracy"),
        Metric("eval_margin", "higher", k=3.0, min_tolerance=0.05, label="margin"),
    )

    def load_data(self, source: DataSource) -> DatasetDict:
        from ftbench.tasks.chat import load_preference_rows

        return load_preference_rows(source)

    def model_arguments(self, data: DatasetDict) -> dict[str, Any]:
        return {"num_labels": 1}

    def load_model(self, checkpoint: Any, tokenizer: Any, data: DatasetDict, **kwargs: Any):
        from ftbench.checkpoints import is_causal_lm, model_config
        from ftbench.errors import CheckpointError

        if not is_causal_lm(model_config(checkpoint)):
            raise CheckpointError(
                f"checkpoint {checkpoint.spec!r} is not a causal LM: the reward task scores chat "
                "completions with a decoder's body (for example smollm2-135m)"
            )
        model, seconds = super().load_model(checkpoint, tokenizer, data, **kwargs)
        if getattr(model.config, "pad_token_id", None) is None:
            model.config.pad_token_id = tokenizer.pad_token_id  # the head reads each row's end
        return model, seconds

    def calibrated_on(self, source: DataSource) -> str:
        return "hh-rlhf" if source.preference_data == "hh-rlhf" else "gsm8k-pairs"

    def config_class(self) -> Any:
        from trl import RewardConfig

        return RewardConfig

    def trainer_class(self) -> Any:
        from trl import RewardTrainer

        return RewardTrainer


TASKS = {"reward": Reward()}
