"""Data for the TRL tasks: GSM8K, GSM8K preference pairs, hh-rlhf, or the user's own files.

    from ftbench.stack.rows import load_sft_rows, load_preference_rows, drop_rows_without_room
    rows = load_sft_rows(DataSource(data_dir="../shared/data"))       # prompt / completion
    pairs = load_preference_rows(DataSource(data_dir="../shared/data"))  # prompt/chosen/rejected

Rows are conversational (lists of chat messages), so TRL applies the model's chat template.
Splits are by question, never by pair, so no question is in both training and evaluation.
A row whose prompt leaves no room for its completion under `max_length` is dropped and
counted before training, never trained on (ORPO's loss goes NaN on empty completions).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftbench.core.errors import DataError
from ftbench.env.hub import hub_offline_reason, offline_when_unreachable
from ftbench.stack.data import checked_split_files, read_split

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict

    from ftbench.stack.data import DataSource

GSM8K_HUB = ("openai/gsm8k", "main")
HH_RLHF_HUB = ("Anthropic/hh-rlhf", "harmless-base")
GSM8K_SOLVERS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")
EVAL_SHARE = 10  # one question in EVAL_SHARE goes to evaluation (by a hash of its text)
MIN_COMPLETION_TOKENS = 16  # a completion cut shorter than this teaches nothing; drop the row
TURN = re.compile(r"\n\n(Human|Assistant): ")
DATA_HELP = (
    "Point --ftb-data-dir at the folder holding gsm8k/ and hh-rlhf/ (for example ../shared/data), "
    "or give your own files with --ftb-train-file and --ftb-validation-file (json, jsonl, csv or "
    "parquet) and the columns with --ftb-prompt-column, --ftb-completion-column (sft; for grpo "
    "the reference answer) or --ftb-chosen-column, --ftb-rejected-column (dpo, reward, cpo, "
    "orpo)."
)


# -- where the files are -------------------------------------------------------------------------


def data_folder(source: DataSource, name: str) -> Path | None:
    """`DIR/name`, or DIR itself when it is that folder; None without a data directory."""
    if not source.data_dir:
        return None
    root = Path(source.data_dir).expanduser()
    for candidate in (root / name, root):
        if candidate.name == name and candidate.is_dir():
            return candidate
    raise DataError(f"--ftb-data-dir {root}: no {name}/ folder there. {DATA_HELP}")


def question_split(text: str) -> str:
    """'validation' for one question in EVAL_SHARE, else 'train': stable across runs."""
    digest = hashlib.sha256(text.strip().encode("utf-8")).digest()
    return "validation" if digest[0] % EVAL_SHARE == 0 else "train"


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    if not path.is_file():
        raise DataError(f"{path}: file not found. {DATA_HELP}")
    rows = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {number} is not JSON ({exc.msg})") from None
    if not rows:
        raise DataError(f"{path}: the file is empty")
    return rows


def default_files(source: DataSource, dataset: str) -> list[Path]:
    """The shared data's files behind a default dataset, for their sha256 in the record."""
    if not source.data_dir:
        return []
    names = {
        "gsm8k": ("gsm8k", ("train.jsonl", "test.jsonl")),
        "gsm8k-pairs": ("gsm8k", ("example_model_solutions.jsonl",)),
        "hh-rlhf": ("hh-rlhf", ("harmless-base/test.jsonl.gz",)),
    }
    folder, files = names[dataset]
    root = data_folder(source, folder)
    return [root / f for f in files if root is not None and (root / f).is_file()]


# -- SFT: prompt -> completion -------------------------------------------------------------------


def load_sft_rows(source: DataSource) -> DatasetDict:
    """GSM8K (question -> worked solution), or the user's prompt/completion files."""
    return _gsm8k_or_files(source, _sft_row)


def _gsm8k_or_files(source: DataSource, make: Any) -> DatasetDict:
    """The user's prompt/completion files, or GSM8K's train and test (question, answer), each
    row made by `make(row, prompt column, completion column, where, index)`."""
    if source.own_data:
        return _user_files(source, (source.prompt_column, source.completion_column), make)
    folder = data_folder(source, "gsm8k")
    if folder is not None:
        splits = {
            "train": read_jsonl(folder / "train.jsonl"),
            "validation": read_jsonl(folder / "test.jsonl"),
        }
        where = str(folder)
    else:
        splits, where = _hub_rows(*GSM8K_HUB, {"train": "train", "validation": "test"}), "the Hub"
    rows = {
        split: [make(r, "question", "answer", f"{where} [{split}]", i) for i, r in enumerate(v)]
        for split, v in splits.items()
    }
    return _datasets(rows)


