"""GRPO (online RL) on a tiny Llama, its reward functions, and CPO and ORPO beside DPO."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from ftbench.core.errors import DataError, NoLearningSignalError, RewardFunctionError
from ftbench.core.spec import CaseSpec, Training
from ftbench.measure.runner import run
from ftbench.stack.data import DataSource
from ftbench.tasks.rewards import answer_format, correct_answer, final_answer, reference_answer

# 2 prompts x 2 completions a step, 6 tokens each: seconds on a tiny model.
TINY_RL = Training(
    max_steps=3,
    batch_size=4,
    eval_batch_size=4,
    learning_rate=1e-3,
    timing_warmup_steps=1,
    eval_samples=4,
    evaluate_untrained=True,
    max_completion_length=6,
    num_generations=2,
)


def grpo(checkpoint: Path, **training) -> CaseSpec:
    return CaseSpec(
        "grpo", str(checkpoint), "padded", task="grpo", max_length=128,
        training=replace(TINY_RL, **training),
    )  # fmt: skip


def length_reward(completions, **_):
    """Varies within a group whenever the sampled lengths differ."""
    return [float(len(c[-1]["content"].split())) for c in completions]


@pytest.fixture
def rewards(monkeypatch):
    """Swap the reward functions the task uses: a random tiny model never writes '####'."""

    def use(*functions):
        monkeypatch.setattr("ftbench.tasks.rewards.REWARDS", functions)

    return use


# -- reward functions ------------------------------------------------------------------------


def test_the_answer_is_the_number_after_the_last_answer_line() -> None:
    assert final_answer("3 + 4 = 7\n#### 7") == 7.0
    assert final_answer("#### 1,234.5\nmore\n#### $12") == 12.0
    assert final_answer("the answer is 7") is None
    assert reference_answer("she has 5 - 2 = 3 apples\n#### 3") == "3"
    assert reference_answer("so 40 + 2 = 42.\nA: 42") == "42"


def test_correctness_and_format_rewards_read_the_same_line() -> None:
    completions = ["so 7\n#### 7", "#### 7\nand then more", "7", [{"content": "x\n#### 8"}]]
    assert correct_answer(completions, answer=["7", "7", "7", "7"]) == [1.0, 1.0, 0.0, 0.0]
    assert answer_format(completions) == [1.0, 0.5, 0.0, 1.0]


# -- GRPO end to end ---------------------------------------------------------------------------


def test_grpo_splits_generation_from_the_optimizer_step(tiny_llama, chat_data, rewards) -> None:
    rewards(length_reward)
    result = run(grpo(tiny_llama), DataSource(data_dir=str(chat_data)))

    rollout = result.rollout
    assert rollout["timed_steps"] == 2
    assert rollout["generation_seconds"] > 0
    assert rollout["optimizer_seconds"] > 0
    assert 0 < rollout["generation_share"] < 1
    assert rollout["completion_tokens"] <= 2 * 4 * 6  # 2 timed steps, 4 completions, 6 tokens
    assert result.throughput["generation_tokens_per_second"] > 0
    assert result.throughput["optimizer_tokens_per_second"] > 0
    probe = result.machine["probe"]["score"]  # each rate also relative to the device probe
    assert result.throughput["generation_tokens_per_probe"] == pytest.approx(
        result.throughput["generation_tokens_per_second"] / probe
    )
    assert [s["step"] for s in rollout["steps"]] == [1, 2, 3]
    before, after = result.metrics["untrained_eval_reward"], result.metrics["eval_reward"]
    assert result.metrics["eval_reward_gain"] == pytest.approx(after - before)


def test_the_untrained_evaluation_leaves_grpo_s_training_as_it_was(
    tiny_llama, chat_data, rewards
) -> None:
    """Evaluating first samples completions too; the random state is put back, so a job may
    leave the untrained evaluation out (the smoke's do, for CI's time) and train the same."""
    rewards(length_reward)
    source = DataSource(data_dir=str(chat_data))
    with_it = run(grpo(tiny_llama), source)
    without = run(grpo(tiny_llama, evaluate_untrained=False), source)
    assert without.metrics.get("untrained_eval_reward") is None
    for name in ("train_loss", "eval_reward"):
        assert without.metrics[name] == with_it.metrics[name]
    assert without.rollout["steps"] == with_it.rollout["steps"]  # rewards, lengths, losses
    assert without.rollout["completion_tokens"] == with_it.rollout["completion_tokens"]


def test_rewards_that_never_vary_fail_the_case_with_the_reason(
    tiny_llama, chat_data, rewards
) -> None:
    rewards(lambda completions, **_: [0.0] * len(completions))
    with pytest.raises(NoLearningSignalError, match=r"grpo\[tiny-llama.*same reward"):
        run(grpo(tiny_llama), DataSource(data_dir=str(chat_data)))


def test_a_reward_function_that_raises_names_the_case_and_function(
    tiny_llama, chat_data, rewards
) -> None:
    def broken(completions, **_):
        raise KeyError("score")

    rewards(broken)
    with pytest.raises(RewardFunctionError, match=r"grpo\[tiny-llama.*'broken' raised KeyError"):
        run(grpo(tiny_llama), DataSource(data_dir=str(chat_data)))


def test_a_reward_function_with_too_few_values_is_refused(tiny_llama, chat_data, rewards) -> None:
    def short(completions, **_):
        return [1.0]

    rewards(short)
    with pytest.raises(RewardFunctionError, match=r"returned 1 values for 4 completions"):
        run(grpo(tiny_llama), DataSource(data_dir=str(chat_data)))


def test_an_answer_without_a_number_names_its_row(tmp_path) -> None:
    from ftbench.stack.rows import load_rl_prompts

    rows = [{"question": "how many", "answer": "#### 4"}, {"question": "why", "answer": "so"}]
    for name in ("train.jsonl", "dev.jsonl"):
        (tmp_path / name).write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    source = DataSource(
        train_file=str(tmp_path / "train.jsonl"),
        validation_file=str(tmp_path / "dev.jsonl"),
        prompt_column="question",
        completion_column="answer",
    )
    with pytest.raises(DataError, match=r"train.jsonl: row 2: column 'answer' holds no number"):
        load_rl_prompts(source)


# -- CPO and ORPO ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "own"), [("cpo", "eval_nll_loss"), ("orpo", "eval_log_odds_ratio")]
)
def test_cpo_and_orpo_train_without_a_reference_model(tiny_llama, chat_data, task, own) -> None:
    spec = CaseSpec(
        task, str(tiny_llama), "padded", task=task, max_length=64,
        training=replace(TINY_RL, batch_size=2, max_completion_length=None, num_generations=None),
    )  # fmt: skip
    result = run(spec, DataSource(data_dir=str(chat_data)))

    assert result.throughput["timed_samples"] == 2 * 2  # pairs: 2 timed steps of 2
    for name in ("eval_reward_accuracy", "eval_reward_margin", own, f"untrained_{own}"):
        assert result.metrics[name] is not None, name


def test_an_experimental_trainer_trl_lacks_is_a_skip_reason(monkeypatch) -> None:
    import importlib.util

    from ftbench.tasks import get_task

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "trl.experimental.orpo" else real(name, *a),
    )
    assert "needs trl.experimental.orpo" in get_task("orpo").problem()
    assert get_task("cpo").problem() is None
