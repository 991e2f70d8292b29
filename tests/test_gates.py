"""Baseline gates end to end through pytest: record, rerun, and planted regressions caught.

The planted regressions come from scripts/ftb_plants.py, loaded in the run's conftest and in
every fresh process a timed case trains in (a test hook, not a code path ftbench ships): a
learning rate 100 times too high, evaluation on shuffled labels, and training steps slowed by
a sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# Imported before any pytester run: in-process runs drop the modules they import, and numpy and
# pyarrow refuse to be imported twice in one process.
import datasets  # noqa: F401
import pytest
import transformers  # noqa: F401
from conftest import write_glue

BENCH = Path(__file__).resolve().parents[1] / "bench" / "test_mrpc.py"

# The planted regressions: a pytest plugin module that tests and the documented procedure share.
PLANTS = (Path(__file__).resolve().parents[1] / "scripts" / "ftb_plants.py").read_text()


@pytest.fixture
def suite(
    pytester: pytest.Pytester,
    tiny_checkpoint: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    """Runs the real benchmark module on the tiny model; returns a function of extra args."""
    pytester.makepyfile(test_bench=BENCH.read_text(), ftb_plants=PLANTS)
    # The plants act in pytest's process (its conftest) and in each fresh process a timed case
    # trains in (Python imports sitecustomize from PYTHONPATH, which pytester's subprocess runs
    # put this folder on): one module, imported once per process.
    pytester.makeconftest("import ftb_plants  # noqa: F401")
    pytester.makepyfile(sitecustomize="import ftb_plants  # noqa: F401")
    data = write_glue(tmp_path / "glue", train=192, dev=64)
    common = [
        "-p", "no:cacheprovider", "--ftb-profile=smoke", f"--ftb-checkpoint={tiny_checkpoint}",
        f"--ftb-data-dir={data}", "--ftb-padding=dynamic", "--ftb-batch-size=16",
        "--ftb-max-length=64", "--ftb-method=full",
        f"--ftb-baselines-dir={tmp_path / 'baselines'}",
        f"--ftb-results-dir={tmp_path / 'results'}",
    ]  # fmt: skip

    def run(*args: str, **env: str) -> pytest.RunResult:
        plants = ("LR_FACTOR", "SLEEP", "SLOWDOWN", "SHUFFLED_EVAL", "NO_ATTENTION_MASK", "NAN")
        for name in (*plants, "HOST_SPEED", "OOM"):
            monkeypatch.delenv(f"FTB_PLANT_{name}", raising=False)
        for name, value in env.items():
            monkeypatch.setenv(f"FTB_PLANT_{name}", value)
        # A plant patches modules for good, so planted runs get a process of their own; the
        # others run in this one, which has torch and transformers imported already.
        runner = pytester.runpytest_subprocess if env else pytester.runpytest_inprocess
        return runner(*common, *args)

    run.baselines = tmp_path / "baselines"
    run.results = tmp_path / "results"
    run.common = common
    run.path = pytester.path
    return run


FINETUNE = ("--ftb-job=finetune", "--ftb-max-steps=36", "--ftb-learning-rate=3e-3")


def _baseline_file(root: Path) -> Path:
    [path] = root.glob("*/smoke.json")
    return path


def test_accuracy_gates_pass_reruns_and_catch_planted_regressions(suite) -> None:
    recorded = suite(*FINETUNE, "--ftb-update-baselines", "--ftb-seeds=2")
    recorded.assert_outcomes(passed=1, skipped=1)
    recorded.stdout.fnmatch_lines(["baselines updated: *smoke.json (1 case(s))"])
    path = _baseline_file(suite.baselines)
    entry = json.loads(path.read_text())["cases"]["finetune[tiny-bert-dynamic-cpu-fp32-full]"]
    assert entry["seeds"] == [42, 43]
    assert entry["metrics"]["eval_accuracy"]["n"] == 2
    assert entry["metrics"]["eval_accuracy"]["mean"] > 0.8  # the tiny task is learnable

    rerun = suite(*FINETUNE, "-W", "error::ftbench.core.errors.ReproducibilityWarning")
    rerun.assert_outcomes(passed=1, skipped=1)
    rerun.stdout.fnmatch_lines(
        ["*finetune[[]tiny-bert-dynamic-cpu-fp32-full[]]*passed*within bounds*"]
    )

    diverged = suite(*FINETUNE, LR_FACTOR="100")
    diverged.assert_outcomes(failed=1, skipped=1)
    diverged.stdout.fnmatch_lines(
        [
            "*RegressionError: finetune[[]tiny-bert-dynamic-cpu-fp32-full[]]: regressed beyond*",
            "*eval_accuracy * < bound * (lower bound: mean * - max(3 x σ *, 0.01), n=2, k=3)",
            f"*baseline: {path}, recorded * at commit *",
        ]
    )
    diverged.stdout.fnmatch_lines(
        ["*finetune[[]tiny-bert-dynamic-cpu-fp32-full[]]*failed*REGRESSED*"]
    )

    # Dropping the mask is stopped at the first padded batch, whatever accuracy would say.
    maskless = suite(*FINETUNE, NO_ATTENTION_MASK="1")
    maskless.assert_outcomes(failed=1, skipped=1)
    maskless.stdout.fnmatch_lines(
        [
            "*MissingAttentionMaskError: finetune[[]tiny-bert-dynamic-cpu-fp32-full[]], dynamic "
            "padding, step 1: a training batch of 16 x * tokens reached the model with * padding "
            "tokens and no attention_mask*",
        ]
    )

    shuffled = suite(*FINETUNE, SHUFFLED_EVAL="1")
    shuffled.assert_outcomes(failed=1, skipped=1)
    shuffled.stdout.fnmatch_lines(["*RegressionError: *", "*eval_accuracy * < bound *"])

    # A broken run never becomes the baseline.
    before = path.read_text()
    broken = suite(*FINETUNE, "--ftb-update-baselines", NAN="1")
    broken.assert_outcomes(failed=1, skipped=1)
    broken.stdout.fnmatch_lines(
        [
            "*NonFiniteLossError: *training loss became nan*",
            "baselines NOT updated: 1 case(s) failed*",
        ]
    )
    assert path.read_text() == before


# 3 warm-up steps, then 3 rounds of 2; batches of 4 keep the tiny model's own time (and noise)
# small next to the planted 0.5 s of "work" per step.
THROUGHPUT = ("--ftb-job=throughput", "--ftb-max-steps=9", "--ftb-batch-size=4")
STEP = "0.5"


@pytest.mark.slow  # about 80 s of planted, timed steps: `pytest tests/ -m slow`
def test_throughput_gate_catches_30_percent_not_3_percent(suite) -> None:
    saved = suite.path / "benchmark.json"
    recorded = suite(*THROUGHPUT, "--ftb-update-baselines", f"--benchmark-json={saved}", SLEEP=STEP)
    recorded.assert_outcomes(passed=1, skipped=1)
    # Timed in a fresh process, its rounds still reach pytest-benchmark: 6 timed steps, 2 a round.
    [bench] = json.loads(saved.read_text())["benchmarks"]
    assert bench["stats"]["rounds"] == 3
    assert bench["extra_info"]["timed_in"] == "a fresh process"
    assert bench["stats"]["min"] >= 2 * float(STEP)  # two planted sleeps a round, at least

    slightly = suite(*THROUGHPUT, SLEEP=STEP, SLOWDOWN="0.03")
    slightly.assert_outcomes(passed=1, skipped=1)

    slowed = suite(*THROUGHPUT, SLEEP=STEP, SLOWDOWN="0.3")
    slowed.assert_outcomes(failed=1, skipped=1)
    slowed.stdout.fnmatch_lines(
        [
            "*train_samples_per_probe * < bound * (lower bound: median * - 15%, n=1; "
            "samples/s * (baseline *), probe * (baseline *); "
            "first measurement *, re-measured *)",
        ]
    )
    assert "re-measuring once before failing" in slowed.stdout.str()


@pytest.mark.slow  # about 90 s of planted, timed steps
def test_relative_gate_holds_on_a_45_percent_faster_host(suite) -> None:
    """A baseline from host A gates host B, 45% faster (planted: shorter steps, a faster probe):
    B passes, and a 30% slowdown is red on both, though B's raw samples/s beat A's bound."""
    suite(*THROUGHPUT, "--ftb-update-baselines", SLEEP=STEP).assert_outcomes(passed=1, skipped=1)
    faster = suite(*THROUGHPUT, SLEEP=STEP, HOST_SPEED="1.45")
    faster.assert_outcomes(passed=1, skipped=1)
    faster.stdout.fnmatch_lines(["*throughput[[]tiny-bert-dynamic-cpu-fp32-full[]]*within bounds*"])
    for host in ("1", "1.45"):
        slowed = suite(*THROUGHPUT, SLEEP=STEP, SLOWDOWN="0.3", HOST_SPEED=host)
        slowed.assert_outcomes(failed=1, skipped=1)
        slowed.stdout.fnmatch_lines(["*train_samples_per_probe * < bound *"])


def test_a_busy_device_is_named_not_blamed(suite) -> None:
    """The busy run is timed as users' are, in a fresh process, which counts the burners and
    not the pytest waiting for it; the baseline and --ftb-strict's error need no fresh process
    (one costs ~15 s to start beside two burners on two cores)."""
    here = "--ftb-in-process"
    suite(*THROUGHPUT, here, "--ftb-update-baselines").assert_outcomes(passed=1, skipped=1)
    burn = "import time\nt = time.time()\nwhile time.time() - t < 120: pass"
    helpers = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(2)]
    try:
        busy = suite(*THROUGHPUT, "--ftb-busy-wait=0")
        strict = suite(*THROUGHPUT, here, "--ftb-busy-wait=0", "--ftb-strict")
    finally:
        for helper in helpers:
            helper.kill()
            helper.wait()
    busy.assert_outcomes(passed=1, skipped=1)
    busy.stdout.fnmatch_lines(
        ["*throughput[[]*]*passed*not gated: device busy (other processes used * of * cores)*"]
    )
    assert "REGRESSED" not in busy.stdout.str()
    strict.assert_outcomes(failed=1, skipped=1)
    strict.stdout.fnmatch_lines(["*DeviceBusyError: throughput[[]*]: device busy (*"])
    [record, *_] = sorted(suite.results.glob("runs/*/*.json"), key=lambda p: p.stat().st_mtime)
    contention = json.loads(record.read_text())["machine"]["contention"]
    assert set(contention) >= {"other_cores", "own_cores", "cpu_count", "busy"}


@pytest.mark.parametrize("where", ["fresh-process", "in-process"])
def test_an_out_of_memory_case_fails_alone_and_gives_its_memory_back(suite, where: str) -> None:
    """The same error either way; in pytest's process the failed case's model is released
    (a fresh process gives everything back when it exits)."""
    args = ["--ftb-in-process"] if where == "in-process" else []
    run = suite(*THROUGHPUT, "-s", "--ftb-padding=static,dynamic", *args, OOM="static")
    run.assert_outcomes(passed=1, failed=1, skipped=1)
    run.stdout.fnmatch_lines(
        [
            "*CaseOutOfMemoryError: throughput[[]tiny-bert-static-cpu-fp32-full[]]: out of memory "
            "on cpu at batch size 4: it asked for 2.00 GiB more, with the process at * GiB*",
        ]
    )
    if where == "in-process":
        assert "FTB_PLANT_OOM: model of the failed case released: True" in run.stdout.str()
    run.stdout.fnmatch_lines(["*throughput[[]tiny-bert-dynamic-cpu-fp32-full[]]*passed*"])


def test_an_unwritable_results_directory_stops_the_run_first(suite, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    run = suite(*THROUGHPUT, f"--ftb-results-dir={blocker / 'results'}")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    run.stderr.fnmatch_lines(["ERROR: ftbench: --ftb-results-dir */results: can't write there*"])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_stops_at_once_and_loses_nothing(suite, signum: int) -> None:
    """Two timed cases of 40 slow steps; the signal comes during the second."""
    args = [*suite.common, *THROUGHPUT, "--ftb-max-steps=40", "--ftb-padding=static,dynamic"]
    args += ["--ftb-progress-every=0.2", "--ftb-update-baselines"]
    # PYTHONPATH: the plants load in the fresh process each timed case trains in, too
    env = {**os.environ, "FTB_PLANT_SLEEP": "0.1", "PYTHONPATH": str(suite.path)}
    # A background job may inherit SIGINT ignored; the child must see Ctrl-C as a user would.
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", *args],
        cwd=suite.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines = []
    for line in run.stdout:
        lines.append(line)
        if "[ftbench] throughput[tiny-bert-dynamic" in line and ": step " in line:
            break
    else:
        pytest.fail("the second case never started:\n" + "".join(lines))
    sent = time.monotonic()
    run.send_signal(signum)
    rest, _ = run.communicate(timeout=60)
    assert time.monotonic() - sent < 10, "".join(lines) + rest
    out = "".join(lines) + rest
    assert run.returncode == pytest.ExitCode.INTERRUPTED, out
    records = sorted(suite.results.glob("runs/*/*.json"))
    assert [p.name for p in records] == ["throughput-tiny-bert-static-cpu-fp32-full-seed42.json"]
    assert json.loads(records[0].read_text())["throughput"]["timed_steps"] == 37
    assert "ftbench results" in out
    assert "run interrupted" in out
    assert "baselines NOT updated: the run was interrupted" in out
    assert not list(suite.baselines.glob("**/*.json"))  # the directory was checked, not written


def test_another_cpu_host_s_quality_baseline_judges_this_one(suite) -> None:
    """issue 20: a host whose hardware id has no baseline is gated on quality against one
    recorded on another CPU host (quality is the same bits there); a planted regression is
    still caught; another recipe borrows nothing."""
    import shutil

    from ftbench.env.devices import hardware_id

    recorded = suite(*FINETUNE, "--ftb-update-baselines")
    recorded.assert_outcomes(passed=1, skipped=1)
    here = suite.baselines / hardware_id("cpu")
    other = suite.baselines / "other-cpu-2c"  # as if recorded on another host
    shutil.move(here, other)

    rerun = suite(*FINETUNE)
    rerun.assert_outcomes(passed=1, skipped=1)
    rerun.stdout.fnmatch_lines(
        [
            "*finetune[[]tiny-bert-dynamic-cpu-fp32-full[]]*passed*within bounds, quality "
            "against other-cpu-2c's baseline*"
        ]
    )
    diverged = suite(*FINETUNE, LR_FACTOR="100")
    diverged.assert_outcomes(failed=1, skipped=1)
    diverged.stdout.fnmatch_lines(
        ["*RegressionError: finetune[[]*", "*eval_accuracy * < bound *", "*other-cpu-2c*"]
    )
    # Another recipe is not borrowed: "no baseline", as before.
    other_recipe = suite(*FINETUNE[:-1], "--ftb-learning-rate=2e-3")
    other_recipe.stdout.fnmatch_lines(["*finetune[[]*passed*no baseline*"])


def test_required_and_corrupt_baselines(suite) -> None:
    required = suite(*THROUGHPUT, "--ftb-require-baseline")
    required.assert_outcomes(failed=1, skipped=1)
    required.stdout.fnmatch_lines(["*BaselineError: throughput[[]*]: no baseline in *smoke.json*"])

    from ftbench.env.devices import hardware_id

    path = suite.baselines / hardware_id("cpu") / "smoke.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"schema_version": 1, "cases": {"throughput[tiny-bert-dyn')  # truncated
    corrupt = suite(*THROUGHPUT)
    assert corrupt.ret == pytest.ExitCode.USAGE_ERROR
    corrupt.stderr.fnmatch_lines([f"ERROR: ftbench: {path}: corrupt or truncated baseline file*"])


@pytest.mark.slow  # two fine-tunes of the tiny model, about 50 s
def test_own_data_meets_neither_the_baseline_nor_the_floors_of_other_data(
    suite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The MRPC case pointed at the user's own files: "not gated: other data", floors off.

    The tiny GLUE set stands in for MRPC here: its hashes are MRPC's for this test, and the
    profile's floors stay on for the tiny recipe (on the real profile, the flags that shrink
    the recipe switch them off on their own, which would hide what this test checks)."""
    import random
    from dataclasses import replace

    from conftest import make_pairs

    from ftbench.config import profiles
    from ftbench.plugin import settings
    from ftbench.stack import dataid
    from ftbench.stack.data import DataSource, load_pairs

    tiny = DataSource(data_dir=str(tmp_path / "glue"))
    as_mrpc = dataid.data_identity(tiny, load_pairs(tiny))["splits"]
    monkeypatch.setattr(dataid, "MRPC_SPLITS", as_mrpc)
    monkeypatch.setattr(profiles, "RECIPE_OVERRIDES", ())
    smoke = profiles.get_profile("smoke")
    jobs = tuple(
        replace(j, floors={"eval_accuracy": 0.6}) if j.name == "finetune" else j for j in smoke.jobs
    )
    lowered = replace(smoke, jobs=jobs)
    monkeypatch.setattr(settings, "get_profile", lambda name: lowered)

    recorded = suite(*FINETUNE, "--ftb-update-baselines")
    recorded.assert_outcomes(passed=1, skipped=1)
    assert "floors not checked" not in recorded.stdout.str()  # MRPC: the floors apply

    # The user's own pairs, labelled at random: accuracy near 0.5, under the 0.6 floor.
    rng = random.Random(0)
    own = {}
    for name, rows, seed in (("train.csv", 96, 5), ("test.csv", 48, 6)):
        lines = [f"{a},{b},{rng.choice(['no', 'yes'])}" for _, a, b in make_pairs(rows, seed)]
        own[name] = tmp_path / name
        own[name].write_text("left,right,verdict\n" + "\n".join(lines) + "\n")
    mine = suite(
        *FINETUNE,
        f"--ftb-train-file={own['train.csv']}",
        f"--ftb-validation-file={own['test.csv']}",
        "--ftb-text-columns=left,right",
        "--ftb-label-column=verdict",
    )
    mine.assert_outcomes(passed=1, skipped=1)
    mine.stdout.fnmatch_lines(
        [
            "*finetune[[]tiny-bert-dynamic-cpu-fp32-full[]]*passed*not gated: other data than "
            "the baseline's (baseline: MRPC dev, 64 rows, sha256 *; this run: test.csv, 48 rows*",
            "note: finetune[[]*: floors not checked: the data is not MRPC (test.csv, 48 rows*",
        ]
    )
    assert "AccuracyFloorError" not in mine.stdout.str()
