"""Sentence-pair data in the Hub's `glue/mrpc` schema, from the Hub, GLUE TSV files or your files.

    from ftbench.stack.data import DataSource, load_pairs, tokenize_pairs
    pairs = load_pairs(DataSource(data_dir="../shared/data/glue"))
    encoded = tokenize_pairs(pairs, tokenizer, max_length=128, pad_to_max_length=False)

Every source yields splits train/validation/test with columns `sentence1`, `sentence2`, `label`
(a ClassLabel; -1 on unlabelled test rows, as on the Hub) and `idx`. Loading goes through
`datasets.load_dataset` and `Dataset.map`, so repeated runs reuse its on-disk cache.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftbench.core.errors import DataError
from ftbench.env.hub import hub_offline_reason, offline_when_unreachable

if TYPE_CHECKING:
    from datasets import ClassLabel, Dataset, DatasetDict
    from transformers import PreTrainedTokenizerBase

MRPC_LABELS = ("not_equivalent", "equivalent")
SPLITS = ("train", "validation", "test")
# GLUE's own file names and column names (download_glue_data.py's layout).
GLUE_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}
GLUE_TEXT_COLUMNS = ("#1 String", "#2 String")
GLUE_LABEL_COLUMN = "Quality"
HUB_DATASET = ("nyu-mll/glue", "mrpc")

NO_DATA_HELP = (
    "Point ftbench at MRPC on disk with --ftb-data-dir DIR (GLUE's layout: DIR/MRPC/train.tsv, "
    "dev.tsv, test.tsv), or at your own sentence-pair files with --ftb-train-file and "
    "--ftb-validation-file (csv, tsv, json or parquet; see --ftb-text-columns and "
    "--ftb-label-column)."
)


@dataclass(frozen=True)
class DataSource:
    """Where the sentence pairs come from: a GLUE directory, your own files, or else the Hub."""

    data_dir: str | None = None
    train_file: str | None = None
    validation_file: str | None = None
    test_file: str | None = None
    text_columns: tuple[str, str] = ("sentence1", "sentence2")
    label_column: str = "label"
    # The TRL tasks' columns in the user's own files, and which preference pairs to use.
    prompt_column: str = "prompt"
    completion_column: str = "completion"
    chosen_column: str = "chosen"
    rejected_column: str = "rejected"
    preference_data: str = "gsm8k"  # "gsm8k" (correct vs wrong solutions) or "hh-rlhf"
    # A Hub dataset of the user's (a job file's `data.hub`): the *_file fields then name its
    # splits (default train, validation), read with `datasets.load_dataset(id, config)`.
    hub_dataset: str | None = None
    hub_config: str | None = None

    @property
    def own_data(self) -> bool:
        """The user's own data (files or a Hub dataset), not a task's default data."""
        return bool(self.train_file or self.validation_file or self.hub_dataset)

    def split_files(self) -> dict[str, str | None]:
        """Train and validation (and test, if given): file paths, or the Hub dataset's splits."""
        if self.hub_dataset:
            files = {
                "train": self.train_file or "train",
                "validation": self.validation_file or "validation",
            }
        else:
            files = {"train": self.train_file, "validation": self.validation_file}
        return {**files, **({"test": self.test_file} if self.test_file else {})}

    def describe(self) -> str:
        if self.hub_dataset:
            config = f" ({self.hub_config})" if self.hub_config else ""
            return f"the Hub's {self.hub_dataset}{config}"
        if self.train_file or self.validation_file:
            return f"files {self.train_file}, {self.validation_file}"
        if self.data_dir:
            return f"GLUE directory {glue_dir(self.data_dir)}"
        return "the Hub's {}/{}".format(*HUB_DATASET)


def load_pairs(source: DataSource) -> DatasetDict:
    """Load, check and normalise the sentence pairs; raise DataError naming what is wrong."""
    if source.own_data:
        return _load_user_files(source)
    if source.data_dir:
        return _load_glue_dir(glue_dir(source.data_dir))
    return _load_hub()


