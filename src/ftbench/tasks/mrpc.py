"""MRPC: sentence-pair classification with Trainer, the Hugging Face course's recipe.

Data from the Hub's `nyu-mll/glue`/`mrpc`, GLUE's TSV layout (`--ftb-data-dir`), or the
user's own files (`--ftb-train-file`, `--ftb-text-columns`, `--ftb-label-column`); see
`ftbench.stack.data`. The model is the checkpoint with a new classification head.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ftbench.core.measures import Metric
from ftbench.stack.data import load_pairs, tokenize_pairs
from ftbench.stack.padding import MRPC_STRATEGIES, get_strategy
from ftbench.stack.rows import limit
from ftbench.tasks import Task

if TYPE_CHECKING:
    from datasets import DatasetDict

    from ftbench.core.spec import CaseSpec
    from ftbench.stack.data import DataSource


class Mrpc(Task):
    name = "mrpc"
    title = "GLUE MRPC sentence pairs"
    trainer_name = "transformers.Trainer"
    paddings = MRPC_STRATEGIES
    columns: ClassVar[dict[str, str]] = {
        "sentence1": "text_columns",
        "sentence2": "text_columns",
        "label": "label_column",
    }
    metrics = (
        Metric("eval_accuracy", "higher", k=3.0, min_tolerance=0.01, label="accuracy"),
        Metric("eval_f1", "higher", k=3.0, min_tolerance=0.01, label="F1"),
    )

    def load_data(self, source: DataSource) -> DatasetDict:
        return load_pairs(source)

    def encode(
        self,
        data: DatasetDict,
        tokenizer: Any,
        *,
        padding: str,
        max_length: int,
        eval_samples: int | None = None,
    ) -> DatasetDict:
        encoded = tokenize_pairs(
            data,
            tokenizer,
            max_length=max_length,
            pad_to_max_length=get_strategy(padding).pad_to_max_length,
        )
        encoded["validation"] = limit(encoded["validation"], eval_samples)
        return encoded

    def collator(self, padding: str, tokenizer: Any) -> Any:
        return get_strategy(padding).collator(tokenizer)

    def model_arguments(self, data: DatasetDict) -> dict[str, Any]:
        label = data["train"].features["label"]
        return {"num_labels": label.num_classes, "label_names": label.names}

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
        from transformers import Trainer

        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=data["train"],
            eval_dataset=data["validation"],
            processing_class=tokenizer,
            data_collator=collator,
            compute_metrics=compute_metrics,
            callbacks=callbacks,
        )
        # transformers 5 takes any model whose forward has **kwargs for one that divides its loss
        # by `num_items_in_batch`: it then skips dividing by the accumulation steps and
        # multiplies by the processes. A classifier's loss is a plain mean that ignores it, so
        # k accumulated micro-batches trained on k times the loss and gradient, N processes on
        # N times (docs/invariants.md). Its loss is a mean per micro-batch: say so.
        trainer.model_accepts_loss_kwargs = False
        return trainer


TASKS = {"mrpc": Mrpc()}


# Accuracy and F1 from scikit-learn match `evaluate.load("glue", "mrpc")`: F1 is binary with
# "equivalent" (1) as the positive class; with more than two classes it is macro-averaged.
def classification_metrics(predictions: Any, labels: Any, num_labels: int = 2) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    average = "binary" if num_labels == 2 else "macro"
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "f1": float(f1_score(labels, predictions, average=average, zero_division=0)),
    }


def compute_metrics(eval_prediction: Any) -> dict[str, float]:
    """Trainer's `compute_metrics`: logits -> predicted class -> accuracy and F1."""
    logits, labels = eval_prediction.predictions, eval_prediction.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    return classification_metrics(logits.argmax(-1), labels, num_labels=logits.shape[-1])
