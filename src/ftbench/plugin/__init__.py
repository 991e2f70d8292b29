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
from pathlib import Path
from typing import Any

import pytest

from ftbench.config.options import OPTIONS
from ftbench.env.devices import device_problem, precision_problem
from ftbench.plugin import interrupt
from ftbench.plugin.junit import add_properties
from ftbench.plugin.session import FtbSession
from ftbench.stack.checkpoints import load_tokenizer
from ftbench.stack.methods import method_problem
from ftbench.stack.padding import get_strategy
from ftbench.tasks import get_task

SESSION_KEY = pytest.StashKey[FtbSession]()
MODEL_LOAD_SECONDS = pytest.StashKey[float]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ftbench", "ftbench: fine-tuning benchmarks")
    for option in OPTIONS:  # one table, shared with `python -m ftbench.cli.run`
        kwargs = option.kwargs()
        kwargs["help"] += " Default: %(default)r."
        group.addoption(f"--ftb-{option.name}", dest=option.dest, **kwargs)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from ftbench.plugin import hooks

    pluginmanager.add_hookspecs(hooks)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ftbench(job): a benchmark test of the profile's job (finetune, throughput, sft, ...)",
    )
    config.stash[SESSION_KEY] = FtbSession(config)
    interrupt.install(config)  # SIGTERM takes Ctrl-C's path; restored in pytest_unconfigure