def glue_dir(data_dir: str | Path) -> Path:
    """Accept DIR/MRPC, DIR (holding MRPC/) and a data root holding glue/MRPC."""
    path = Path(data_dir).expanduser()
    for candidate in (path / "MRPC", path / "glue" / "MRPC"):
        if candidate.is_dir():
            return candidate
    return path


def pair_features(label: ClassLabel | None = None) -> Any:
    from datasets import ClassLabel, Features, Value

    return Features(
        {
            "sentence1": Value("string"),
            "sentence2": Value("string"),
            "label": label or ClassLabel(names=list(MRPC_LABELS)),
            "idx": Value("int32"),
        }
    )


# -- the Hub -------------------------------------------------------------------------------------


def _load_hub() -> DatasetDict:
    from datasets import load_dataset

    reason = hub_offline_reason()
    try:
        # Offline, datasets still finds a copy in its cache; online it downloads one.
        with offline_when_unreachable():
            pairs = load_dataset(*HUB_DATASET)
    except Exception as exc:
        why = reason or f"loading it failed: {type(exc).__name__}: {exc}"
        raise DataError(
            f"No MRPC data: the Hub's {'/'.join(HUB_DATASET)} can't be used ({why}), and no "
            f"local data was given. {NO_DATA_HELP}"
        ) from None
    return _check_splits(pairs, {s: f"Hub {'/'.join(HUB_DATASET)} [{s}]" for s in pairs})


# -- GLUE TSV files ------------------------------------------------------------------------------


def _load_glue_dir(directory: Path) -> DatasetDict:
    from datasets import DatasetDict

    if not directory.is_dir():
        raise DataError(f"--ftb-data-dir: {directory} is not a directory. {NO_DATA_HELP}")
    splits = {}
    for split, name in GLUE_FILES.items():
        path = directory / name
        if not path.is_file():
            if split == "test":  # GLUE keeps test labels private; nothing here needs the split
                continue
            raise DataError(f"{path}: file not found (GLUE's layout needs train.tsv and dev.tsv)")
        label = None if split == "test" else GLUE_LABEL_COLUMN
        raw = read_table(path, [*GLUE_TEXT_COLUMNS, *([label] if label else [])])
        splits[split] = _to_pair_schema(raw, path, GLUE_TEXT_COLUMNS, label, pair_features())
    return _check_splits(
        DatasetDict(splits), {s: str(directory / GLUE_FILES[s]) for s in GLUE_FILES}
    )


# -- the user's own files ------------------------------------------------------------------------


def _load_user_files(source: DataSource) -> DatasetDict:
    from datasets import DatasetDict

    files = checked_split_files(source)
    raw = {}
    for split in files:
        needed = list(source.text_columns)
        if split != "test":
            needed.append(source.label_column)
        raw[split] = read_split(source, split, needed)
    label = _class_label(raw, source.label_column, files)
    splits = {}
    for split, table in raw.items():
        has_label = source.label_column in table.column_names
        splits[split] = _to_pair_schema(
            table,
            Path(files[split]),
            source.text_columns,
            source.label_column if has_label else None,
            pair_features(label),
            unlabelled_ok=split == "test",
        )
    return _check_splits(DatasetDict(splits), files)


def _class_label(raw: dict[str, Dataset], column: str, files: dict[str, str]) -> ClassLabel:
    """Integers 0/1 keep MRPC's names; strings become classes named after themselves."""
    from datasets import ClassLabel

    values = raw["train"].unique(column)
    if all(isinstance(v, float) and v.is_integer() for v in values):  # pandas reads 0/1 as 0.0/1.0
        values = [int(v) for v in values]
    if all(isinstance(v, str) for v in values):
        names = sorted(values)
        if set(names) == set(MRPC_LABELS):
            names = list(MRPC_LABELS)
        return ClassLabel(names=names)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        bad = [v for v in values if v < 0]
        if bad:
            raise DataError(f"{files['train']}: column {column!r} has negative labels {bad[:5]}")
        count = max(values) + 1
        return ClassLabel(names=list(MRPC_LABELS)) if count <= 2 else ClassLabel(num_classes=count)
    kinds = sorted({type(v).__name__ for v in values})
    raise DataError(
        f"{files['train']}: column {column!r} must hold integer or string labels, found {kinds}"
    )


