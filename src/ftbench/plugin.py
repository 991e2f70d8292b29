"""The pytest plugin: options, fixtures and hooks only; the work happens in ftbench's modules.

Loaded through the `pytest11` entry point. Importing it imports neither torch nor transformers:
they load when a benchmark case is collected.

A benchmark test asks for `ftb_case` and names its job with a marker:

    @pytest.mark.ftbench("finetune")
    def test_finetune(ftb_case):
        result = ftb_case.run()

and is parametrized over the job's checkpoint × padding × device × precision × method, through
session-scoped fixtures chained checkpoint -> tokenizer -> dataset -> collator -> model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ftbench import interrupt
from ftbench.baselines import parse_tolerance
from ftbench.options import (
    device_names,
    float_value,
    fraction,
    list_of,
    method_names,
    padding_names,
    positive_int,
    precision_names,
    seconds,
)
from ftbench.session import FtbSession

SESSION_KEY = pytest.StashKey[FtbSession]()
MODEL_LOAD_SECONDS = pytest.StashKey[float]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ftbench", "ftbench: fine-tuning benchmarks")

    def add(name: str, **kwargs: Any) -> None:
        kwargs["help"] = kwargs["help"] + " Default: %(default)r."
        group.addoption(name, **kwargs)

    add(
        "--ftb-profile",
        metavar="NAME",
        default="auto",
        help="Profile: smoke (CPU minutes), full (GPU, the HF course recipe) or auto.",
    )
    add(
        "--ftb-job",
        metavar="JOBS",
        type=list_of(str),
        default=None,
        help="Run only these jobs of the profile, comma-separated: finetune, throughput.",
    )
    add(
        "--ftb-checkpoint",
        metavar="SPECS",
        type=list_of(str),
        default=None,
        help="Checkpoints, comma-separated: Hub ids, directories, minilm-l6, <arch>@random.",
    )
    add(
        "--ftb-padding",
        metavar="NAMES",
        type=padding_names,
        default=None,
        help="Padding strategies, comma-separated: static, dynamic, bucketed, dynamic-x8.",
    )
    add(
        "--ftb-device",
        metavar="NAMES",
        type=device_names,
        default=None,
        help="Devices, comma-separated: cpu, cuda, mps. An absent device is a skip.",
    )
    add(
        "--ftb-precision",
        metavar="NAMES",
        type=precision_names,
        default=None,
        help="Precisions, comma-separated: fp32, bf16, fp16.",
    )
    add(
        "--ftb-method",
        metavar="NAMES",
        type=method_names,
        default=None,
        help="Fine-tuning methods, comma-separated: full, lora, qlora (CUDA and bitsandbytes).",
    )
    add(
        "--ftb-lora-rank",
        metavar="R",
        type=positive_int,
        default=None,
        help="LoRA rank, for lora and qlora.",
    )
    add(
        "--ftb-lora-alpha",
        metavar="ALPHA",
        type=positive_int,
        default=None,
        help="LoRA alpha (the update is scaled by alpha / rank).",
    )
    add(
        "--ftb-lora-dropout",
        metavar="P",
        type=fraction,
        default=None,
        help="LoRA dropout.",
    )
    add(
        "--ftb-lora-targets",
        metavar="MODULES",
        type=list_of(str),
        default=None,
        help="LoRA target modules, comma-separated (e.g. query,key,value) or all-linear. "
        "None: peft's default for the architecture.",
    )
    add(
        "--ftb-epochs",
        metavar="N",
        type=float_value,
        default=None,
        help="Training epochs (when no max steps are set).",
    )
    add(
        "--ftb-max-steps",
        metavar="N",
        type=positive_int,
        default=None,
        help="Stop every case after N optimizer steps.",
    )
    add(
        "--ftb-batch-size",
        metavar="N",
        type=positive_int,
        default=None,
        help="Train batch size per device.",
    )
    add(
        "--ftb-learning-rate",
        metavar="LR",
        type=float_value,
        default=None,
        help="Peak learning rate.",
    )
    add("--ftb-seed", metavar="N", type=int, default=None, help="Seed for data order and init.")
    add(
        "--ftb-max-length",
        metavar="N",
        type=positive_int,
        default=None,
        help="Truncation length, and static padding's length, in tokens.",
    )
    add(
        "--ftb-data-dir",
        metavar="DIR",
        default=None,
        help="GLUE data directory (DIR/MRPC/train.tsv, dev.tsv, test.tsv). Else the Hub.",
    )
    add(
        "--ftb-train-file",
        metavar="FILE",
        default=None,
        help="Your own training pairs: csv, tsv, json or parquet.",
    )
    add(
        "--ftb-validation-file",
        metavar="FILE",
        default=None,
        help="Your own validation pairs, evaluated after training.",
    )
    add(
        "--ftb-test-file",
        metavar="FILE",
        default=None,
        help="Your own test pairs (labels optional).",
    )
    add(
        "--ftb-text-columns",
        metavar="A,B",
        type=list_of(str, length=2),
        default=["sentence1", "sentence2"],
        help="The two text columns of your files.",
    )
    add(
        "--ftb-label-column",
        metavar="NAME",
        default="label",
        help="The label column of your files: integers or strings.",
    )
    add(
        "--ftb-results-dir",
        metavar="DIR",
        default="results",
        help="Where run records go (DIR/runs/<run>/<case>.json).",
    )
    add(
        "--ftb-baselines-dir",
        metavar="DIR",
        default="results/baselines",
        help="Baselines: DIR/<hardware-id>/<profile>.json, committed.",
    )
    add(
        "--ftb-update-baselines",
        action="store_true",
        default=False,
        help="Record this run as the baselines (refused if any case fails); gates are off.",
    )
    add(
        "--ftb-seeds",
        metavar="N",
        type=positive_int,
        default=1,
        help="Repeat each accuracy case over N seeds (seed, seed+1, ...) to measure the spread.",
    )
    add(
        "--ftb-require-baseline",
        action="store_true",
        default=False,
        help="Fail cases that have no baseline, instead of reporting 'no baseline'.",
    )
    add(
        "--ftb-strict-repro",
        action="store_true",
        default=False,
        help="Fail, not warn, when environment and seed match the baseline but numbers differ.",
    )
    add(
        "--ftb-strict",
        action="store_true",
        default=False,
        help="Fail, not report 'not gated', when a throughput case stays on a busy device.",
    )
    add(
        "--ftb-busy-wait",
        metavar="SECONDS",
        type=seconds,
        default=60.0,
        help="How long a case timed on a busy device waits for quiet to measure again.",
    )
    add(
        "--ftb-tolerance",
        metavar="METRIC:RULE",
        type=parse_tolerance,
        action="append",
        default=None,
        help="Override a gate, e.g. train_samples_per_second:15%% or "
        "eval_accuracy:k=2,min=0.02. Repeatable.",
    )
    add(
        "--ftb-progress-every",
        metavar="SECONDS",
        type=float_value,
        default=None,
        help="Seconds between progress lines (None: 5 on a terminal, 30 in CI logs).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "ftbench(job): a benchmark test of the profile's job (finetune, throughput)"
    )
    config.stash[SESSION_KEY] = FtbSession(config)
    interrupt.install(config)  # SIGTERM takes Ctrl-C's path; restored in pytest_unconfigure


def pytest_unconfigure(config: pytest.Config) -> None:
    interrupt.uninstall(config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "ftb_case" in metafunc.fixturenames:
        metafunc.config.stash[SESSION_KEY].parametrize(metafunc)


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[SESSION_KEY].preflight(session.items)


@pytest.hookimpl(tryfirst=True)  # before the terminal summary, which reports what it did
def pytest_sessionfinish(session: pytest.Session) -> None:
    session.config.stash[SESSION_KEY].finish()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    item.config.stash[SESSION_KEY].on_report(item, report, call)
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.config.stash[SESSION_KEY].display(terminalreporter)


# -- fixtures: one per axis, chained checkpoint -> tokenizer -> dataset -> collator -> model -----


@pytest.fixture(scope="session")
def ftb_session(pytestconfig: pytest.Config) -> FtbSession:
    return pytestconfig.stash[SESSION_KEY]


@pytest.fixture(scope="session")
def ftb_checkpoint(request: pytest.FixtureRequest, ftb_session: FtbSession) -> Any:
    return ftb_session.checkpoint(request.param)


@pytest.fixture(scope="session")
def ftb_padding(request: pytest.FixtureRequest) -> Any:
    from ftbench.padding import get_strategy

    return get_strategy(request.param)


@pytest.fixture(scope="session")
def ftb_device(request: pytest.FixtureRequest) -> str:
    from ftbench.devices import device_problem

    problem = device_problem(request.param)
    if problem:
        pytest.skip(f"device {request.param}: {problem}")
    return request.param


@pytest.fixture(scope="session")
def ftb_precision(request: pytest.FixtureRequest, ftb_device: str) -> str:
    from ftbench.devices import precision_problem

    problem = precision_problem(ftb_device, request.param)
    if problem:
        pytest.skip(f"{request.param} on {ftb_device}: {problem}")
    return request.param


@pytest.fixture(scope="session")
def ftb_method(request: pytest.FixtureRequest, ftb_device: str) -> str:
    from ftbench.methods import method_problem

    problem = method_problem(request.param, ftb_device)
    if problem:
        pytest.skip(f"{request.param} on {ftb_device}: {problem}")
    return request.param


@pytest.fixture(scope="session")
def ftb_tokenizer(ftb_checkpoint: Any) -> Any:
    from ftbench.checkpoints import load_tokenizer

    return load_tokenizer(ftb_checkpoint)


@pytest.fixture(scope="session")
def ftb_pairs(ftb_session: FtbSession) -> Any:
    return ftb_session.pairs()


@pytest.fixture(scope="session")
def ftb_dataset(
    ftb_pairs: Any, ftb_tokenizer: Any, ftb_padding: Any, ftb_session: FtbSession
) -> Any:
    from ftbench.data import tokenize_pairs

    return tokenize_pairs(
        ftb_pairs,
        ftb_tokenizer,
        max_length=ftb_session.profile.max_length,
        pad_to_max_length=ftb_padding.pad_to_max_length,
    )


@pytest.fixture(scope="session")
def ftb_collator(ftb_padding: Any, ftb_tokenizer: Any) -> Any:
    return ftb_padding.collator(ftb_tokenizer)


@pytest.fixture
def ftb_job(request: pytest.FixtureRequest, ftb_session: FtbSession) -> Any:
    return ftb_session.job_of(request.node)


@pytest.fixture
def ftb_model(
    request: pytest.FixtureRequest,
    ftb_checkpoint: Any,
    ftb_tokenizer: Any,
    ftb_pairs: Any,
    ftb_job: Any,
    ftb_device: str,
    ftb_precision: str,
    ftb_method: str,
) -> Iterator[Any]:
    """A fresh model for every case, seeded, so cases never share trained weights."""
    from ftbench.checkpoints import load_classifier

    label = ftb_pairs["train"].features["label"]
    model, seconds = load_classifier(
        ftb_checkpoint,
        ftb_tokenizer,
        label,
        ftb_job.training.seed,
        method=ftb_method,
        lora=ftb_job.lora,
        precision=ftb_precision,
        device=ftb_device,
    )
    request.node.stash[MODEL_LOAD_SECONDS] = seconds
    yield model
    del model


@pytest.fixture
def ftb_case(
    request: pytest.FixtureRequest,
    ftb_session: FtbSession,
    ftb_job: Any,
    ftb_checkpoint: Any,
    ftb_padding: Any,
    ftb_device: str,
    ftb_precision: str,
    ftb_method: str,
    ftb_tokenizer: Any,
    ftb_dataset: Any,
    ftb_collator: Any,
    ftb_model: Any,
) -> Any:
    """One case of the matrix, ready to run: `ftb_case.run()` trains, evaluates and records."""
    return ftb_session.case(
        node=request.node,
        job=ftb_job,
        checkpoint=ftb_checkpoint,
        padding=ftb_padding.name,
        device=ftb_device,
        precision=ftb_precision,
        method=ftb_method,
        tokenizer=ftb_tokenizer,
        encoded=ftb_dataset,
        collator=ftb_collator,
        model=ftb_model,
        model_load_seconds=request.node.stash.get(MODEL_LOAD_SECONDS, 0.0),
    )