def _sft_row(row: dict, prompt: str, completion: str, where: str, index: int) -> dict[str, Any]:
    _require(row, (prompt, completion), where, index)
    return {"prompt": user(row[prompt]), "completion": assistant(row[completion])}


# -- online RL: prompt, and the answer the rewards check -------------------------------------------


# GRPO's prompt asks for GSM8K's own answer line, which its rewards read (tasks.rewards).
INSTRUCTION = (
    "Think step by step, briefly. Then give the final answer on its own last line as "
    "'#### <number>'."
)


def number(text: str) -> float | None:
    """`1,234.50` -> 1234.5; None for anything that isn't a number."""
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def reference_answer(solution: str) -> str:
    """The number after GSM8K's `####` (or `A:` in its model-solution file); a text with
    neither is taken to be the answer itself."""
    for marker in ("####", "A:"):
        if marker in solution:
            return solution.rsplit(marker, 1)[1].strip().replace(",", "")
    return solution.strip()


def load_rl_prompts(source: DataSource) -> DatasetDict:
    """GSM8K's questions (train and test) with the reference answer, the number after `####`,
    or the user's prompt/answer files (the completion column holds the answer or a solution
    ending in `#### <number>`). The prompt asks for the answer on a last line `#### <number>`."""
    return _gsm8k_or_files(source, _rl_row)


def _rl_row(row: dict, prompt: str, answer: str, where: str, index: int) -> dict[str, Any]:
    _require(row, (prompt, answer), where, index)
    text = row[answer].strip()
    reference = reference_answer(text)
    if number(reference) is None:
        raise DataError(
            f"{where}: row {index + 1}: column {answer!r} holds no number to check answers "
            f"against ({text[-60:]!r}); give the answer, or a solution ending in '#### <number>'"
        )
    return {"prompt": user(f"{row[prompt].strip()}\n\n{INSTRUCTION}"), "answer": reference}


# -- preference pairs: prompt, chosen, rejected --------------------------------------------------


def load_preference_rows(source: DataSource) -> DatasetDict:
    """GSM8K correct-vs-wrong solutions, hh-rlhf harmless-base, or the user's pair files."""
    if source.own_data:
        columns = (source.prompt_column, source.chosen_column, source.rejected_column)
        return _user_files(source, columns, _preference_row)
    if source.preference_data == "hh-rlhf":
        return _datasets(_hh_rlhf_rows(source))
    if source.preference_data != "gsm8k":
        raise DataError(
            f"unknown preference data {source.preference_data!r}; choose gsm8k or hh-rlhf"
        )
    folder = data_folder(source, "gsm8k")
    if folder is None:
        raise DataError(
            "GSM8K's model solutions (example_model_solutions.jsonl, the pairs' source) are not "
            f"on the Hub. {DATA_HELP}"
        )
    return _datasets(gsm8k_pairs(read_jsonl(folder / "example_model_solutions.jsonl")))


def gsm8k_pairs(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """For each question a model got wrong: GSM8K's own worked solution (`ground_truth`, in the
    models' format, ending `A: <number>`) chosen over the first wrong model solution.

    Measured first with a correct *model* solution chosen instead: 16 DPO steps of 2 pairs
    then moved held-out reward accuracy to 0.59 for one seed and 0.41 for the next; the pairs
    differ too subtly for a CPU budget of steps to learn anything stable.
    """
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "validation": []}
    for row in rows:
        solutions = [row[k] for k in GSM8K_SOLVERS if isinstance(row.get(k), dict)]
        correct = [s["solution"] for s in solutions if s.get("is_correct")]
        right = [row["ground_truth"]] if row.get("ground_truth") else correct
        wrong = [s["solution"] for s in solutions if not s.get("is_correct")]
        if right and wrong:
            splits[question_split(row["question"])].append(
                {
                    "prompt": user(row["question"]),
                    "chosen": assistant(right[0].strip()),
                    "rejected": assistant(wrong[0].strip()),
                }
            )
    return splits


def dialogue(text: str) -> list[dict[str, str]]:
    """hh-rlhf's `\\n\\nHuman: ...\\n\\nAssistant: ...` as chat messages."""
    parts = TURN.split(text)
    if len(parts) < 3 or parts[0].strip():
        return []
    return [
        {"role": "user" if role == "Human" else "assistant", "content": content.strip()}
        for role, content in zip(parts[1::2], parts[2::2], strict=True)
    ]


def hh_rlhf_pair(chosen: str, rejected: str) -> dict[str, Any] | None:
    """The shared prompt (every turn but the last) and the two last answers; None if malformed."""
    a, b = dialogue(chosen), dialogue(rejected)
    if not a or not b or a[:-1] != b[:-1] or a[-1]["role"] != "assistant":
        return None
    if b[-1]["role"] != "assistant" or not a[-1]["content"] or not b[-1]["content"]:
        return None
    return {"prompt": a[:-1], "chosen": [a[-1]], "rejected": [b[-1]]}


