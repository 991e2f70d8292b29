"""A task of your own, outside ftbench: KTO (TRL's `KTOTrainer`) on the preference pairs.

KTO (Kahneman-Tversky Optimization, https://huggingface.co/papers/2402.01306) learns from
unpaired feedback: each row is a prompt, one completion and a bool label, desirable or not.
This task reads the same pairs as `dpo` (GSM8K correct vs wrong solutions, hh-rlhf, or your
own prompt/chosen/rejected files) and splits each pair into two rows, prompt + chosen (True)
and prompt + rejected (False), as chat messages. The reference model is DPO's: a frozen copy
of the starting policy with `full`, the base model with the adapter disabled with `lora`.

Metrics (TRL's eval rewards are beta times the policy's log-probability ratio to the
reference, averaged per label): eval_reward_margin (chosen minus rejected, DPO's metric of
that name), eval_reward_chosen and eval_reward_rejected; a job file gates all three by default.
The untrained policy is its own reference, so all three start at exactly 0.

Registration: nothing in ftbench names this task. conftest.py beside it registers it through
ftbench's pytest hook (`pytest_ftbench_register_tasks(register)`), so `task: kto` in a job
file is known like a built-in task's name; a package would use the `ftbench.tasks` entry
point instead. A job file:

    task: kto
    checkpoint: smollm2-135m
    trainer: {max_steps: 8, per_device_train_batch_size: 4, learning_rate: 5.0e-6, beta: 0.1}
    data: {train: mine-train.jsonl, validation: mine-dev.jsonl, columns: {chosen: good}}

Or from Python, one case:

    from kto import Kto  # examples/custom-task on sys.path
    from ftbench.core.spec import CaseSpec, Training
    from ftbench.measure.runner import run
    from ftbench.stack.data import DataSource
    from ftbench.tasks import register_task

    register_task(Kto)
    spec = CaseSpec("kto", "smollm2-135m", "padded", task="kto", max_length=256,
                    training=Training(max_steps=8, batch_size=4, evaluate_untrained=True))
    result = run(spec, DataSource(data_dir="../shared/data"))
    print(result.metrics["eval_reward_margin"], result.metrics["untrained_eval_reward_margin"])

TRL 1.16 has KTO in its stable API (`trl.KTOTrainer`); `trl.experimental.kto` is a
deprecated alias that warns, so this task imports from `trl`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ftbench.core.measures import Metric
from ftbench.tasks.lm import PairTask, checked_rows
from ftbench.tasks.preference import Dpo, reference_model

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict

    from ftbench.core.spec import CaseSpec

# TRL's eval metric names -> ours (no slashes: they become file names and columns).
KTO_NAMES = {
    "eval_rewards/margins": "eval_reward_margin",
    "eval_rewards/chosen": "eval_reward_chosen",
    "eval_rewards/rejected": "eval_reward_rejected",
}


def _dpo_metric(name: str) -> Metric:
    # A metric name shared between tasks has one definition (the first task's wins in
    # `known_metrics`), so the margin is DPO's own, not a copy that could drift from it.
    return next(m for m in Dpo.metrics if m.name == name)


class Kto(PairTask):
    name = "kto"
    title = "preference pairs, unpaired: GSM8K correct vs wrong (or hh-rlhf)"
    trainer_name = "trl.KTOTrainer"
    # `columns` are PairTask's: prompt, chosen, rejected, as in your own files for `dpo`.

    # One row per sample: KTO's batches hold unpaired rows, not chosen+rejected pairs. Its KL
    # pass and the reference's run without gradients, which the token counter leaves out.
    rows_per_sample = 1
    metrics = (
        _dpo_metric("eval_reward_margin"),
        Metric("eval_reward_chosen", "higher", k=3.0, min_tolerance=0.05, label="chosen reward"),
        Metric("eval_reward_rejected", "lower", k=3.0, min_tolerance=0.05, label="rejected reward"),
    )
    beta = Dpo.beta  # TRL's default; the same as DPO's, so the rewards are on one scale

    def case_problem(self, spec: CaseSpec) -> str | None:
        # KTO's KL estimate pairs each prompt with a batch neighbour's completion; TRL refuses
        # a batch of one only after the data and the model are loaded.
        if spec.per_device_batch_size < 2:
            return (
                f"task {self.name} needs at least 2 rows a batch per process (its KL term pairs "
                f"rows within a batch); the case has {spec.per_device_batch_size}"
            )
        return None

    def encode(
        self,
        data: DatasetDict,
        tokenizer: Any,
        *,
        padding: str,
        max_length: int,
        eval_samples: int | None = None,
    ) -> DatasetDict:
        """The pairs checked as DPO's are (evaluation on the first `eval_samples` pairs, so on
        DPO's held-out prompts), then each pair as two unpaired rows."""
        pairs = super().encode(
            data, tokenizer, padding=padding, max_length=max_length, eval_samples=eval_samples
        )
        rows = {split: unpair(pairs[split]) for split in pairs}
        # A pair dropped for want of room is two rows KTO would have trained on.
        return checked_rows()(rows, {split: 2 * n for split, n in pairs.dropped.items()})

    def config_class(self) -> Any:
        from trl import KTOConfig

        return KTOConfig

    def config_arguments(self, spec: CaseSpec) -> dict[str, Any]:
        # KTOConfig's default, said outright: TRL builds each row's KL completion from its
        # neighbour in dataset order, so the sampler must not shuffle or group rows.
        return {
            **super().config_arguments(spec),
            "beta": self.beta,
            "train_sampling_strategy": "sequential",
        }

    def trainer_class(self) -> Any:
        from trl import KTOTrainer

        return KTOTrainer

    def trainer_arguments(self, spec: CaseSpec, model: Any) -> dict[str, Any]:
        return {"ref_model": reference_model(model, spec.method)}

    def quality(self, eval_metrics: dict[str, Any]) -> dict[str, float | None]:
        return {ours: eval_metrics.get(theirs) for theirs, ours in KTO_NAMES.items()}


def unpair(pairs: Dataset) -> Dataset:
    """Each pair as two rows (prompt, completion, label), in two passes over the pairs whose
    labels alternate: chosen 1, rejected 2, chosen 3, ... then rejected 1, chosen 2, ...

    Why this order: KTO's sampler is sequential and TRL gives each row, as its KL sample, the
    previous row's completion within a batch. A pair's two rows side by side would make that
    "mismatched" sample a matched one, and a batch of one label has no margin to report.
    """
    from datasets import Dataset

    source = pairs.to_list()
    rows = []
    for turn in (0, 1):
        for index, pair in enumerate(source):
            desirable = (index + turn) % 2 == 0
            completion = pair["chosen"] if desirable else pair["rejected"]
            rows.append({"prompt": pair["prompt"], "completion": completion, "label": desirable})
    return Dataset.from_list(rows)
