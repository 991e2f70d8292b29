"""Loading sentence pairs from GLUE files and users' files, and the errors bad input gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftbench.core.errors import DataError
from ftbench.stack.data import MRPC_LABELS, DataSource, load_pairs, tokenize_pairs


def test_glue_dir_gives_the_hub_schema(glue_dir: Path) -> None:
    pairs = load_pairs(DataSource(data_dir=str(glue_dir)))

    assert set(pairs) == {"train", "validation", "test"}
    assert (len(pairs["train"]), len(pairs["validation"]), len(pairs["test"])) == (48, 24, 8)
    features = pairs["train"].features
    assert list(features) == ["sentence1", "sentence2", "label", "idx"]
    assert features["label"].names == list(MRPC_LABELS)
    assert pairs["train"]["idx"][:3] == [0, 1, 2]
    assert set(pairs["test"]["label"]) == {-1}  # unlabelled, as on the Hub


def test_glue_quotes_and_byte_order_mark_survive(glue_dir: Path) -> None:
    pairs = load_pairs(DataSource(data_dir=str(glue_dir / "MRPC")))  # DIR/MRPC works too
    lines = (glue_dir / "MRPC" / "train.tsv").read_text(encoding="utf-8-sig").splitlines()
    first = lines[1].split("\t")

    assert pairs["train"][0]["sentence1"] == first[3]
    assert pairs["train"][0]["label"] == int(first[0])
    assert any('"quoted"' in s for s in pairs["train"]["sentence2"])


def _rewrite(path: Path, edit) -> None:
    text = path.read_text(encoding="utf-8-sig")
    path.write_text(edit(text), encoding="utf-8")


def test_missing_file_is_named(glue_dir: Path) -> None:
    (glue_dir / "MRPC" / "dev.tsv").unlink()
    with pytest.raises(DataError, match=r"dev\.tsv: file not found"):
        load_pairs(DataSource(data_dir=str(glue_dir)))


def test_missing_column_is_named(glue_dir: Path) -> None:
    _rewrite(glue_dir / "MRPC" / "train.tsv", lambda t: t.replace("Quality", "Label", 1))
    with pytest.raises(DataError, match=r"train\.tsv: missing column\(s\) \['Quality'\]"):
        load_pairs(DataSource(data_dir=str(glue_dir)))


def test_empty_split_is_named(glue_dir: Path) -> None:
    _rewrite(glue_dir / "MRPC" / "dev.tsv", lambda t: t.splitlines(keepends=True)[0])
    with pytest.raises(DataError, match=r"dev\.tsv: the split is empty"):
        load_pairs(DataSource(data_dir=str(glue_dir)))


def test_label_outside_the_class_set_is_named(glue_dir: Path) -> None:
    def plant(text: str) -> str:
        lines = text.splitlines(keepends=True)
        lines[3] = "2" + lines[3][1:]
        return "".join(lines)

    _rewrite(glue_dir / "MRPC" / "train.tsv", plant)
    with pytest.raises(DataError, match=r"train\.tsv: row 3 has label 2 .*outside the class set"):
        load_pairs(DataSource(data_dir=str(glue_dir)))


def test_malformed_row_is_named(glue_dir: Path) -> None:
    _rewrite(glue_dir / "MRPC" / "train.tsv", lambda t: t + "1\t2\t3\tonly four fields\n")
    with pytest.raises(DataError, match=r"train\.tsv: line 50 has 4 tab-separated fields"):
        load_pairs(DataSource(data_dir=str(glue_dir)))


def test_short_csv_row_is_named(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("sentence1,sentence2,label\na,b,1\nc\n")
    (tmp_path / "dev.csv").write_text("sentence1,sentence2,label\na,b,1\n")
    source = DataSource(
        train_file=str(tmp_path / "train.csv"), validation_file=str(tmp_path / "dev.csv")
    )
    with pytest.raises(DataError, match=r"train\.csv: row 2 has no value in column 'sentence2'"):
        load_pairs(source)


def test_missing_directory_says_how_to_point_at_data(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"is not a directory.*--ftb-data-dir DIR"):
        load_pairs(DataSource(data_dir=str(tmp_path / "nowhere")))


def test_no_source_offline_says_how_to_point_at_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    with pytest.raises(DataError, match=r"No MRPC data.*HF_HUB_OFFLINE=1.*--ftb-data-dir"):
        load_pairs(DataSource())


def test_user_csv_with_string_labels(tmp_path: Path) -> None:
    rows = [("a cat", "a dog", "different"), ("a cat", "the cat", "same")] * 4
    for name in ("train.csv", "dev.csv"):
        text = "left,right,verdict\n" + "".join(f"{a},{b},{y}\n" for a, b, y in rows)
        (tmp_path / name).write_text(text)
    source = DataSource(
        train_file=str(tmp_path / "train.csv"),
        validation_file=str(tmp_path / "dev.csv"),
        text_columns=("left", "right"),
        label_column="verdict",
    )
    pairs = load_pairs(source)

    assert pairs["train"].features["label"].names == ["different", "same"]
    assert pairs["train"]["label"][:2] == [0, 1]
    assert pairs["validation"][1] == {
        "sentence1": "a cat",
        "sentence2": "the cat",
        "label": 1,
        "idx": 1,
    }


def test_user_validation_label_unseen_in_train_is_named(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("sentence1,sentence2,label\na,b,yes\nc,d,no\n")
    (tmp_path / "dev.csv").write_text("sentence1,sentence2,label\na,b,maybe\n")
    source = DataSource(
        train_file=str(tmp_path / "train.csv"), validation_file=str(tmp_path / "dev.csv")
    )
    with pytest.raises(DataError, match=r"dev\.csv: row 1 has label 'maybe'"):
        load_pairs(source)


def test_user_json_and_parquet_and_unlabelled_test(tmp_path: Path) -> None:
    import pandas as pd

    rows = [{"sentence1": f"s{i}", "sentence2": f"t{i}", "label": i % 2} for i in range(6)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pd.DataFrame(rows).to_parquet(tmp_path / "dev.parquet")
    test = pd.DataFrame(rows).assign(label=[-1, None, -1, None, -1, -1])  # unlabelled, Hub-style
    test.to_csv(tmp_path / "test.csv", index=False)
    pairs = load_pairs(
        DataSource(
            train_file=str(tmp_path / "train.jsonl"),
            validation_file=str(tmp_path / "dev.parquet"),
            test_file=str(tmp_path / "test.csv"),
        )
    )

    assert pairs["train"].features["label"].names == list(MRPC_LABELS)
    assert pairs["validation"]["label"] == [0, 1, 0, 1, 0, 1]
    assert pairs["test"]["label"] == [-1] * 6


def test_quoted_csv_header(tmp_path: Path) -> None:
    for name in ("train.csv", "dev.csv"):
        (tmp_path / name).write_text('"sentence1","sentence2","label"\n"a, b",c,1\nd,e,0\n')
    source = DataSource(
        train_file=str(tmp_path / "train.csv"), validation_file=str(tmp_path / "dev.csv")
    )
    assert load_pairs(source)["train"][0]["sentence1"] == "a, b"


def test_user_files_need_both_train_and_validation(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="--ftb-validation-file is missing"):
        load_pairs(DataSource(train_file=str(tmp_path / "train.csv")))


def test_static_padding_pads_at_tokenize_time_and_is_cached(
    glue_dir: Path, tiny_checkpoint: Path
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    pairs = load_pairs(DataSource(data_dir=str(glue_dir)))
    static = tokenize_pairs(pairs, tokenizer, max_length=64, pad_to_max_length=True)
    dynamic = tokenize_pairs(pairs, tokenizer, max_length=64)
    again = tokenize_pairs(pairs, tokenizer, max_length=64)

    assert {len(ids) for ids in static["train"]["input_ids"]} == {64}
    assert len({len(ids) for ids in dynamic["train"]["input_ids"]}) > 1
    assert set(dynamic["train"].column_names) == {
        "label",
        "input_ids",
        "token_type_ids",
        "attention_mask",
    }
    # datasets' fingerprint cache: the same tokenizer and arguments reuse the same Arrow file.
    assert again["train"].cache_files == dynamic["train"].cache_files


def test_hf_course_facts_on_the_real_mrpc(shared_glue: Path) -> None:
    """The HF course's MRPC walkthrough: pair lengths, and dynamic padding's batch shape."""
    from transformers import DataCollatorWithPadding

    from ftbench.stack.checkpoints import load_tokenizer, resolve_checkpoint

    tokenizer = load_tokenizer(resolve_checkpoint("minilm-l6"))
    pairs = load_pairs(DataSource(data_dir=str(shared_glue)))
    encoded = tokenize_pairs(pairs, tokenizer)
    first8 = encoded["train"].select(range(8))

    assert [len(ids) for ids in first8["input_ids"]] == [50, 59, 47, 67, 59, 50, 62, 32]
    batch = DataCollatorWithPadding(tokenizer)([dict(row) for row in first8])
    assert list(batch["input_ids"].shape) == [8, 67]
    assert tokenizer("This is the first sentence.", "This is the second one.")["input_ids"] == [
        101, 2023, 2003, 1996, 2034, 6251, 1012, 102, 2023, 2003, 1996, 2117, 2028, 1012, 102,
    ]  # fmt: skip
    assert len(pairs["validation"]) == 408
