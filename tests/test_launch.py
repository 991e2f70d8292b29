"""Cases of N processes: the launch command, the port check, a dead rank, the merged record.

pytest tests/test_launch.py        # about 30 s: two real 2-process gloo runs of a tiny BERT
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from ftbench.core.spec import CaseSpec, Lora, Training
from ftbench.measure.launch import (
    LaunchError,
    RankOutput,
    child_environment,
    failed_rank,
    free_port,
    launch_case,
    launch_command,
    option_args,
    port_in_use,
    processes_problem,
    read_spec,
    run_launcher,
    threads_per_process,
    write_spec,
)

TORCHRUN_FAILURE = """\
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
=======================================================
ftbench.cli.run FAILED
-------------------------------------------------------
Failures:
[1]:
  rank      : 0 (local_rank: 0)
  exitcode  : -15 (pid: 29865)  (SIGTERM)
-------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-11-29_13:10:02
  host      : localhost
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 29866)  (SIGKILL)
  error_file: <N/A>
=======================================================
"""


def tiny_spec(checkpoint: Path, processes: int = 2, max_steps: int = 6) -> CaseSpec:
    training = Training(max_steps=max_steps, batch_size=8, evaluate=False, timing_warmup_steps=1)
    return CaseSpec("throughput", str(checkpoint), "dynamic", training=training,
                    processes=processes)  # fmt: skip


# -- the command and what it is given ------------------------------------------------------------


def test_one_machine_command_runs_ftbench_run_under_torchrun_with_no_restarts():
    command = launch_command(2, ["--case-spec", "s.json"], port=29611, log_dir="logs")
    assert command[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert "--multi_gpu" in command  # accelerate's torchrun path, gloo on CPU
    joined = " ".join(command)
    assert "--num_processes 2" in joined
    assert "--main_process_port 29611" in joined
    assert "--max_restarts 0" in joined
    assert "--tee 3 --log_dir logs" in joined
    assert command[-4:] == ["-m", "ftbench.cli.run", "--case-spec", "s.json"]


def test_a_config_file_decides_the_topology(tmp_path):
    command = launch_command(16, [], port=None, config_file="two-nodes.yaml")
    assert "--config_file two-nodes.yaml" in " ".join(command)
    assert "--multi_gpu" not in command  # the file says DDP, FSDP or DeepSpeed
    assert "--main_process_port" not in command  # all machines must agree: the file's
    assert "--num_processes 16" in " ".join(command)


def test_each_process_gets_its_share_of_the_cores():
    assert threads_per_process(2, cores=2) == 1
    assert threads_per_process(2, cores=16) == 8
    assert threads_per_process(4, cores=2) == 1
    assert child_environment(2, "cpu")["OMP_NUM_THREADS"] == str(threads_per_process(2))
    import ftbench

    # The folder that holds the ftbench this process imported, first: an editable checkout's
    # src/, not the package folder (whose config/, env/ ... would shadow other packages).
    first = child_environment(2, "cpu")["PYTHONPATH"].split(os.pathsep)[0]
    assert first == str(Path(ftbench.__file__).resolve().parents[1])
    assert (Path(first) / "ftbench" / "__init__.py").is_file()


def test_the_spec_travels_whole(tmp_path):
    spec = replace(
        tiny_spec(Path("ckpt"), processes=4),
        method="lora",
        lora=Lora(rank=4, targets=("query", "value"), floors={"eval_accuracy": 0.7}),
    )
    assert read_spec(write_spec(spec, tmp_path / "spec.json")) == spec


def test_data_options_come_from_the_one_table():
    values = {"ftb_data_dir": "../shared/data", "ftb_text_columns": ["a", "b"]}
    args = option_args(values.get, ("data-dir", "text-columns", "label-column"))
    assert args == ["--data-dir", "../shared/data", "--text-columns", "a,b"]


def test_case_ids_keep_one_process_and_mark_more():
    one, two = tiny_spec(Path("x/tiny"), 1), tiny_spec(Path("x/tiny"), 2)
    assert one.case_id == "throughput[tiny-dynamic-cpu-fp32-full]"  # baselines keep their keys
    assert two.case_id == "throughput[tiny-dynamic-cpu-fp32-full-2proc]"
    assert "processes" not in one.axes
    assert two.axes["processes"] == 2


def test_the_global_batch_is_kept():
    from ftbench.measure.runner import training_arguments

    args = training_arguments(tiny_spec(Path("x"), 2), "out")
    assert args.per_device_train_batch_size == 4  # 8 / 2: the same 8 samples per step


def test_cases_that_cannot_split_or_launch_skip_with_the_reason(monkeypatch):
    assert processes_problem(1, "cpu", 7, None) is None
    assert "does not split evenly" in processes_problem(3, "cpu", 32, None)
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "accelerate" else real(name)
    )
    assert "accelerate is not installed" in processes_problem(2, "cpu", 32, None)


# -- ports ----------------------------------------------------------------------------------------


def test_a_port_in_use_is_found_before_launch(tmp_path, tiny_checkpoint):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert port_in_use(port)
        config = tmp_path / "accelerate.yaml"
        config.write_text(f"main_process_port: {port}\nnum_machines: 1\n")
        started = time.monotonic()
        with pytest.raises(LaunchError, match=f"port {port} is already in use"):
            launch_case(tiny_spec(tiny_checkpoint), [], config_file=str(config))
        assert time.monotonic() - started < 5  # refused, not launched
    assert not port_in_use(free_port())


# -- failures --------------------------------------------------------------------------------------


def test_torchruns_root_cause_names_the_rank():
    assert failed_rank(TORCHRUN_FAILURE) == (1, "-9 (pid: 29866) (SIGKILL)")
    assert failed_rank("Traceback: something else") is None


def test_each_ranks_last_lines_are_kept_and_rank_zeros_progress_shown():
    shown: list[str] = []
    output = RankOutput(keep=3, echo=shown.append)
    for line in ["[default0]:[ftbench] case: step 1/25\n", "[default1]:Loading  0%\r100%\n",
                 "[default1]:\n", "[default1]:MemoryError\n", "[default1]:[ftbench] x\n",
                 "torchrun says\n"]:  # fmt: skip
        output.add(line)
    assert shown == ["case: step 1/25"]  # progress from rank 0 only
    # not the blank line, not the spent progress bar; the last `keep` only
    assert output.last(1) == ["100%", "MemoryError", "[ftbench] x"]
    assert output.last(None) == ["torchrun says"]


def test_a_launch_that_runs_too_long_is_killed_whole():
    command = [sys.executable, "-c", "import time; time.sleep(60)"]
    started = time.monotonic()
    with pytest.raises(LaunchError, match="no result after 1 s"):
        run_launcher(command, dict(os.environ), timeout=1, what="sleeper")
    assert time.monotonic() - started < 15


def test_ctrl_c_while_waiting_kills_every_process_of_the_launch(monkeypatch, tmp_path):
    import subprocess

    import psutil

    pid_file = tmp_path / "rank.pid"
    code = (
        "import subprocess, sys, time; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(60)"
    )
    real_wait = subprocess.Popen.wait

    def wait(self, timeout=None):
        if timeout == 120:  # the launcher's own wait: Ctrl-C arrives once its "rank" is up
            while not pid_file.exists():
                time.sleep(0.05)
            raise KeyboardInterrupt
        return real_wait(self, timeout)

    monkeypatch.setattr(subprocess.Popen, "wait", wait)
    with pytest.raises(KeyboardInterrupt):
        run_launcher([sys.executable, "-c", code], dict(os.environ), timeout=120)
    rank = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while psutil.pid_exists(rank) and psutil.Process(rank).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "a process of the launch outlived Ctrl-C"
        time.sleep(0.05)


def test_a_killed_rank_fails_its_case_fast_and_the_next_case_runs(tiny_checkpoint, glue_dir):
    """A real 2-process gloo run: kill rank 1 once training is under way."""
    import psutil

    killed: dict[str, float] = {}

    def kill_rank_one(line: str) -> None:
        if "step" not in line or killed:
            return
        for child in psutil.Process().children(recursive=True):
            try:
                if child.environ().get("RANK") == "1":
                    child.send_signal(signal.SIGKILL)
                    killed["at"] = time.monotonic()
            except psutil.Error:
                continue

    data = ["--data-dir", str(glue_dir)]
    long_run = tiny_spec(tiny_checkpoint, max_steps=100_000)
    with pytest.raises(LaunchError) as failure:
        launch_case(long_run, data, echo=kill_rank_one, timeout=120)
    assert killed, "training never started"
    seconds = time.monotonic() - killed["at"]
    print(f"the case failed {seconds:.1f} s after rank 1 was killed: {failure.value}")
    assert seconds < 60
    assert "rank 1 failed" in str(failure.value)
    assert "SIGKILL" in str(failure.value)
    leftovers = [c for c in psutil.Process().children(recursive=True) if c.is_running()]
    assert not [c for c in leftovers if c.status() != psutil.STATUS_ZOMBIE]
    # The next case launches on a fresh port and keeps a record with every rank's timings.
    threading.Event().wait(0.1)
    result = launch_case(tiny_spec(tiny_checkpoint), data, timeout=120)
    assert result.case_id == "throughput[tiny-bert-dynamic-cpu-fp32-full-2proc]"
    assert result.distributed["processes"] == 2
    assert result.distributed["backend"] == "gloo"
    assert result.distributed["global_batch_size"] == 8
    assert [r["rank"] for r in result.distributed["ranks"]] == [0, 1]
    assert result.throughput["timed_steps"] == 5
    assert result.throughput["step_samples"] == [8] * 5  # every rank's samples: global


# -- one process: a fresh interpreter, no accelerate (issue 20) ----------------------------------


def test_one_process_trains_in_a_fresh_interpreter_and_fails_as_it_would_here(
    tiny_checkpoint, glue_dir, tmp_path
):
    """The record comes back with what isolation cost; an ftbench error in the child comes
    back as the same class (here: data that isn't there), not as a launcher's exit code."""
    from ftbench.core.errors import DataError

    result = launch_case(tiny_spec(tiny_checkpoint, processes=1), ["--data-dir", str(glue_dir)])
    assert result.case_id == "throughput[tiny-bert-dynamic-cpu-fp32-full]"
    assert result.machine["timed_in"] == "a fresh process"
    assert "launcher" not in (result.distributed or {})  # no accelerate for one process
    assert result.times["fresh_process_seconds"] > result.times["train_seconds"]
    assert result.throughput["timed_steps"] == 5
    nothing = tmp_path / "no-data"
    nothing.mkdir()
    with pytest.raises(DataError, match=r"train\.tsv: file not found"):
        launch_case(tiny_spec(tiny_checkpoint, processes=1), ["--data-dir", str(nothing)])
    # One process keeps the parent's threads; N share the cores.
    assert child_environment(1, "cpu").get("OMP_NUM_THREADS") == os.environ.get("OMP_NUM_THREADS")


def test_a_task_registered_only_here_travels_to_the_launched_process(tmp_path, monkeypatch):
    """A team's task from its conftest (not an entry point) goes to the child as its class,
    with the folder it imports from on the child's path."""
    import subprocess

    from ftbench import tasks

    (tmp_path / "team_tasks.py").write_text(
        "from ftbench.tasks.mrpc import Mrpc\n\n"
        "class Paraphrase(Mrpc):\n    name = 'paraphrase-of-ours'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from team_tasks import Paraphrase

    monkeypatch.setitem(tasks._REGISTERED, "paraphrase-of-ours", Paraphrase())
    assert tasks.defined_in("paraphrase-of-ours") == ("team_tasks:Paraphrase", str(tmp_path))
    assert tasks.defined_in("sft") is None  # built in: every process knows it
    env = child_environment(1, "cpu", [str(tmp_path)])
    child = subprocess.run(
        [sys.executable, "-c", "from ftbench.tasks import register_from, get_task; "
         "register_from('team_tasks:Paraphrase'); print(get_task('paraphrase-of-ours').name)"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert child.stdout.strip() == "paraphrase-of-ours", child.stderr
    with pytest.raises(tasks.ConfigError, match="task class team_tasks:Missing: can't import"):
        tasks.register_from("team_tasks:Missing")