def pytest_unconfigure(config: pytest.Config) -> None:
    interrupt.uninstall(config)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A job file (ftbench*.yaml, listed, or named on the command line) as a module of jobs."""
    settings = parent.config.stash[SESSION_KEY].settings
    if not settings.is_job_file(file_path, given=parent.session.isinitpath(file_path)):
        return None
    from ftbench.plugin.jobfiles import JobFile
    from ftbench.tasks import register_task

    # conftest.py files loaded so far (those above this file) register their tasks first
    parent.config.hook.pytest_ftbench_register_tasks(register=register_task)
    collector = JobFile.from_parent(parent, path=file_path)
    collector.settings = settings
    return collector


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "ftb_case" in metafunc.fixturenames:
        metafunc.config.stash[SESSION_KEY].parametrize(metafunc)
    if "ftb_invariant" in metafunc.fixturenames:
        metafunc.config.stash[SESSION_KEY].parametrize_invariants(metafunc)


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected
def pytest_collection_modifyitems(items: list[pytest.Item], config: pytest.Config) -> None:
    config.stash[SESSION_KEY].invariants.order(items)  # invariant pairs run last


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[SESSION_KEY].preflight(session.items)


@pytest.hookimpl(tryfirst=True)  # before the terminal summary, which reports what it did
def pytest_sessionfinish(session: pytest.Session) -> None:
    session.config.stash[SESSION_KEY].finish(session)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    item.config.stash[SESSION_KEY].on_report(item, report, call)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    # The case's status and numbers go into JUnit XML as properties of its test.
    session, error = item.config.stash[SESSION_KEY], None
    try:
        return (yield)
    except BaseException as exc:
        error = exc
        raise
    finally:
        session.called(item, error)  # the case's status, before JUnit reads it
        add_properties(item, session.statuses)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.config.stash[SESSION_KEY].display(terminalreporter)


# -- fixtures: one per axis, chained checkpoint -> tokenizer -> dataset -> collator -> model -----


@pytest.fixture(scope="session")
def ftb_session(pytestconfig: pytest.Config) -> FtbSession:
    return pytestconfig.stash[SESSION_KEY]


@pytest.fixture(scope="session")
def ftb_checkpoint(request: pytest.FixtureRequest, ftb_session: FtbSession) -> Any:
    checkpoint = ftb_session.parts.checkpoint(request.param)
    if checkpoint is None:
        pytest.skip(ftb_session.parts.unavailable(request.param))
    return checkpoint


@pytest.fixture(scope="session")
def ftb_padding(request: pytest.FixtureRequest) -> Any:
    return get_strategy(request.param)


@pytest.fixture(scope="session")
def ftb_device(request: pytest.FixtureRequest) -> str:
    problem = device_problem(request.param)
    if problem:
        pytest.skip(f"device {request.param}: {problem}")
    return request.param


@pytest.fixture(scope="session")
def ftb_precision(request: pytest.FixtureRequest, ftb_device: str) -> str:
    problem = precision_problem(ftb_device, request.param)
    if problem:
        pytest.skip(f"{request.param} on {ftb_device}: {problem}")
    return request.param


@pytest.fixture(scope="session")
def ftb_method(request: pytest.FixtureRequest, ftb_device: str) -> str:
    problem = method_problem(request.param, ftb_device)
    if problem:
        pytest.skip(f"{request.param} on {ftb_device}: {problem}")
    return request.param


@pytest.fixture(scope="session")
def ftb_processes(request: pytest.FixtureRequest) -> int:
    """1 (pytest's own process) unless --ftb-processes asks for more (ftbench.measure.launch)."""
    return getattr(request, "param", 1)


@pytest.fixture(scope="session")
def ftb_tokenizer(ftb_checkpoint: Any) -> Any:
    return load_tokenizer(ftb_checkpoint)


@pytest.fixture
def ftb_job(request: pytest.FixtureRequest, ftb_session: FtbSession, ftb_checkpoint: Any) -> Any:
    job = ftb_session.job_of(request.node)
    problem = ftb_session.parts.task_problem(job.task, ftb_checkpoint)
    if problem:
        pytest.skip(problem)
    return job


@pytest.fixture
def ftb_spec(
    request: pytest.FixtureRequest,
    ftb_session: FtbSession,
    ftb_job: Any,
    ftb_checkpoint: Any,
    ftb_padding: Any,
    ftb_device: str,
    ftb_precision: str,
    ftb_method: str,
    ftb_processes: int,
) -> Any:
    """The case's CaseSpec: what a plain `ftbench.measure.runner.run` call would be given."""
    marker = request.node.get_closest_marker("ftbench")
    spec = ftb_session.case_spec(
        ftb_job,
        marker.kwargs.get("file") if marker else None,
        checkpoint=ftb_checkpoint.spec,
        padding=ftb_padding.name,
        device=ftb_device,
        precision=ftb_precision,
        method=ftb_method,
        processes=ftb_processes,
    )
    problem = get_task(spec.task).case_problem(spec)
    if problem:
        pytest.skip(problem)
    problem = ftb_session.processes_problem(spec)
    if problem:
        pytest.skip(f"{ftb_processes} processes: {problem}")
    return spec


@pytest.fixture
def ftb_dataset(
    ftb_session: FtbSession, ftb_job: Any, ftb_spec: Any, ftb_checkpoint: Any, ftb_tokenizer: Any
):
    """The task's data for this tokenizer and padding; built once per session and reused."""
    if ftb_session.runs_elsewhere(ftb_job, ftb_spec):
        return None  # the launched process encodes its own
    return ftb_session.parts.encoded(ftb_spec, ftb_checkpoint, ftb_tokenizer)


@pytest.fixture
def ftb_collator(ftb_spec: Any, ftb_tokenizer: Any) -> Any:
    return get_task(ftb_spec.task).collator(ftb_spec.padding, ftb_tokenizer)


@pytest.fixture
def ftb_model(
    request: pytest.FixtureRequest,
    ftb_session: FtbSession,
    ftb_job: Any,
    ftb_spec: Any,
    ftb_checkpoint: Any,
    ftb_tokenizer: Any,
) -> Iterator[Any]:
    """A fresh model for every case, seeded, so cases never share trained weights."""
    if ftb_session.runs_elsewhere(ftb_job, ftb_spec):
        # each launched process loads its own
        yield None
        return

    parts = ftb_session.parts
    data = parts.data(ftb_spec.task, parts.source_of(ftb_spec))
    model, seconds = get_task(ftb_spec.task).load_case_model(
        ftb_spec, ftb_checkpoint, ftb_tokenizer, data
    )
    request.node.stash[MODEL_LOAD_SECONDS] = seconds
    yield model
    del model


@pytest.fixture
def ftb_case(
    request: pytest.FixtureRequest,
    ftb_session: FtbSession,
    ftb_job: Any,
    ftb_spec: Any,
    ftb_checkpoint: Any,
    ftb_tokenizer: Any,
    ftb_dataset: Any,
    ftb_collator: Any,
    ftb_model: Any,
) -> Any:
    """One case of the matrix, ready to run: `ftb_case.run()` trains, evaluates and records."""
    return ftb_session.case(
        node=request.node,
        job=ftb_job,
        spec=ftb_spec,
        checkpoint=ftb_checkpoint,
        tokenizer=ftb_tokenizer,
        encoded=ftb_dataset,
        collator=ftb_collator,
        model=ftb_model,
        model_load_seconds=request.node.stash.get(MODEL_LOAD_SECONDS, 0.0),
    )


@pytest.fixture
def ftb_invariant(request: pytest.FixtureRequest, ftb_session: FtbSession) -> Any:
    """One pair of an invariants job: `ftb_invariant.check()` trains both sides and compares
    them step by step (ftbench.plugin.invariants)."""
    return ftb_session.invariants.case(request.param)
