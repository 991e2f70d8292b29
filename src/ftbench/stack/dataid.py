"""What data a number was measured on, so a baseline is only compared with runs on the same.

    from ftbench.stack.dataid import data_identity, data_difference
    identity = data_identity(source, pairs)        # a DataSource and the DatasetDict it loaded
    data_difference(identity, baseline_entry)      # None, or "other data than the baseline's (...)"

An identity names the source (the Hub's id and revision, a GLUE directory, or files), each
file's sha256, and per split its rows and a sha256 of its content (the normalised text pairs
and labels, so the same rows read from TSV or parquet are the same data), and the columns.
Runs are compared on the content of train and validation. `dataset` is "mrpc" when the data is
MRPC (the Hub's glue/mrpc, or rows identical to GLUE's MRPC files): the profiles' accuracy
floors are calibrated on MRPC and are off for anything else.

Other tasks can supply their own identity: any dict with `splits` of `rows` and
`content_sha256`, and a `name`, compares the same way.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftbench.stack.data import GLUE_FILES, HUB_DATASET, glue_dir

if TYPE_CHECKING:
    from datasets import DatasetDict

    from ftbench.stack.data import DataSource

COMPARED_SPLITS = ("train", "validation")  # test labels are private: nothing gates on test
# GLUE's MRPC (train.tsv, dev.tsv) as ftbench normalises it; measured on ../shared/data/glue.
MRPC_SPLITS = {
    "train": {
        "rows": 3667,  # the Hub's train split has 3668
        "content_sha256": "d2f78bc9581fdc9990fa3c0325c6ce82671a98060106a267733547922eae2383",
    },
    "validation": {
        "rows": 408,
        "content_sha256": "d2aee86559e482283169f4463f6ed1fea75634868e484686ad37dd4c3792fa81",
    },
}
# Baselines recorded before identities existed were recorded on MRPC (the committed ones on
# GLUE's files); they are taken as such.
ASSUMED_MRPC = {"name": "MRPC", "dataset": "mrpc", "splits": MRPC_SPLITS, "assumed": True}
SPLIT_NAMES = {"validation": "dev"}
DATASET_NAMES = {"mrpc": "MRPC", "gsm8k": "GSM8K", "gsm8k-pairs": "GSM8K's solution pairs"}


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_sha256(split: Any) -> str:
    """A hash of the rows as ftbench uses them: the two texts and the label, in order."""
    digest = hashlib.sha256()
    columns = [split[name] for name in ("sentence1", "sentence2", "label")]
    for first, second, label in zip(*columns, strict=True):
        digest.update(f"{first}\x1f{second}\x1f{label}\x1e".encode())
    return digest.hexdigest()


def _files(source: DataSource) -> dict[str, str]:
    if source.hub_dataset:
        return {}
    if source.train_file or source.validation_file:
        given = {"train": source.train_file, "validation": source.validation_file}
        return {s: str(p) for s, p in {**given, "test": source.test_file}.items() if p}
    if source.data_dir:
        directory = glue_dir(source.data_dir)
        return {s: str(directory / n) for s, n in GLUE_FILES.items() if (directory / n).is_file()}
    return {}


def _hub_revision(pairs: DatasetDict) -> str | None:
    # datasets caches under .../<config>/<version>/<revision>/: the commit it loaded.
    for split in pairs.values():
        for cache in split.cache_files:
            parts = Path(cache["filename"]).parts
            if len(parts) >= 2:
                return parts[-2]
    return None


def data_identity(source: DataSource, pairs: DatasetDict) -> dict[str, Any]:
    """The identity of `pairs`, loaded from `source`."""
    files = _files(source)
    splits = {
        name: {"rows": len(split), "content_sha256": content_sha256(split)}
        for name, split in pairs.items()
    }
    if files:
        kind = "files" if source.train_file or source.validation_file else "glue_dir"
        origin: dict[str, Any] = {"kind": kind, "description": source.describe()}
    elif source.hub_dataset:
        origin = {"kind": "hub", "id": source.hub_dataset, "config": source.hub_config,
                  "revision": _hub_revision(pairs)}  # fmt: skip
    else:
        origin = {"kind": "hub", "id": "/".join(HUB_DATASET), "revision": _hub_revision(pairs)}
    is_mrpc = (origin["kind"] == "hub" and not source.hub_dataset) or all(
        splits.get(s, {}).get("content_sha256") == MRPC_SPLITS[s]["content_sha256"]
        for s in COMPARED_SPLITS
    )
    return {
        "name": "MRPC" if is_mrpc else Path(files.get("validation", "data")).name,
        "dataset": "mrpc" if is_mrpc else "custom",
        "source": origin,
        "files": {s: {"path": p, "sha256": file_sha256(p)} for s, p in files.items()},
        "splits": splits,
        "text_columns": list(source.text_columns),
        "label_column": source.label_column,
        "labels": pairs["train"].features["label"].names,
    }


def describe(identity: dict[str, Any], split: str = "validation") -> str:
    """`MRPC dev, 408 rows, sha256 1a2b3c4d5e6f…`."""
    stats = identity["splits"].get(split) or {}
    name = SPLIT_NAMES.get(split, split) if identity.get("dataset") == "mrpc" else ""
    text = f"{identity.get('name', 'data')} {name}".strip()
    if "rows" in stats:
        text += f", {stats['rows']:,} rows"
    if stats.get("content_sha256"):
        text += f", sha256 {stats['content_sha256'][:12]}…"
    if identity.get("assumed"):
        text += " (assumed: the baseline predates data identities)"
    return text


def same_data(current: dict[str, Any], baseline: dict[str, Any]) -> bool:
    if current.get("dataset") == baseline.get("dataset") == "mrpc":
        # MRPC from the Hub or from GLUE's files: one task, one dev set of 408 pairs (GLUE's
        # train.tsv reads as one pair fewer than the Hub's train split).
        return True
    return all(
        current["splits"].get(s, {}).get("content_sha256")
        == baseline["splits"].get(s, {}).get("content_sha256")
        for s in COMPARED_SPLITS
    )


def data_difference(current: dict[str, Any] | None, entry: dict[str, Any]) -> str | None:
    """None when `current` is the baseline entry's data; else why they can't be compared."""
    if current is None:  # a result made without an identity (an old record): nothing to check
        return None
    baseline = entry.get("data") or ASSUMED_MRPC
    if same_data(current, baseline):
        return None
    split = next(
        (s for s in ("validation", "train") if not same_data_split(current, baseline, s)),
        "validation",
    )
    return (
        f"other data than the baseline's (baseline: {describe(baseline, split)}; this run: "
        f"{describe(current, split)})"
    )


def same_data_split(current: dict[str, Any], baseline: dict[str, Any], split: str) -> bool:
    now, then = current["splits"].get(split, {}), baseline["splits"].get(split, {})
    return now.get("rows") == then.get("rows") and now.get("content_sha256") == then.get(
        "content_sha256"
    )


def floors_off(identity: dict[str, Any] | None, calibrated_on: str = "mrpc") -> str | None:
    """Why the profile's floors don't apply to this data, or None when they do: a task's floors
    are calibrated on its default data (`calibrated_on`: mrpc, gsm8k, gsm8k-pairs)."""
    if identity is None or identity.get("dataset") in (calibrated_on, None):
        return None
    name = DATASET_NAMES.get(calibrated_on, calibrated_on)
    return f"the data is not {name} ({describe(identity)}): the floors are calibrated on {name}"


def rows_sha256(split: Any) -> str:
    """A hash of a TRL task's rows (chat messages), in order, whatever file they came from."""
    import json

    digest = hashlib.sha256()
    for row in split:
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode() + b"\x1e")
    return digest.hexdigest()


def chat_identity(source: DataSource, data: DatasetDict, dataset: str, files: list[Path]) -> dict:
    """The identity of a TRL task's rows: `dataset` names the default data (gsm8k,
    gsm8k-pairs, hh-rlhf), or "custom" for the user's own files."""
    own = source.own_data
    if own and not source.hub_dataset:
        files = [Path(p) for p in (source.train_file, source.validation_file) if p]
    elif own:
        files = []
    kind = "data_dir" if source.data_dir else "hub"
    if own:
        kind = "hub" if source.hub_dataset else "files"
    return {
        "name": (source.hub_dataset or "own files") if own else dataset,
        "dataset": "custom" if own else dataset,
        "source": {"kind": kind, **({"id": source.hub_dataset} if source.hub_dataset else {})},
        "files": {p.name: {"path": str(p), "sha256": file_sha256(p)} for p in files},
        "splits": {
            name: {"rows": len(split), "content_sha256": rows_sha256(split)}
            for name, split in data.items()
        },
        "columns": {
            "prompt": source.prompt_column,
            "completion": source.completion_column,
            "chosen": source.chosen_column,
            "rejected": source.rejected_column,
        },
    }
