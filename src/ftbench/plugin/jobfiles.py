"""Job files as pytest modules: each job a test function, parametrized like bench/'s tests.

    recipes/ftbench-dpo.yaml::dpo[smollm2-135m-padded-cpu-fp32-full]

pytest collects a YAML file as jobs when it is named `ftbench*.yaml` (as it collects
test_*.py), is listed in pyproject.toml's `[tool.ftbench] jobs` or `--ftb-jobs`, or is named on
the command line. Each job becomes a function marked `@pytest.mark.ftbench(job, file=...)`, so
fixtures, parametrization, `-k`, records, gates and the summary are bench/'s, unchanged. A bad
file is one collection error with one line (file, line, what is wrong), and nothing trains.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from ftbench.core.errors import ConfigError

if TYPE_CHECKING:
    from ftbench.config.profiles import Job
    from ftbench.plugin.settings import Settings

JOB_TEST = "__ftbench_job__"  # set on the functions made here, so only they are collected


class JobFile(pytest.Module):
    """A job file, collected as a module whose functions are its jobs."""

    settings: Settings

    def _getobj(self) -> types.ModuleType:
        try:
            profile = self.settings.job_file(self.path)
        except ConfigError as exc:
            raise self.CollectError(f"ftbench: {exc}") from None
        module = types.ModuleType(self.path.stem)
        module.__file__ = str(self.path)
        for job in profile.jobs:
            setattr(module, job.name, job_test(job, str(self.path)))
        return module

    def istestfunction(self, obj: object, name: str) -> bool:
        return bool(getattr(obj, JOB_TEST, False))

    def istestclass(self, obj: object, name: str) -> bool:
        return False


def job_test(job: Job, file: str) -> Callable[..., None]:
    """The test of one job: train (each seed), check what every case must hold, then gate.
    An invariants job's test checks its pairs instead."""
    if job.invariants:

        def test(ftb_invariant: Any) -> None:  # type: ignore[misc]
            ftb_invariant.check()

    elif job.training.evaluate:

        def test(ftb_case: Any) -> None:
            _check(ftb_case.run())
            ftb_case.check()

    else:  # a throughput job: its steps timed in pytest-benchmark rounds, as bench/'s

        def test(ftb_case: Any, benchmark: Any) -> None:  # type: ignore[misc]
            _check(ftb_case.run(benchmark))
            ftb_case.check()

    test.__name__ = test.__qualname__ = job.name
    test.__doc__ = f"Job {job.name!r} ({job.task}) from {file}."
    setattr(test, JOB_TEST, True)
    return pytest.mark.ftbench(job.name, file=file)(test)


def _check(result: Any) -> None:
    assert math.isfinite(result.metrics["train_loss"]), "the training loss is not finite"
    assert 0 < result.padding["efficiency"] <= 1
