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

    from ftbench.stack.checkpoints import bundled_path

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


CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
MATH_WORDS = [
    "how",
    "many",
    "apples",
    "does",
    "she",
    "have",
    "left",
    "if",
    "he",
    "buys",
    "sells",
    "gives",
    "each",
    "day",
    "costs",
    "dollars",
    "total",
    "the",
    "a",
    "of",
    "and",
    "is",
    "in",
    "to",
    "for",
    "so",
    "=",
    "+",
    "*",
    "/",
    "####",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
    "10",
    "12",
    "18",
    "20",
    "24",
    "26",
    "48",
]


def make_chat_tokenizer() -> object:
    """A word-level tokenizer with a ChatML template, eos as pad: a causal LM's in miniature."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<|im_start|>", "<|im_end|>", "user", "assistant"]
    vocab = {word: i for i, word in enumerate(dict.fromkeys([*specials, *MATH_WORDS]))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="<unk>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        additional_special_tokens=["<|im_start|>"],
    )
    tokenizer.chat_template = CHATML
    return tokenizer


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide random Llama (SmolLM2's architecture) with a ChatML tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM, set_seed

    path = tmp_path_factory.mktemp("checkpoints") / "tiny-llama"
    tokenizer = make_chat_tokenizer()
    set_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    LlamaForCausalLM(config).save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def math_problem(rng: random.Random) -> tuple[str, str, str]:
    """(question, correct worked solution, wrong one) in GSM8K's shape."""
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    filler = " ".join(rng.choices(MATH_WORDS[:20], k=rng.randint(0, 12)))  # lengths differ
    question = f"how many apples does she have left if she has {a + b} and gives {b} {filler}"
    right = f"she has {a + b} - {b} = {a} apples #### {a}"
    wrong = f"she has {a + b} + {b} = {a + 2 * b} apples #### {a + 2 * b}"
    return question, right, wrong


def write_chat_data(root: Path, rows: int = 48) -> Path:
    """The shared data's gsm8k/ and hh-rlhf/ layouts, small and made up."""
    import gzip
    import json

    rng = random.Random(0)
    (root / "gsm8k").mkdir(parents=True, exist_ok=True)
    problems = [math_problem(rng) for _ in range(rows)]
    for name, part in (("train.jsonl", problems[:-12]), ("test.jsonl", problems[-12:])):
        lines = [json.dumps({"question": q, "answer": r}) for q, r, _ in part]
        (root / "gsm8k" / name).write_text("\n".join(lines) + "\n")
    solutions = []
    for q, r, w in problems:
        solvers = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")
        solutions.append(
            {
                "question": q,
                "ground_truth": r,
                **{s: {"is_correct": i % 2 == 0, "solution": r if i % 2 == 0 else w}
                   for i, s in enumerate(solvers)},
            }
        )  # fmt: skip
    (root / "gsm8k" / "example_model_solutions.jsonl").write_text(
        "\n".join(json.dumps(s) for s in solutions) + "\n"
    )
    (root / "hh-rlhf" / "harmless-base").mkdir(parents=True, exist_ok=True)
    pairs = [
        {
            "chosen": f"\n\nHuman: {q}\n\nAssistant: {r}",
            "rejected": f"\n\nHuman: {q}\n\nAssistant: {w}",
        }
        for q, r, w in problems
    ]
    with gzip.open(root / "hh-rlhf" / "harmless-base" / "test.jsonl.gz", "wt") as handle:
        handle.write("\n".join(json.dumps(p) for p in pairs) + "\n")
    return root


@pytest.fixture
def chat_data(tmp_path: Path) -> Path:
    return write_chat_data(tmp_path / "data")
