"""Collection: each benchmark test parametrized over its job's matrix, then one preflight.

    parametrize(metafunc, settings)        # pytest_generate_tests
    preflight(items, settings, parts, baselines)   # pytest_collection_finish: fail early, once

A job the profile doesn't select shows as one skipped case with the reason; unusable options,
data, checkpoints, LoRA targets or baseline files stop the run before any model trains.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ftbench.config.profiles import Job
from ftbench.core.errors import ConfigError, FtbenchError
from ftbench.core.files import check_writable
from ftbench.core.spec import checkpoint_name
from ftbench.env.devices import device_problem, git_state
from ftbench.stack.checkpoints import model_config
from ftbench.stack.methods import ADAPTER_METHODS, check_targets_of_config
from ftbench.tasks import get_task

if TYPE_CHECKING:
    from ftbench.plugin.ledger import Ledger
    from ftbench.plugin.parts import Parts
    from ftbench.plugin.settings import Settings

MARKER = "ftbench"
NOT_SELECTED = "is not selected in profile"  # the skip reason of a job the run leaves out


def job_of(node: Any, settings: Settings) -> Job:
    """The job a test names with `@pytest.mark.ftbench(job)`: the built-in profile's, or with
    `file=` (a job file's test) that file's."""
    marker = node.get_closest_marker(MARKER)
    if marker is None or not marker.args:
        raise ConfigError(f"{node.nodeid}: uses ftb_case but has no @pytest.mark.ftbench(job)")
    return settings.profile_of(marker.kwargs.get("file")).job(marker.args[0])


def parametrize(metafunc: pytest.Metafunc, settings: Settings) -> pytest.UsageError | None:
    """Parametrize a test over its job's axes; returns an options error for preflight to
    raise (raised here it would read as a collection error)."""
    marker = metafunc.definition.get_closest_marker(MARKER)
    wanted = marker.args[0] if marker and marker.args else None
    try:
        profile = settings.profile_of(marker.kwargs.get("file") if marker else None)
    except pytest.UsageError as exc:
        metafunc.parametrize("ftb_checkpoint", [pytest.param(None, id="unusable-options")])
        return exc
    if wanted not in profile.job_names() or not settings.selected(wanted):
        # One skipped case, so the job shows up in the report with the reason.
        reason = f"job {wanted!r} {NOT_SELECTED} {profile.name!r}"
        unselected = pytest.param(None, marks=pytest.mark.skip(reason=reason), id="not-selected")
        metafunc.parametrize("ftb_checkpoint", [unselected], indirect=True)
        return None
    job = profile.job(wanted)
    axes = (
        ("ftb_checkpoint", job.checkpoints, [checkpoint_name(c) for c in job.checkpoints]),
        ("ftb_padding", job.paddings, None),
        ("ftb_device", job.devices, None),
        ("ftb_precision", job.precisions, None),
        ("ftb_method", job.methods, None),
    )
    if tuple(job.processes) != (1,):  # one process alone keeps the ids it always had
        axes += (("ftb_processes", job.processes, [f"{n}proc" for n in job.processes]),)
    for fixture, values, ids in axes:
        metafunc.parametrize(fixture, list(values), ids=ids, indirect=True, scope="session")
    return None


def preflight(items: list[pytest.Item], settings: Settings, parts: Parts, ledger: Ledger) -> None:
    """Fail the whole run early, with one message, on unusable data, checkpoints, baselines."""
    settings.check_jobs()
    cases = [i for i in items if "ftb_case" in getattr(i, "fixturenames", ())]
    cases = [i for i in cases if i.get_closest_marker("skip") is None]
    if not cases:
        return
    params = [i.callspec.params for i in cases if hasattr(i, "callspec")]
    try:
        for spec in sorted({p["ftb_checkpoint"] for p in params}):
            parts.checkpoint(spec)
        check_lora_targets(cases, settings, parts)
        jobs = {(job.task, job.data): job for job in (job_of(i, settings) for i in cases)}
        for task, source in jobs:
            if get_task(task).problem() is None:  # else its cases skip with the install command
                parts.data(task, source)
        profiles = {settings.profile_of(_file_of(i)).name for i in cases}
        for name in sorted(profiles):
            settings.policy_for(name)  # validates the tolerance options now
        # issue 12: before any training, not after the first case
        check_writable(settings.results_dir, "--ftb-results-dir")
        if settings.updating_baselines:
            check_writable(settings.baselines_dir, "--ftb-baselines-dir")
        git_state()  # the commit the run starts from, not one made while it runs
        for device in sorted({p["ftb_device"] for p in params}):
            if device_problem(device) is None:  # a corrupt baseline file stops the run here
                for name in sorted(profiles):
                    store, hardware_id, profile = ledger.baseline_location(device, name)
                    store.load(hardware_id, profile)
    except FtbenchError as exc:
        raise pytest.UsageError(f"ftbench: {exc}") from None


def _file_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker(MARKER)
    return marker.kwargs.get("file") if marker is not None else None


def check_lora_targets(cases: list[pytest.Item], settings: Settings, parts: Parts) -> None:
    """LoRA targets that match nothing stop the run before any model trains."""
    checked = set()
    for item in cases:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("ftb_method") not in ADAPTER_METHODS:
            continue
        job = job_of(item, settings)
        checkpoint = parts.checkpoint(params["ftb_checkpoint"])
        task = get_task(job.task)
        key = (params["ftb_checkpoint"], job.lora, task.model_class)
        if key not in checked and parts.task_problem(job.task, checkpoint) is None:
            checked.add(key)
            config = model_config(checkpoint, num_labels=2)
            check_targets_of_config(config, job.lora, task.model_class)
