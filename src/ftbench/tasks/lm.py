"""What the TRL tasks share: a causal LM's tokenizer and model, rows checked before training,
and the trainer's config built from the case (TRL's configs extend TrainingArguments)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, ClassVar

from ftbench.core.errors import CheckpointError
from ftbench.stack.dataid import chat_identity
from ftbench.stack.rows import default_files, drop_rows_without_room, limit, load_preference_rows
from ftbench.tasks import Task

if TYPE_CHECKING:
    from datasets import DatasetDict

    from ftbench.core.spec import CaseSpec

INSTALL_TRL = "pip install 'trl>=1.16,<2'"


class TrlTask(Task):
    model_class = "causal-lm"
    peft_task_type = "CAUSAL_LM"
    requires = ("trl",)
    needs_decoder = True
    install = INSTALL_TRL
    completions: ClassVar[tuple[str, ...]]  # the columns a prompt must leave room for
    # Rows must fit whole (no truncation): every padding strategy then trains the same tokens,
    # and padding-free mode, which TRL does not truncate, needs it.
    whole_rows: ClassVar[bool] = False

    def encode(
        self,
        data: DatasetDict,
        tokenizer: Any,
        *,
        padding: str,
        max_length: int,
        eval_samples: int | None = None,
    ) -> DatasetDict:
        """Rows that fit: prompts leaving no room for a completion (with `whole_rows`, rows
        longer than max_length) are dropped and counted.

        TRL tokenizes in its trainer, so the rows stay text (chat messages) here.
        """
        if not getattr(tokenizer, "chat_template", None):
            raise CheckpointError(
                f"task {self.name}: the tokenizer has no chat template, and the rows are chat "
                "messages; use a chat model's checkpoint (for example smollm2-135m)"
            )
        kept, dropped = {}, {}
        for split in ("train", "validation"):
            rows = limit(data[split], eval_samples) if split == "validation" else data[split]
            kept[split], dropped[split] = drop_rows_without_room(
                rows, tokenizer, max_length, self.completions, whole=self.whole_rows
            )
        return checked_rows()(kept, dropped)

    def data_summary(self, data: DatasetDict) -> dict[str, Any]:
        return {
            "used_rows": {split: len(data[split]) for split in data},
            "dropped_without_room": data.dropped if isinstance(data, checked_rows()) else None,
        }

    def identity(self, source: Any, data: DatasetDict) -> dict[str, Any]:
        dataset = self.calibrated_on(source)
        return chat_identity(source, data, dataset, default_files(source, dataset))

    def config_arguments(self, spec: CaseSpec) -> dict[str, Any]:
        # Every TRL config defaults to gradient checkpointing, which costs a lot of time on a
        # CPU: the case chooses, and the record holds the choice.
        return {
            "max_length": spec.max_length,
            "gradient_checkpointing": spec.training.gradient_checkpointing,
            "dataset_num_proc": None,
        }

    def config_class(self) -> Any:
        raise NotImplementedError

    def trainer_class(self) -> Any:
        raise NotImplementedError

    def trainer_arguments(self, spec: CaseSpec, model: Any) -> dict[str, Any]:
        """The trainer's arguments beyond the shared ones (DPO's reference model)."""
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
        return self.trainer_class()(
            model=model,
            args=args,
            train_dataset=data["train"],
            eval_dataset=data["validation"],
            processing_class=tokenizer,
            callbacks=callbacks,
            **self.trainer_arguments(spec, model),
        )


class PairTask(TrlTask):
    """The preference trainers' shared data: prompt, chosen, rejected (`dpo`, `reward`)."""

    paddings = ("padded",)
    columns: ClassVar[dict[str, str]] = {
        "prompt": "prompt_column",
        "chosen": "chosen_column",
        "rejected": "rejected_column",
    }
    completions = ("chosen", "rejected")
    rows_per_sample = 2  # chosen and rejected are concatenated into one batch

    def load_data(self, source: Any) -> DatasetDict:
        return load_preference_rows(source)

    def calibrated_on(self, source: Any) -> str:
        return "hh-rlhf" if source.preference_data == "hh-rlhf" else "gsm8k-pairs"


@functools.cache
def checked_rows() -> type:
    """`CheckedRows`: a DatasetDict of the rows a TRL trainer gets, and per split how many were
    dropped before training (the record says so). Made on first use: datasets loads slowly."""
    from datasets import DatasetDict

    class CheckedRows(DatasetDict):
        def __init__(self, splits: dict[str, Any], dropped: dict[str, int]) -> None:
            super().__init__(splits)
            self.dropped = dropped

    return CheckedRows
