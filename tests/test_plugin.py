"""The plugin from outside, as users meet it: options, test ids, skips, errors and the summary."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as tree
from pathlib import Path

# Imported before any pytester run: in-process runs drop the modules they import, and numpy and
# pyarrow refuse to be imported twice in one process.
import datasets  # noqa: F401
import pytest
import transformers  # noqa: F401

BENCH = Path(__file__).resolve().parents[1] / "bench" / "test_mrpc.py"


@pytest.fixture
def bench(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester directory holding a copy of the real benchmark module."""
    pytester.makepyfile(test_bench=BENCH.read_text())
    return pytester


def test_loading_the_plugin_imports_no_heavy_library() -> None:
    code = (
        "import sys, ftbench.plugin; "
        "heavy = ('torch', 'transformers', 'datasets', 'pandas'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_options_sit_in_one_group_with_defaults(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(
        [
            "ftbench: fine-tuning benchmarks:",
            "*--ftb-profile=NAME*Profile: smoke*",
            "*--ftb-padding=NAMES*",
            "*--ftb-data-dir=DIR*",
        ]
    )
    assert "Default: 'auto'" in result.stdout.str()


def test_ids_read_like_the_matrix_and_k_selects(bench: pytest.Pytester) -> None:
    result = bench.runpytest_inprocess(
        "--collect-only", "-q", "--ftb-profile", "smoke", "-k", "dynamic and not x8"
    )
    result.stdout.fnmatch_lines(
        ["test_bench.py::test_train_throughput[[]minilm-l6-dynamic-cpu-fp32-full[]]"]
    )
    assert "static" not in result.stdout.str()
    default = bench.runpytest_inprocess("--collect-only", "-q", "--ftb-profile", "smoke")
    default.stdout.fnmatch_lines(
        [
            "test_bench.py::test_finetune[[]minilm-l6-bucketed-cpu-fp32-full[]]",
            "test_bench.py::test_train_throughput[[]minilm-l6-static-cpu-fp32-full[]]",
            "test_bench.py::test_train_throughput[[]minilm-l6-dynamic-x8-cpu-fp32-full[]]",
            "5 tests collected*",
        ]
    )
    assert "-lora]" not in default.stdout.str()  # LoRA's fine-tune is on request
    lora = bench.runpytest_inprocess(
        "--collect-only", "-q", "--ftb-profile", "smoke", "--ftb-method", "full,lora",
        "-k", "finetune",
    )  # fmt: skip
    lora.stdout.fnmatch_lines(
        [
            "test_bench.py::test_finetune[[]minilm-l6-bucketed-cpu-fp32-full[]]",
            "test_bench.py::test_finetune[[]minilm-l6-bucketed-cpu-fp32-lora[]]",
            "2/10 tests collected (8 deselected)*",
        ]
    )


