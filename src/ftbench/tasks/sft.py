"""SFT: supervised fine-tuning of a chat model with TRL's SFTTrainer.

GSM8K's question is the prompt and its worked solution the completion (the chat template
applied; the loss on completion tokens only, TRL's default for prompt-completion rows). Metrics:
held-out loss and mean token accuracy, beside the untrained model's on the same rows.

The padding axis is TRL's: `padded` batches, `packed` (best-fit decreasing packing into rows of
max_length) and `padding-free` (rows concatenated, told apart by position ids).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ftbench.core.measures import Metric
from ftbench.stack.padding import get_strategy
from ftbench.stack.rows import load_sft_rows
from ftbench.tasks.lm import TrlTask

if TYPE_CHECKING:
    from datasets import DatasetDict

    from ftbench.core.spec import CaseSpec
    from ftbench.stack.data import DataSource


class Sft(TrlTask):
    name = "sft"
    title = "GSM8K: question -> worked solution"
    trainer_name = "trl.SFTTrainer"
    paddings = ("padded", "packed", "padding-free")
    columns: ClassVar[dict[str, str]] = {
        "prompt": "prompt_column",
        "completion": "completion_column",
    }
    completions = ("completion",)
    whole_rows = True
    metrics = (
        Metric("eval_loss", "lower", k=3.0, min_tolerance=0.02, label="eval loss"),
        Metric(
            "eval_mean_token_accuracy", "higher", k=3.0, min_tolerance=0.005, label="token acc."
        ),
    )

    def load_data(self, source: DataSource) -> DatasetDict:
        return load_sft_rows(source)

    def calibrated_on(self, source: DataSource) -> str:
        return "gsm8k"

    def config_class(self) -> Any:
        from trl import SFTConfig

        return SFTConfig

    def config_arguments(self, spec: CaseSpec) -> dict[str, Any]:
        arguments = {
            **super().config_arguments(spec),
            **(get_strategy(spec.padding).trl or {}),
            "eval_packing": False,  # every padding strategy is evaluated on the same batches
        }
        if arguments.get("padding_free"):
            # TRL refuses max_length without packing here; every row already fits (whole_rows).
            arguments["max_length"] = None
        return arguments

    def trainer_class(self) -> Any:
        from trl import SFTTrainer

        return SFTTrainer


TASKS = {"sft": Sft()}