# -- shared steps --------------------------------------------------------------------------------


def checked_split_files(source: DataSource) -> dict[str, str]:
    """The user's splits by name: train and validation go together."""
    files = source.split_files()
    for split, path in files.items():
        if not path:
            raise DataError(
                f"--ftb-{split}-file is missing: train and validation files go together"
            )
    return {split: str(path) for split, path in files.items()}


def read_split(source: DataSource, split: str, needed: list[str]) -> Dataset:
    """One of the user's splits, from a file or from their Hub dataset, with its columns
    checked."""
    where = checked_split_files(source)[split]
    if source.hub_dataset:
        return _read_hub_split(source, where, needed)
    return read_table(Path(where), needed)


def _read_hub_split(source: DataSource, split: str, needed: list[str]) -> Dataset:
    from datasets import load_dataset

    name = source.describe()
    try:
        # Offline, datasets still finds a copy in its cache; online it downloads one.
        with offline_when_unreachable():
            table = load_dataset(source.hub_dataset, source.hub_config, split=split)
    except Exception as exc:
        why = hub_offline_reason() or f"{type(exc).__name__}: {exc}"
        raise DataError(
            f"{name} [{split}] can't be loaded ({why}); give local files instead "
            "(data.train and data.validation in a job file, or --ftb-train-file)"
        ) from None
    _require_columns(Path(f"{source.hub_dataset}[{split}]"), table.column_names, needed)
    return table


def read_table(path: Path, needed: list[str]) -> Dataset:
    """Read one file with `datasets` (cached), after checking it exists and has the columns."""
    from datasets import load_dataset

    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if suffix in (".tsv", ".csv", ".txt"):
        delimiter = "\t" if suffix in (".tsv", ".txt") else ","
        header, has_rows = _read_header(path, delimiter)
        _require_columns(path, header, needed)
        if not has_rows:
            raise DataError(f"{path}: the split is empty (a header but no rows)")
        # GLUE's sentences hold bare double quotes, so CSV quoting must be off for TSV; the BOM
        # that starts GLUE's train/dev files is dropped by utf-8-sig.
        kwargs: dict[str, Any] = {
            "delimiter": delimiter,
            "encoding": "utf-8-sig",
            # A sentence reading "NA" or "null" stays text; only an empty field is missing.
            "keep_default_na": False,
            "na_values": [""],
        }
        if delimiter == "\t":
            kwargs["quoting"] = csv.QUOTE_NONE
        builder = "csv"
    elif suffix in (".json", ".jsonl"):
        builder, kwargs = "json", {}
    elif suffix == ".parquet":
        builder, kwargs = "parquet", {}
    else:
        raise DataError(f"{path}: unknown file type {suffix!r}; use csv, tsv, json or parquet")
    try:
        table = load_dataset(builder, data_files=str(path), split="train", **kwargs)
    except Exception as exc:
        cause = exc.__cause__ or exc
        raise DataError(
            f"{path}: can't be read as {builder}: {type(cause).__name__}: {cause}"
        ) from None
    _require_columns(path, table.column_names, needed)
    for column in needed:
        values = table[column]
        if None in values:
            raise DataError(
                f"{path}: row {values.index(None) + 1} has no value in column {column!r}"
            )
    return table