def test_cases_run_record_skip_and_summarise(
    bench: pytest.Pytester, tiny_checkpoint: Path, glue_dir: Path, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    result = bench.runpytest_subprocess(
        "-v",
        "-rs",
        f"--ftb-checkpoint={tiny_checkpoint}",
        f"--ftb-data-dir={glue_dir}",
        f"--ftb-results-dir={results}",
        "--ftb-profile=smoke",
        "--ftb-job=throughput",
        "--ftb-padding=static,dynamic",
        "--ftb-device=cpu,cuda",
        "--ftb-precision=fp32,fp16",
        "--ftb-method=full,lora,qlora",
        "--ftb-max-steps=5",
        "--ftb-batch-size=8",
        "--ftb-max-length=64",
        f"--junitxml={tmp_path / 'junit.xml'}",
    )
    # 2 paddings x 2 devices x 2 precisions x 3 methods: 4 run on cpu-fp32 (full and lora, and
    # qlora where bitsandbytes can train on this CPU); the rest are skipped for cuda, fp16 on
    # cpu, or qlora where it can't run; and the unselected job.
    from ftbench.stack.methods import method_problem

    qlora = method_problem("qlora", "cpu")
    result.assert_outcomes(passed=4 if qlora else 6, skipped=21 if qlora else 19)
    result.stdout.fnmatch_lines(
        [
            "[[]ftbench[]] throughput[[]tiny-bert-dynamic-cpu-fp32-full[]]: step 5/5*samples/s",
            "*test_train_throughput[[]tiny-bert-dynamic-cpu-fp32-full[]] PASSED*",
        ]
    )
    for case in ("static-cpu-fp32-full", "static-cpu-fp32-lora", "dynamic-cpu-fp32-lora"):
        result.stdout.fnmatch_lines([f"*test_train_throughput[[]tiny-bert-{case}[]] PASSED*"])
    result.stdout.fnmatch_lines(
        [
            "*ftbench results*",
            "*throughput[[]tiny-bert-static-cpu-fp32-full[]]*passed*no baseline*",
            "records: *",
        ]
    )
    text = result.stdout.str()
    assert "device cuda: no CUDA device" in text
    assert "fp16 on cpu: fp16 mixed precision needs CUDA or MPS" in text
    assert "job 'finetune' is not selected" in text
    if qlora:
        assert f"qlora on cpu: {qlora}" in text
    assert "padding strategies" in text
    assert "lora" in text.split("padding strategies")[1]
    records = sorted(p.name for p in results.glob("runs/*/*.json"))
    methods = ("full", "lora") if qlora else ("full", "lora", "qlora")
    assert records == sorted(
        f"throughput-tiny-bert-{padding}-cpu-fp32-{method}-seed42.json"
        for padding in ("static", "dynamic")
        for method in methods
    )
    # One cost curve per method, measured once and shared by that method's paddings.
    curves = {}
    for path in results.glob("runs/*/*.json"):
        record = json.loads(path.read_text())
        curves.setdefault(record["axes"]["method"], []).append(record["cost_curve"])
    for method in methods:
        static, dynamic = curves[method]
        assert static == dynamic
        assert static["lengths"] == [16, 32, 64]
        assert set(static["coefficients"]) == {"a", "b", "c"}
    # The metrics reach the JUnit XML as properties of each test.
    case = (
        tree.parse(tmp_path / "junit.xml")
        .getroot()
        .find(".//testcase[@name='test_train_throughput[tiny-bert-dynamic-cpu-fp32-full]']")
    )
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties["ftb.case_id"] == "throughput[tiny-bert-dynamic-cpu-fp32-full]"
    assert float(properties["ftb.train_samples_per_second"]) > 0
    assert 0 < float(properties["ftb.padding_efficiency"]) <= 1
    assert properties["ftb.baseline"] == "no baseline"


def test_no_data_source_stops_with_one_clear_message(
    bench: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    result = bench.runpytest_subprocess("--ftb-profile=smoke")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ftbench: No MRPC data*--ftb-data-dir DIR*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ftb-padding=ragged"], "*unknown padding strategy ragged; choose from static*"),
        (["--ftb-profile=huge"], "ERROR: --ftb-profile: unknown profile 'huge'*"),
        (
            ["--ftb-profile=smoke", "--ftb-checkpoint=nope"],
            "ERROR: ftbench: unknown checkpoint 'nope'. Tried:*",
        ),
        (["--ftb-profile=smoke", "--ftb-max-steps=0"], "*--ftb-max-steps*invalid*"),
        (["--ftb-job=pretrain"], "ERROR: --ftb-job: unknown job(s) [[]'pretrain'[]]*"),
        (["--ftb-method=dora"], "*unknown method dora; choose from full, lora, qlora*"),
        (
            ["--ftb-profile=smoke", "--ftb-method=lora", "--ftb-lora-targets=q_proj,v_proj"],
            "ERROR: ftbench: LoRA target module(s) q_proj, v_proj match nothing in 'bert'*"
            "Its linear layers: classifier (1), dense (*), key (6), query (6), value (6)",
        ),
        (
            ["--ftb-profile=smoke", "--ftb-max-steps=4"],
            "*job 'throughput': 4 max steps leave nothing*",
        ),
    ],
)
def test_bad_options_are_usage_errors(
    bench: pytest.Pytester, args: list[str], message: str, glue_dir: Path
) -> None:
    # In process: these stop before any case runs, so nothing heavy leaks into this session.
    result = bench.runpytest_inprocess(f"--ftb-data-dir={glue_dir}", *args)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_k_selects_a_trl_task_by_name(pytester: pytest.Pytester) -> None:
    trl_bench = BENCH.parent / "test_trl.py"
    pytester.makepyfile(test_bench=BENCH.read_text(), test_trl=trl_bench.read_text())
    result = pytester.runpytest_inprocess(
        "--collect-only", "-q", "--ftb-profile", "smoke", "-k", "dpo"
    )
    result.stdout.fnmatch_lines(
        ["test_trl.py::test_dpo[[]smollm2-135m-padded-cpu-fp32-full[]]", "1/*tests collected*"]
    )
    sft = pytester.runpytest_inprocess(
        "--collect-only", "-q", "--ftb-profile", "smoke", "-k", "sft",
        "--ftb-padding", "padded,packed,padding-free,dynamic",
    )  # fmt: skip
    # Each job keeps the strategies its task has: SFT takes TRL's three, MRPC's jobs `dynamic`.
    sft.stdout.fnmatch_lines(["*test_sft[[]smollm2-135m-padding-free-cpu-fp32-full[]]", "3/*"])


