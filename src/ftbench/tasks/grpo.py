"""GRPO: online RL with TRL's GRPOTrainer on GSM8K prompts, with rewards a user can read.

Each step the policy samples `num_generations` completions per prompt (transformers'
`generate`, or vLLM colocated on CUDA with `--ftb-vllm`), the rewards in
`ftbench.tasks.rewards` score them (the final `#### <number>` right, and that line present at
the end), and the policy is updated towards the
completions that beat their group's mean. Most of an online-RL step is generation, so the record
splits the timed steps into generation (completion tokens/s) and the rest, the optimizer step
with its loss and reward passes (tokens/s over the tokens trained). Per step it keeps the mean
reward, its spread, the share of groups whose rewards did not vary (they teach nothing) and
the share of completions cut off at the length limit.

Quality is the mean reward on held-out GSM8K test prompts after training, beside the untrained
policy's on the same prompts and the same sampling seed, and their difference (the gain). A run
in which no group's rewards ever varied learned nothing and fails, whatever its numbers.

PPO is not a task: TRL moved PPOTrainer to `trl.experimental` in 1.10 and then removed it;
GRPO, which needs no value model, is TRL's online-RL trainer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ftbench.core.errors import NoLearningSignalError
from ftbench.core.measures import Metric
from ftbench.stack.rows import load_rl_prompts
from ftbench.tasks import rewards
from ftbench.tasks.lm import TrlTask

if TYPE_CHECKING:
    from datasets import DatasetDict

    from ftbench.core.spec import CaseSpec
    from ftbench.stack.data import DataSource

# TRL's evaluation names -> ftbench's.
GRPO_NAMES = {
    "eval_reward": "eval_reward",
    "eval_rewards/correct_answer/mean": "eval_correct",
    "eval_rewards/answer_format/mean": "eval_format",
}


class Grpo(TrlTask):
    name = "grpo"
    title = "GSM8K prompts, the final answer checked"
    trainer_name = "trl.GRPOTrainer"
    paddings = ("padded",)
    columns: ClassVar[dict[str, str]] = {"prompt": "prompt_column", "answer": "completion_column"}
    completions = ()  # generated, not given: max_length bounds the prompt alone
    metrics = (
        Metric("eval_reward", "higher", k=3.0, min_tolerance=0.1, label="reward"),
        # The trained policy's reward minus the untrained one's, on the same prompts and seed.
        Metric("eval_reward_gain", "higher", k=3.0, min_tolerance=0.1, label="gain"),
        Metric("eval_correct", "higher", k=3.0, min_tolerance=0.05, label="correct"),
        Metric("eval_format", "higher", k=3.0, min_tolerance=0.1, label="format"),
        Metric(
            "generation_tokens_per_second",
            "higher",
            relative=0.10,
            label="generated tokens/s",
            section="throughput",
            quality=False,
        ),
        Metric(
            "optimizer_tokens_per_second",
            "higher",
            relative=0.10,
            label="optimizer tokens/s",
            section="throughput",
            quality=False,
        ),
    )
    num_generations = 4  # completions per prompt: a group, whose mean is each one's baseline
    temperature = 0.7  # SmolLM2-135M at TRL's 1.0 samples mostly noise

    def case_problem(self, spec: CaseSpec) -> str | None:
        import importlib.util

        if not spec.training.use_vllm:
            return None
        if spec.device != "cuda":
            return f"--ftb-vllm generates on CUDA only, and this case runs on {spec.device}"
        if importlib.util.find_spec("vllm") is None:
            return "--ftb-vllm: vLLM is not installed (pip install vllm)"
        return None

    def load_data(self, source: DataSource) -> DatasetDict:
        return load_rl_prompts(source)

    def calibrated_on(self, source: DataSource) -> str:
        return "gsm8k"

    def config_class(self) -> Any:
        from trl import GRPOConfig

        return GRPOConfig

    def config_arguments(self, spec: CaseSpec) -> dict[str, Any]:
        arguments = super().config_arguments(spec)
        # GRPOConfig bounds the completion, not the whole row, and tokenizes in the trainer.
        for name in ("max_length", "dataset_num_proc"):
            del arguments[name]
        t = spec.training
        return {
            **arguments,
            "max_completion_length": t.max_completion_length or 128,
            "num_generations": t.num_generations or self.num_generations,
            # Held-out prompts are scored on 2 completions each: more prompts for the same time.
            "num_generations_eval": 2,
            "temperature": self.temperature,
            # transformers' generate everywhere; vLLM, in this process, where asked for
            "use_vllm": t.use_vllm,
            **({"vllm_mode": "colocate"} if t.use_vllm else {}),
            "logging_steps": 1,  # every step's reward statistics reach the record
            "shuffle_dataset": True,
        }

    def trainer_class(self) -> Any:
        from trl import GRPOTrainer

        return GRPOTrainer

    def trainer(self, spec: CaseSpec, *, model: Any, args: Any, tokenizer: Any, data: Any,
                collator: Any, callbacks: list[Any]) -> Any:  # fmt: skip
        from ftbench.tasks.rollout import RolloutClock

        clock = RolloutClock(spec.device, spec.training.timing_warmup_steps)
        trainer = self.trainer_class()(
            model=model,
            reward_funcs=[rewards.checked(f, spec.case_id) for f in rewards.REWARDS],
            args=args,
            train_dataset=data["train"],
            eval_dataset=data["validation"],
            processing_class=tokenizer,
            callbacks=[*callbacks, clock],
        )
        clock.attach(trainer)
        return trainer

    def quality(self, eval_metrics: dict[str, Any]) -> dict[str, float | None]:
        return {ours: eval_metrics.get(theirs) for theirs, ours in GRPO_NAMES.items()}

    def measures(
        self, spec: CaseSpec, trainer: Any, window: dict[str, Any], quality: dict[str, Any],
        untrained: dict[str, Any],
    ) -> dict[str, dict[str, Any]]:  # fmt: skip
        from ftbench.tasks.rollout import RolloutClock

        clock = next(c for c in trainer.callback_handler.callbacks if isinstance(c, RolloutClock))
        rollout = clock.summary(window)
        zero = [s.get("zero_variance_groups") for s in rollout["steps"]]
        if zero and all(z == 1.0 for z in zero):
            group = spec.training.num_generations or self.num_generations
            raise NoLearningSignalError(
                f"{spec.case_id}: in all {len(zero)} steps every group's {group} "
                "completions got the same reward, so every advantage, the loss and the gradient "
                "were 0 and nothing was learned (mean reward "
                f"{rollout['mean_reward']:.3f}, clipped completions "
                f"{rollout['clipped_ratio']:.0%}). Raise --ftb-max-completion-length if answers "
                "are cut off, or check the reward functions."
            )
        before, after = untrained.get("eval_reward"), quality.get("eval_reward")
        gain = after - before if before is not None and after is not None else None
        return {
            "metrics": {"eval_reward_gain": gain},
            "throughput": {
                k: rollout.pop(k)
                for k in ("generation_tokens_per_second", "optimizer_tokens_per_second")
            },
            "rollout": rollout,
        }


TASKS = {"grpo": Grpo()}
