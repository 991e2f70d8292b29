"""Gates that hold on shared machines: relative throughput, busy devices, data identity, locks.

The relative gate's arithmetic is checked on made-up figures here; `test_gates.py` runs the
planted hosts end to end (slow tier).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from ftbench.config.build import GatePolicy
from ftbench.core.record import CaseResult
from ftbench.judge.baselines import BaselineStore, entry_from_results, gate
from ftbench.judge.throughput import RAW, RAW_FALLBACK, choose, judge_throughput
from ftbench.tasks import tolerances_with

CASE = "throughput[tiny-bert-dynamic-cpu-fp32-full]"
SMOKE = tolerances_with({"train_samples_per_second": {"relative": 0.15}})


def result(samples_per_second: float, probe: float | None, busy: bool = False) -> CaseResult:
    throughput = {RAW: samples_per_second}
    if probe is not None:
        throughput["train_samples_per_probe"] = samples_per_second / probe
    return CaseResult(
        case_id=CASE, job="throughput", profile="smoke", axes={}, metrics={},
        throughput=throughput, padding={}, memory={}, times={},
        training={"seed": 42, "recipe": {}}, checkpoint={}, environment={},
        accuracy_meaningful=False,
        machine={
            "probe": {"score": probe, "unit": "steps/s"} if probe else None,
            "contention": {"busy": busy, "other_cores": 1.7 if busy else 0.0, "cpu_count": 2},
        },
    )  # fmt: skip


def verdict(candidate: CaseResult, entry: dict) -> object:
    timed = {k: v for k, v in candidate.throughput.items() if k != "samples_per_second_spread"}
    [only] = gate(CASE, choose(timed, entry), entry, SMOKE)
    return only


# Host A, where the baseline was recorded: 20 samples/s, probe 10 steps/s. Host B, of the same
# hardware id, is 45% faster at everything. The planted regression makes training 30% slower.
BASE = entry_from_results([result(20.0, 10.0)])
FASTER = 1.45
SLOWER = 1 / 1.3


def test_relative_gate_holds_on_a_faster_host_and_still_catches_a_slowdown() -> None:
    assert verdict(result(20.0, 10.0), BASE).passed  # host A, unchanged
    assert verdict(result(20.0 * FASTER, 10.0 * FASTER), BASE).passed  # host B, unchanged
    slowed_a = verdict(result(20.0 * SLOWER, 10.0), BASE)
    slowed_b = verdict(result(20.0 * FASTER * SLOWER, 10.0 * FASTER), BASE)
    assert not slowed_a.passed
    assert not slowed_b.passed  # the faster host does not hide the slowdown...
    assert slowed_b.metric == "train_samples_per_probe"
    # ...which the raw gate would have passed: 20 x 1.45 / 1.3 = 22.3 samples/s > 17.
    [raw] = gate(CASE, {RAW: 20.0 * FASTER * SLOWER}, BASE, SMOKE)
    assert raw.passed


def test_relative_gate_takes_the_throughput_tolerance() -> None:
    assert SMOKE["train_samples_per_probe"].relative == 0.15
    own = tolerances_with({"train_samples_per_probe": {"relative": 0.2}})
    assert own["train_samples_per_probe"].relative == 0.2


def test_a_job_s_own_tolerance_widens_its_gate_only_and_the_command_line_still_wins(
    tmp_path: Path,
) -> None:
    """A noisier recipe (the smoke's GRPO) gets its own throughput tolerance in its job file:
    a 20%-slower day passes there and fails its neighbour at the file's 15%; a 2x slowdown
    fails both; `--ftb-tolerance` replaces the job's figure."""
    from ftbench.config.jobfile import load_job_file
    from ftbench.config.profiles import apply_overrides
    from ftbench.judge.verdict import gate_case

    path = tmp_path / "ftbench.yaml"
    path.write_text(
        "tolerances: {train_samples_per_second: {relative: 0.15}}\n"
        "jobs:\n"
        "  - {name: steady, task: mrpc, checkpoint: minilm-l6, gates: [train_samples_per_second]}\n"
        "  - {name: noisy, task: mrpc, checkpoint: minilm-l6, gates: [train_samples_per_second],\n"
        "     tolerances: {train_samples_per_second: {relative: 0.30}}}\n"
    )
    profile = load_job_file(path)
    policy = GatePolicy(tolerances=tolerances_with(profile.tolerances))

    def passes(job_name: str, slowdown: float, jobs: object = profile) -> bool:
        job = jobs.job(job_name)  # type: ignore[attr-defined]
        measured = result(20.0 / slowdown, 10.0)
        return not gate_case(CASE, [measured], job, BASE, policy).failed

    assert [passes(job, 1.25) for job in ("noisy", "steady")] == [True, False]  # 20% fewer
    assert [passes(job, 2.0) for job in ("noisy", "steady")] == [False, False]
    assert [passes(job, 1.0) for job in ("noisy", "steady")] == [True, True]
    for named in (RAW, "train_samples_per_probe"):  # the option on the rate or on its twin
        tight = apply_overrides(profile, tolerances={named: {"relative": 0.05}})
        assert tight.job("noisy").tolerances == {}
    tight_policy = GatePolicy(tolerances=tolerances_with(tight.tolerances))
    assert (
        tight_policy.for_job(tight.job("noisy")).tolerances["train_samples_per_probe"].relative
        == 0.05
    )
    assert GatePolicy().for_job(None) == GatePolicy()  # a record whose job is unknown


def grpo_result(speed: float, generation_slowdown: float = 1.0) -> CaseResult:
    """A GRPO-like record on a host `speed` times host A's, probe attached as the runner does."""
    from ftbench.measure.machine import attach

    rates = result(20.0 * speed, None)
    rates.throughput["generation_tokens_per_second"] = 60.0 * speed / generation_slowdown
    rates.throughput["optimizer_tokens_per_second"] = 120.0 * speed
    probe = {"score": 10.0 * speed, "unit": "GFLOP/s"}
    return attach(rates, SimpleNamespace(summary=lambda: {"probe": probe, "contention": {}}))


def test_every_timed_rate_is_gated_relative_to_the_probe() -> None:
    """GRPO's generated and optimizer tokens/s get per-probe twins like samples/s."""
    base = entry_from_results([grpo_result(1.0)])
    names = {RAW, "generation_tokens_per_second", "optimizer_tokens_per_second"}

    def verdicts(candidate: CaseResult) -> dict[str, bool]:
        values, notes = _judge(candidate, dict.fromkeys(names, 0.0), base)
        assert notes == []
        return {v.metric: v.passed for v in gate(CASE, values, base, SMOKE)}

    assert base["metrics"]["generation_tokens_per_probe"]["median"] == 6.0
    assert verdicts(grpo_result(FASTER)) == {
        "train_samples_per_probe": True,
        "generation_tokens_per_probe": True,
        "optimizer_tokens_per_probe": True,
    }
    assert not verdicts(grpo_result(FASTER, generation_slowdown=1.3))["generation_tokens_per_probe"]
    assert SMOKE["generation_tokens_per_probe"] == SMOKE["generation_tokens_per_second"]


def _judge(
    measured: CaseResult, values: dict[str, float], entry: dict, **policy: object
) -> tuple[dict[str, float], list[str]]:
    """The throughput judge on a made-up measurement: no session, no pytest config."""
    return judge_throughput(CASE, values, entry, measured, GatePolicy(**policy))


def test_an_old_baseline_falls_back_to_the_raw_gate_and_says_so() -> None:
    old = entry_from_results([result(20.0, None)])
    values, notes = _judge(result(20.0, 10.0), {RAW: 20.0}, old)
    assert values == {RAW: 20.0}
    assert notes == [RAW_FALLBACK]
    values, notes = _judge(result(20.0, 10.0), {RAW: 20.0}, BASE)
    assert values == {"train_samples_per_probe": 2.0}
    assert notes == []
    values, notes = _judge(result(20.0, None), {RAW: 20.0}, BASE)
    assert values == {RAW: 20.0}
    assert notes == ["raw throughput gate (this run has no probe figure)"]
    # Per-probe figures of another probe are in other units: raw, and said so.
    other_probe = {**BASE, "probe": {"name": "train-step", "score": 10.0}}
    matmul = result(20.0, 10.0)
    matmul.machine["probe"]["name"] = "matmul"
    values, notes = _judge(matmul, {RAW: 20.0}, other_probe)
    assert values == {RAW: 20.0}
    assert notes == ["raw throughput gate (the baseline's probe is train-step, this run's matmul)"]


def test_a_busy_measurement_is_not_judged_and_strict_fails_it() -> None:
    from ftbench.core.errors import DeviceBusyError

    busy = result(6.6, 10.0, busy=True)
    values, notes = _judge(busy, {RAW: 6.6}, BASE)
    assert values == {}
    assert notes == ["not gated: device busy (other processes used 1.7 of 2 cores)"]
    with pytest.raises(DeviceBusyError, match="device busy"):
        _judge(busy, {RAW: 6.6}, BASE, strict=True)


def test_a_busy_re_measure_is_not_judged_and_strict_fails_it() -> None:
    """A throughput miss re-measured on a device that stayed busy: "not gated", or with
    --ftb-strict a failure naming the first measurement's miss, as for a first measurement."""
    from ftbench.core.errors import DeviceBusyError
    from ftbench.judge.verdict import confirm, gate_case

    policy = GatePolicy(tolerances=SMOKE)
    first = gate_case(CASE, [result(20.0 * SLOWER, 10.0)], None, BASE, policy)
    assert first.timed_failure
    busy_again = result(20.0 * SLOWER, 10.0, busy=True)
    failed, status = confirm(CASE, first, busy_again, None, BASE, policy)
    assert failed == []
    assert status == "not gated: device busy (other processes used 1.7 of 2 cores) on re-measure"
    strict = replace(policy, strict=True)
    with pytest.raises(DeviceBusyError, match=r"re-measure of a throughput miss \(train_sam"):
        confirm(CASE, first, busy_again, None, BASE, strict)
    quiet_again = result(20.0 * SLOWER, 10.0)
    failed, status = confirm(CASE, first, quiet_again, None, BASE, strict)
    assert status == "regressed"
    assert [v.metric for v in failed] == ["train_samples_per_probe"]


def test_cpu_contention_counts_other_processes_not_our_own() -> None:
    from ftbench.env.contention import CpuWindow

    window = CpuWindow.start()
    helper = subprocess.Popen(
        [sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<2.5: pass"]
    )
    total, deadline = 0, time.perf_counter() + 1.5
    while time.perf_counter() < deadline:
        total += sum(range(10_000))  # our own work, which must not count
    # Stopped before the helper is reaped: a waited-for child's time counts as our own.
    figures = window.stop()
    helper.wait()
    assert figures["other_cores"] > 0.5, figures
    assert figures["own_cores"] > 0.3, figures
    assert figures["busy"]


def fake_nvml(monkeypatch: pytest.MonkeyPatch, processes: list[tuple[int, int]]) -> None:
    """A pynvml that lists `processes` as (pid, bytes) on device 0: no GPU needed."""
    from ftbench.env.contention import CpuWindow

    quiet = {"seconds": 1.0, "cpu_count": 2, "own_cores": 1.0, "other_cores": 0.0, "busy": False}
    monkeypatch.setattr(CpuWindow, "stop", lambda self: dict(quiet))  # whatever else runs here
    running = [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in processes]
    fake = SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetHandleByIndex=lambda index: index,
        nvmlDeviceGetHandleByUUID=lambda uuid: uuid,
        nvmlDeviceGetComputeRunningProcesses=lambda handle: running,
        nvmlDeviceGetUtilizationRates=lambda handle: SimpleNamespace(gpu=97),
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)


GIB = 1 << 30


def test_another_gpu_process_makes_the_device_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from ftbench.env import contention

    monkeypatch.setattr(contention, "_own_gpu_bytes", lambda: 2 * GIB)
    fake_nvml(monkeypatch, [(os.getpid(), 2 * GIB)])
    alone = contention.DeviceWindow("cuda").stop()
    assert alone["gpu"]["other_processes"] == []
    assert not alone["busy"]

    fake_nvml(monkeypatch, [(os.getpid(), 2 * GIB), (4242, 30 * GIB)])
    shared = contention.DeviceWindow("cuda").stop()
    assert shared["busy"]
    assert "1 other process(es) on the GPU (pid 4242)" in contention.describe(shared)


def test_a_container_s_host_pids_do_not_count_the_case_as_its_own_neighbour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ftbench.env import contention

    # In a container NVML lists the host's ids: ours (2 GiB reserved, NVML adds its context)
    # is not os.getpid().
    monkeypatch.setattr(contention, "_own_gpu_bytes", lambda: 2 * GIB)
    fake_nvml(monkeypatch, [(918273, 2 * GIB + (500 << 20))])
    assert not contention.DeviceWindow("cuda").stop()["busy"]

    fake_nvml(monkeypatch, [(918274, 40 * GIB), (918273, 2 * GIB + (500 << 20))])
    shared = contention.DeviceWindow("cuda").stop()
    assert shared["busy"]
    assert [p["pid"] for p in shared["gpu"]["other_processes"]] == [918274]
    assert "(pid 918274, the host's ids)" in contention.describe(shared)

    # No entry fits our memory (ours is on another device, or NVML gives no memory): then
    # every entry counts, so a neighbour is never dropped by a guess.
    for memory in (40 * GIB, None):
        fake_nvml(monkeypatch, [(918274, memory)])
        assert contention.DeviceWindow("cuda").stop()["busy"]


def test_the_pytest_that_launched_a_case_is_not_its_neighbour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """issue 20: a timed case trains in a fresh process while pytest, which may hold a CUDA
    context from earlier cases, waits for it; by pid, or by memory where NVML gives the host's
    ids. A third process still makes the device busy."""
    import os

    from ftbench.env import contention

    monkeypatch.setattr(contention, "_own_gpu_bytes", lambda: 2 * GIB)
    variables = contention.parent_variables()
    assert variables[contention.PARENT_PID] == str(os.getpid())
    monkeypatch.setenv(contention.PARENT_PID, "5150")
    monkeypatch.setenv(contention.PARENT_GPU_BYTES, str(1 * GIB))
    fake_nvml(monkeypatch, [(os.getpid(), 2 * GIB), (5150, 1 * GIB)])
    assert not contention.DeviceWindow("cuda").stop()["busy"]
    fake_nvml(monkeypatch, [(918273, 2 * GIB + (400 << 20)), (918200, 1 * GIB + (400 << 20))])
    assert not contention.DeviceWindow("cuda").stop()["busy"]  # the host's ids
    fake_nvml(monkeypatch, [(os.getpid(), 2 * GIB), (5150, 1 * GIB), (4242, 30 * GIB)])
    shared = contention.DeviceWindow("cuda").stop()
    assert [p["pid"] for p in shared["gpu"]["other_processes"]] == [4242]


def test_nvml_looks_at_the_device_cuda_visible_devices_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ftbench.env import contention

    fake_nvml(monkeypatch, [])
    asked = []
    nvml = sys.modules["pynvml"]
    monkeypatch.setattr(nvml, "nvmlDeviceGetHandleByIndex", lambda i: asked.append(i))
    monkeypatch.setattr(nvml, "nvmlDeviceGetHandleByUUID", lambda u: asked.append(u))
    for visible in ("3,1", "GPU-8d3f, GPU-11aa", "MIG-5c2e"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        assert contention.gpu_others("cuda")["measured"]
    assert asked == [3, "GPU-8d3f", "MIG-5c2e"]


def test_unknown_gpu_contention_is_recorded_not_guessed(monkeypatch: pytest.MonkeyPatch) -> None:
    from ftbench.env import contention

    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    assert contention.gpu_others("cuda") == {"measured": False, "why": "pynvml is not installed"}
    fake_nvml(monkeypatch, [])
    monkeypatch.setattr(sys.modules["pynvml"], "nvmlInit", lambda: 1 / 0)  # a refusing driver
    figures = contention.DeviceWindow("cuda").stop()
    assert figures["gpu"] == {"measured": False, "why": "NVML: division by zero"}
    assert figures["busy"] is False  # a quiet host: nothing else is known to share the device


# -- data identity ------------------------------------------------------------------------------


def test_data_identity_names_source_files_and_splits(glue_dir: Path, tmp_path: Path) -> None:
    from ftbench.stack.data import DataSource, load_pairs
    from ftbench.stack.dataid import data_difference, data_identity, floors_off

    glue = DataSource(data_dir=str(glue_dir))
    identity = data_identity(glue, load_pairs(glue))
    assert identity["source"]["kind"] == "glue_dir"
    assert identity["dataset"] == "custom"  # made-up pairs, not MRPC
    assert identity["splits"]["validation"]["rows"] == 24
    assert len(identity["files"]["train"]["sha256"]) == 64
    assert identity["text_columns"] == ["sentence1", "sentence2"]
    assert "not MRPC" in floors_off(identity)

    train, dev = tmp_path / "train.csv", tmp_path / "test.csv"
    for path, rows in ((train, 40), (dev, 17)):
        lines = [f"q{i} words,a{i} words,{i % 2}" for i in range(rows)]
        path.write_text("question,answer,verdict\n" + "\n".join(lines) + "\n")
    files = DataSource(
        train_file=str(train),
        validation_file=str(dev),
        text_columns=("question", "answer"),
        label_column="verdict",
    )
    other = data_identity(files, load_pairs(files))
    assert other["source"]["kind"] == "files"
    message = data_difference(other, {"data": identity})
    assert message.startswith("other data than the baseline's (baseline: dev.tsv, 24 rows, sha256 ")
    assert "; this run: test.csv, 17 rows, sha256 " in message
    assert data_difference(identity, {"data": identity}) is None
    # A baseline from before identities is taken as MRPC: other data than these pairs.
    assert "MRPC dev, 408 rows" in data_difference(identity, {})


def test_mrpc_files_are_recognised(shared_glue: Path) -> None:
    from ftbench.stack.data import DataSource, load_pairs
    from ftbench.stack.dataid import data_difference, data_identity, floors_off

    source = DataSource(data_dir=str(shared_glue))
    identity = data_identity(source, load_pairs(source))
    assert identity["dataset"] == "mrpc"
    assert floors_off(identity) is None
    assert data_difference(identity, {}) is None  # old baselines: MRPC


def test_environment_names_adapter_libraries_without_breaking_old_baselines() -> None:
    from ftbench.env.devices import environment
    from ftbench.judge.baselines import same_environment

    versions = environment()["versions"]
    assert {"peft", "trl", "bitsandbytes"} <= set(versions)
    now = {"versions": {"torch": "2.13", "peft": "0.17"}, "cpu_count": 2}
    old = {"versions": {"torch": "2.13"}, "cpu_count": 2}
    assert same_environment(now, old)
    assert not same_environment(now, {**old, "versions": {"torch": "2.12"}})


# -- concurrent writes --------------------------------------------------------------------------

UPDATER = textwrap.dedent(
    """
    import sys
    from ftbench.judge.baselines import BaselineStore
    root, name = sys.argv[1], sys.argv[2]
    for i in range(25):
        BaselineStore(root).update("cpu-2c", "smoke", {f"{name}-{i}": {"metrics": {}}})
    """
)


def test_two_processes_updating_one_baseline_file_lose_nothing(tmp_path: Path) -> None:
    runs = [
        subprocess.Popen([sys.executable, "-c", UPDATER, str(tmp_path), name])
        for name in ("first", "second")
    ]
    assert [run.wait(timeout=120) for run in runs] == [0, 0]
    cases = BaselineStore(tmp_path).load("cpu-2c", "smoke")["cases"]
    assert len(cases) == 50
    assert json.loads((tmp_path / "cpu-2c" / "smoke.json").read_text())["cases"] == cases


def test_locked_serialises_holders(tmp_path: Path) -> None:
    from ftbench.core.errors import FtbenchError
    from ftbench.core.files import locked

    cache = tmp_path / "converted"
    with locked(cache), pytest.raises(FtbenchError, match="held this lock"):  # noqa: SIM117
        with locked(cache, timeout=0.1):
            pass


def test_an_unwritable_results_directory_is_refused(tmp_path: Path) -> None:
    from ftbench.core.errors import ConfigError
    from ftbench.core.files import check_writable

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"--ftb-results-dir .*a-file/results: can.t write"):
        check_writable(blocker / "results", "--ftb-results-dir")
    assert check_writable(tmp_path / "new" / "results", "--ftb-results-dir").is_dir()


def test_a_baseline_without_the_speed_the_job_now_gates_says_so() -> None:
    """A job that starts gating its samples/s, against an entry recorded before (quality
    only): nothing is judged on speed, and the status says why, not a silent pass."""
    quality_only = {**BASE, "metrics": {"eval_loss": BASE["metrics"][RAW]}}
    values, notes = _judge(result(20.0, 10.0), {RAW: 20.0, "eval_loss": 1.0}, quality_only)
    assert values == {RAW: 20.0, "eval_loss": 1.0}
    assert notes == [f"{RAW} not gated: the baseline has no figure (re-record it)"]
    assert [v.metric for v in gate(CASE, values, quality_only, SMOKE)] == ["eval_loss"]