def _read_header(path: Path, delimiter: str) -> tuple[list[str], bool]:
    """The header's columns, and whether any row follows it.

    With quoting off (TSV), every line must have the header's field count: pandas would
    silently pad a short row with missing values.
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            first = handle.readline().rstrip("\r\n")
            # TSV (GLUE) has no quoting; a CSV header may quote its names.
            header = first.split(delimiter) if delimiter == "\t" else next(csv.reader([first]), [])
            has_rows = False
            for number, line in enumerate(handle, start=2):
                if not line.strip():
                    continue
                has_rows = True
                fields = line.rstrip("\r\n").count(delimiter) + 1
                if delimiter == "\t" and fields != len(header):
                    raise DataError(
                        f"{path}: line {number} has {fields} tab-separated fields, "
                        f"the header has {len(header)}"
                    )
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if header in ([""], []):
        raise DataError(f"{path}: the file is empty (no header line)")
    return header, has_rows


def _require_columns(path: Path, columns: list[str], needed: list[str]) -> None:
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; the file has {columns}. "
            "Choose columns with --ftb-text-columns A,B and --ftb-label-column L."
        )


def _to_pair_schema(
    table: Dataset,
    path: Path,
    text_columns: tuple[str, str] | list[str],
    label_column: str | None,
    features: Any,
    unlabelled_ok: bool = False,
) -> Dataset:
    if len(table) == 0:
        raise DataError(f"{path}: the split is empty (a header but no rows)")
    label_feature = features["label"]
    if label_column is not None:
        _check_labels(table, path, label_column, label_feature, unlabelled_ok)
    first, second = text_columns

    def to_pairs(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        if label_column is None:
            labels = [-1] * len(indices)
        else:
            labels = [_label_id(v, label_feature) for v in batch[label_column]]
        return {
            "sentence1": batch[first],
            "sentence2": batch[second],
            "label": labels,
            "idx": indices,
        }

    return table.map(
        to_pairs,
        batched=True,
        with_indices=True,
        remove_columns=table.column_names,
        features=features,
        desc=f"Normalising {path.name}",
    )


def _label_id(value: Any, feature: ClassLabel) -> int:
    if value is None:  # an unlabelled test row
        return -1
    return feature.str2int(value) if isinstance(value, str) else int(value)


def _is_label(value: Any, allowed: set[Any]) -> bool:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value in allowed


def _check_labels(
    table: Dataset, path: Path, column: str, feature: ClassLabel, unlabelled_ok: bool = False
) -> None:
    allowed: set[Any] = set(range(feature.num_classes)) | set(feature.names)
    if unlabelled_ok:  # test rows: -1 or blank, as the Hub's MRPC test split has
        allowed |= {-1, None}
    for row, value in enumerate(table[column]):
        if not _is_label(value, allowed):
            raise DataError(
                f"{path}: row {row + 1} has label {value!r} in column {column!r}, outside the "
                f"class set {feature.names} (ids 0..{feature.num_classes - 1})"
            )


def _check_splits(pairs: DatasetDict, where: dict[str, Any]) -> DatasetDict:
    for split in ("train", "validation"):
        if split not in pairs:
            raise DataError(f"{where.get(split, split)}: no {split} split")
        if len(pairs[split]) == 0:
            raise DataError(f"{where.get(split, split)}: the {split} split is empty")
    return pairs


# -- tokenization --------------------------------------------------------------------------------


def tokenize_pairs(
    pairs: DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    *,
    max_length: int = 128,
    pad_to_max_length: bool = False,
) -> DatasetDict:
    """Encode train and validation pairs; static padding pads here, dynamic in the collator.

    `Dataset.map` fingerprints the tokenizer and arguments, so a second call (or a second run)
    with the same ones loads the cached Arrow file instead of tokenizing again.
    """
    from datasets import DatasetDict

    padding = "max_length" if pad_to_max_length else False

    def encode(batch: dict[str, list]) -> Any:
        return tokenizer(
            batch["sentence1"],
            batch["sentence2"],
            truncation=True,
            max_length=max_length,
            padding=padding,
        )

    return DatasetDict(
        {
            split: pairs[split].map(
                encode,
                batched=True,
                remove_columns=["sentence1", "sentence2", "idx"],
                desc=f"Tokenizing {split} ({'max_length' if pad_to_max_length else 'no'} padding)",
            )
            for split in ("train", "validation")
        }
    )
