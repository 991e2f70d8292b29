"""Shared fixtures for the unit tests: a tiny random BERT and GLUE-format files in tmp_path.

    pytest tests/                 # the unit tier, under 3 minutes on 2 CPU cores
    pytest tests/ -m slow         # the slow tier: the throughput gate's timed plants

The tiny model is a config override of a real architecture (BERT), saved as safetensors with
the bundled bert-base-uncased vocabulary, so it loads through the same code as any checkpoint.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SHARED_GLUE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "glue"
TINY_BERT = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 128,
}

# Words for made-up sentence pairs; a pair is "equivalent" when its second sentence reuses the
# first's words, so a model can learn something, though unit tests never rely on it.
WORDS = "the court said on monday that shares of the company rose after a report".split()  # noqa: SIM905


def make_pairs(n: int, seed: int) -> list[tuple[int, str, str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        first = " ".join(rng.choices(WORDS, k=rng.randint(4, 20)))
        label = rng.randint(0, 1)
        if label:
            second = first.replace("the", 'the "quoted"', 1)
        else:
            second = " ".join(rng.choices(WORDS, k=rng.randint(4, 20)))
        rows.append((label, first, second))
    return rows


def write_glue(directory: Path, train: int = 48, dev: int = 24, test: int = 8) -> Path:
    """MRPC in GLUE's layout, with the byte-order mark and bare quotes of the real files."""
    mrpc = directory / "MRPC"
    mrpc.mkdir(parents=True, exist_ok=True)
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    for name, n, seed in (("train.tsv", train, 1), ("dev.tsv", dev, 2)):
        lines = [
            f"{y}\t{i}\t{i + 1}\t{a}\t{b}\n" for i, (y, a, b) in enumerate(make_pairs(n, seed))
        ]
        (mrpc / name).write_text("\ufeff" + header + "".join(lines), encoding="utf-8")
    lines = [f"{i}\t{i}\t{i + 1}\t{a}\t{b}\n" for i, (_, a, b) in enumerate(make_pairs(test, 3))]
    (mrpc / "test.tsv").write_text(
        "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n" + "".join(lines), encoding="utf-8"
    )
    return directory


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # Unit tests never touch the network, whatever the machine can reach.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def glue_dir(tmp_path: Path) -> Path:
    return write_glue(tmp_path / "glue")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide random BERT with the bundled vocabulary, saved as safetensors."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, set_seed

    from ftbench.checkpoints import bundled_path

    path = tmp_path_factory.mktemp("checkpoints") / "tiny-bert"
    set_seed(0)
    model = BertForSequenceClassification(BertConfig(num_labels=2, **TINY_BERT))
    model.save_pretrained(path, safe_serialization=True)
    AutoTokenizer.from_pretrained(bundled_path("minilm-l6")).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def shared_glue() -> Path:
    if not (SHARED_GLUE / "MRPC" / "train.tsv").is_file():
        pytest.skip(f"the real MRPC files are not at {SHARED_GLUE}")
    return SHARED_GLUE