def test_one_option_table_serves_pytest_and_the_runner() -> None:
    import argparse

    from ftbench.cli.run import add_arguments
    from ftbench.config.options import OPTIONS

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    runner = {a.dest for a in parser._actions}
    for option in OPTIONS:
        assert (option.dest in runner) != option.pytest_only, option.name


def test_the_processes_axis_adds_ids_and_leaves_one_process_alone(bench: pytest.Pytester) -> None:
    args = ["--collect-only", "-q", "--ftb-profile", "smoke", "-k", "throughput"]
    plain = bench.runpytest_inprocess(*args, "--ftb-padding", "dynamic")
    plain.stdout.fnmatch_lines(["*test_train_throughput[[]minilm-l6-dynamic-cpu-fp32-full[]]"])
    two = bench.runpytest_inprocess(*args, "--ftb-padding", "dynamic", "--ftb-processes", "1,2")
    two.stdout.fnmatch_lines(
        [
            "*test_train_throughput[[]minilm-l6-dynamic-cpu-fp32-full-1proc[]]",
            "*test_train_throughput[[]minilm-l6-dynamic-cpu-fp32-full-2proc[]]",
        ]
    )


@pytest.mark.slow
def test_a_two_process_case_runs_beside_one_and_the_summary_scales(
    bench: pytest.Pytester, tiny_checkpoint: Path, glue_dir: Path, tmp_path: Path
) -> None:
    """`--ftb-processes 1,2` through the plugin: both recorded, the scaling table printed."""
    result = bench.runpytest_subprocess(
        "-v", f"--ftb-checkpoint={tiny_checkpoint}", f"--ftb-data-dir={glue_dir}",
        f"--ftb-results-dir={tmp_path / 'results'}", "--ftb-profile=smoke", "--ftb-job=throughput",
        "--ftb-padding=dynamic", "--ftb-processes=1,2", "--ftb-max-steps=5", "--ftb-batch-size=8",
        "-W", "error::pytest_benchmark.logger.PytestBenchmarkWarning",
    )  # fmt: skip
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*test_train_throughput[[]tiny-bert-dynamic-cpu-fp32-full-2proc[]] PASSED*",
            "processes (scaling):*",
            "*throughput tiny-bert dynamic fp32 full*",
            "*1*-*8*8*100%*",
            "*2*gloo*4*8*%*",
        ]
    )
    records = list((tmp_path / "results" / "runs").glob("*/*.json"))
    assert sorted(p.name for p in records) == [
        "throughput-tiny-bert-dynamic-cpu-fp32-full-2proc-seed42.json",
        "throughput-tiny-bert-dynamic-cpu-fp32-full-seed42.json",
    ]
    two = json.loads(next(p for p in records if "2proc" in p.name).read_text())
    assert two["distributed"]["world_size"] == 2
    assert two["distributed"]["scaling_efficiency"] > 0


def test_a_run_where_every_case_skipped_is_not_green(
    bench: pytest.Pytester, tiny_checkpoint: Path, glue_dir: Path, tmp_path: Path
) -> None:
    """Issue 20: the full profile on a machine whose torch sees no GPU measures nothing."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the full profile's cases would run")
    args = (
        "-p", "no:cacheprovider", "--ftb-profile=full", "-k", "throughput",
        f"--ftb-checkpoint={tiny_checkpoint}", f"--ftb-data-dir={glue_dir}",
        f"--ftb-results-dir={tmp_path / 'results'}",
    )  # fmt: skip
    silent = bench.runpytest_inprocess(*args)
    assert silent.ret == pytest.ExitCode.TESTS_FAILED
    line = "ftbench: all 36 selected case(s) skipped, so nothing was measured: device cuda: *"
    silent.stdout.fnmatch_lines([line + "--ftb-allow-skips accepts such a run"])
    allowed = bench.runpytest_inprocess(*args, "--ftb-allow-skips")
    assert allowed.ret == pytest.ExitCode.OK