def _hh_rlhf_rows(source: DataSource) -> dict[str, list[dict[str, Any]]]:
    folder = data_folder(source, "hh-rlhf")
    if folder is not None:
        path = folder / "harmless-base" / "test.jsonl.gz"
        raw = read_jsonl(path if path.is_file() else folder / "test.jsonl.gz")
    else:
        raw = _hub_rows(*HH_RLHF_HUB, {"test": "test"})["test"]
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "validation": []}
    for row in raw:
        pair = hh_rlhf_pair(row.get("chosen", ""), row.get("rejected", ""))
        if pair is not None:
            splits[question_split(pair["prompt"][0]["content"])].append(pair)
    return splits


def _preference_row(
    row: dict, prompt: str, chosen: str, rejected: str, where: str, index: int
) -> dict[str, Any]:
    _require(row, (prompt, chosen, rejected), where, index)
    return {
        "prompt": user(row[prompt]),
        "chosen": assistant(row[chosen]),
        "rejected": assistant(row[rejected]),
    }


# -- shared steps --------------------------------------------------------------------------------


def _user_files(source: DataSource, columns: tuple[str, ...], make: Any) -> DatasetDict:
    rows = {}
    for split, path in checked_split_files(source).items():
        if split == "test":
            continue
        table = read_split(source, split, [])
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise DataError(
                f"{path}: missing column(s) {missing}; the file has {table.column_names}. "
                "Name yours with --ftb-prompt-column, --ftb-completion-column (sft; grpo: the "
                "answer) or --ftb-chosen-column, --ftb-rejected-column (dpo, reward, cpo, orpo)."
            )
        rows[split] = [make(r, *columns, str(path), i) for i, r in enumerate(table)]
    return _datasets(rows)


def _require(row: dict, columns: tuple[str, ...], where: str, index: int) -> None:
    for column in columns:
        value = row.get(column)
        if not isinstance(value, str) or not value.strip():
            what = "is empty" if isinstance(value, str) or value is None else "is not text"
            raise DataError(f"{where}: row {index + 1}: column {column!r} {what}")


def _hub_rows(name: str, config: str, splits: dict[str, str]) -> dict[str, list[dict]]:
    from datasets import load_dataset

    reason = hub_offline_reason()
    try:
        with offline_when_unreachable():
            loaded = load_dataset(name, config if name != HH_RLHF_HUB[0] else None, data_dir=None)
    except Exception as exc:
        why = reason or f"loading it failed: {type(exc).__name__}: {exc}"
        raise DataError(f"No data: the Hub's {name} can't be used ({why}). {DATA_HELP}") from None
    return {ours: list(loaded[theirs]) for ours, theirs in splits.items()}


def _datasets(rows: dict[str, list[dict[str, Any]]]) -> DatasetDict:
    from datasets import Dataset, DatasetDict

    for split in ("train", "validation"):
        if not rows.get(split):
            raise DataError(f"the {split} split is empty")
    return DatasetDict({split: Dataset.from_list(rows[split]) for split in rows})


def drop_rows_without_room(
    data: Dataset,
    tokenizer: Any,
    max_length: int,
    completions: tuple[str, ...],
    whole: bool = False,
) -> tuple[Dataset, int]:
    """Drop rows whose templated prompt leaves under MIN_COMPLETION_TOKENS of room for any of
    their completions under `max_length` (with `whole`: rows that don't fit whole); return the
    rest and how many were dropped."""
    room = max_length - MIN_COMPLETION_TOKENS

    def length(messages: list[dict[str, str]], generation_prompt: bool) -> int:
        ids = tokenizer.apply_chat_template(
            messages, tokenize=True, add_generation_prompt=generation_prompt
        )
        return len(ids["input_ids"] if hasattr(ids, "keys") else ids)  # a BatchEncoding

    def fits(row: dict[str, Any]) -> bool:
        if not all(row[c][0]["content"].strip() for c in completions):
            return False
        if whole:
            return all(length(row["prompt"] + row[c], False) <= max_length for c in completions)
        return length(row["prompt"], True) <= room

    kept = data.filter(fits, desc=f"Dropping rows that don't fit in {max_length} tokens")
    return kept, len(data) - len(kept)


def limit(data: Dataset, rows: int | None) -> Dataset:
    """The first `rows` rows (all when None): evaluation on a CPU budget."""
    return data if rows is None or rows >= len(data) else data.select(range(rows))
