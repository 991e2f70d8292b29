"""Padding strategies: batch shapes, the sampler choice, exact token accounting, invariance."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftbench.core.errors import ConfigError, MissingAttentionMaskError
from ftbench.stack.data import DataSource, load_pairs, tokenize_pairs
from ftbench.stack.padding import STRATEGIES, PaddingCounter, get_strategy


@pytest.fixture
def parts(glue_dir: Path, tiny_checkpoint: Path):
    from ftbench.stack.checkpoints import load_model, load_tokenizer, resolve_checkpoint

    checkpoint = resolve_checkpoint(str(tiny_checkpoint))
    tokenizer = load_tokenizer(checkpoint)
    pairs = load_pairs(DataSource(data_dir=str(glue_dir)))
    model = load_model(checkpoint, num_labels=2, seed=0)
    return tokenizer, pairs, model


def _batch(strategy_name: str, tokenizer, pairs, rows: int = 8):
    strategy = get_strategy(strategy_name)
    encoded = tokenize_pairs(
        pairs, tokenizer, max_length=64, pad_to_max_length=strategy.pad_to_max_length
    )
    features = [dict(r) for r in encoded["train"].select(range(rows))]
    unpadded = tokenize_pairs(pairs, tokenizer, max_length=64)["train"].select(range(rows))
    lengths = [len(ids) for ids in unpadded["input_ids"]]
    return strategy.collator(tokenizer)(features), lengths


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_batch_shapes_and_hand_counted_tokens(name: str, parts) -> None:
    tokenizer, pairs, model = parts
    batch, lengths = _batch(name, tokenizer, pairs)
    width = {"static": 64, "dynamic-x8": -(-max(lengths) // 8) * 8}.get(name, max(lengths))

    assert list(batch["input_ids"].shape) == [8, width]
    counter = PaddingCounter(model)
    model.train()
    model(**batch)
    model.eval()
    model(**batch)  # evaluation batches are not training tokens
    assert counter.snapshot() == (8, sum(lengths), 8 * width)
    counter.remove()


def test_padded_batches_without_a_mask_stop_training(parts) -> None:
    tokenizer, pairs, model = parts
    batch, lengths = _batch("dynamic", tokenizer, pairs)
    counter = PaddingCounter(model, tokenizer.pad_token_id)
    model.train()
    model(**batch)  # with its mask: counted
    unpadded = {
        k: v[:1, : lengths[0]] if v.dim() == 2 else v[:1]
        for k, v in batch.items()
        if k != "attention_mask"
    }
    model(**unpadded)  # no padding, so nothing is attended to wrongly
    maskless = {k: v for k, v in batch.items() if k != "attention_mask"}
    with pytest.raises(MissingAttentionMaskError, match=r"padding tokens and no attention_mask"):
        model(**maskless)
    model.eval()
    counter.remove()


def test_only_bucketed_groups_by_length() -> None:
    arguments = {name: s.training_arguments() for name, s in STRATEGIES.items()}
    assert arguments["bucketed"] == {"train_sampling_strategy": "group_by_length"}
    assert all(not arguments[n] for n in ("static", "dynamic", "dynamic-x8"))


def test_unknown_strategy_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown padding strategy 'ragged'; choose from static"):
        get_strategy("ragged")


def test_static_and_dynamic_padding_predict_the_same(parts) -> None:
    """Padding must not change a prediction: the attention mask hides every pad token."""
    import tempfile

    from transformers import Trainer, TrainingArguments

    tokenizer, pairs, model = parts
    predictions = {}
    for name in ("static", "dynamic"):
        strategy = get_strategy(name)
        encoded = tokenize_pairs(
            pairs, tokenizer, max_length=64, pad_to_max_length=strategy.pad_to_max_length
        )
        with tempfile.TemporaryDirectory() as out:
            trainer = Trainer(
                model=model,
                args=TrainingArguments(
                    out, use_cpu=True, report_to="none", per_device_eval_batch_size=8
                ),
                data_collator=strategy.collator(tokenizer),
                processing_class=tokenizer,
            )
            predictions[name] = trainer.predict(encoded["validation"]).predictions

    assert (predictions["static"].argmax(-1) == predictions["dynamic"].argmax(-1)).all()
    assert abs(predictions["static"] - predictions["dynamic"]).max() < 1e-4
