"""Run one case in N processes: `accelerate launch ... -m ftbench.cli.run`, as a watched subprocess.

    from ftbench.measure.launch import launch_case
    result = launch_case(spec, data_args=["--data-dir", "../shared/data"])   # spec.processes

One process (N = 1) takes the same path without accelerate: `python -m ftbench.cli.run` in a
fresh interpreter, so a timed case is measured apart from whatever the parent ran before it
(issue 20: the same SFT case trained 35% slower in a pytest process that had trained MRPC).

The parent (pytest, or `ftbench run --processes N`) never trains. It writes the case's spec to
a file, picks a free port and checks it before launch, and starts accelerate (torchrun
underneath: gloo on CPU, nccl on CUDA) in a process group of its own, with each process given
its share of the cores. It keeps the last lines of every rank's output, bounds the wall clock,
and kills the whole group on a timeout, an error or Ctrl-C. When a rank dies, torchrun stops the
others; the case then fails naming the rank, its exit and its last lines. Rank 0 writes the
record, atomically, to a path the parent chose; no record, no result.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftbench.config.options import OPTIONS
from ftbench.core.errors import ConfigError, FtbenchError, error_named
from ftbench.core.files import write_json_atomic
from ftbench.core.record import CaseResult, read_record
from ftbench.core.spec import CaseSpec, Lora, Training
from ftbench.env.contention import parent_variables
from ftbench.env.devices import git_state
from ftbench.tasks import defined_in

if TYPE_CHECKING:
    from ftbench.core.record import CaseResult
    from ftbench.core.spec import CaseSpec

LAST_LINES = 20  # per rank, kept for the failure message
KILL_GRACE_SECONDS = 5.0  # SIGTERM to the group, then SIGKILL
# torchrun's prefix on a worker's teed line, e.g. "[default1]:" (role, local rank)
RANK_PREFIX = re.compile(r"^\[[A-Za-z_]*(\d+)\]:")


class LaunchError(FtbenchError, RuntimeError):
    """A launched case failed: a rank died, the launch timed out, or rank 0 wrote no record."""


# -- before launch -------------------------------------------------------------------------------


def launcher_problem() -> str | None:
    """Why cases of N > 1 processes can't be launched here (a skip), or None."""
    import importlib.util

    if importlib.util.find_spec("accelerate") is None:
        return "accelerate is not installed, so N > 1 processes can't start: pip install accelerate"
    return None


def processes_problem(
    processes: int, device: str, batch_size: int, config_file: str | None
) -> str | None:
    """Why a case can't run in `processes` processes on this device (a skip), or None."""
    if processes == 1:
        return None
    problem = launcher_problem()
    if problem:
        return problem
    if batch_size % processes:
        return (
            f"batch {batch_size} does not split evenly over {processes} processes (the global "
            "batch is kept; choose --ftb-batch-size or --ftb-processes to fit)"
        )
    if device == "mps":
        return "mps has no multi-process backend"
    if device == "cuda" and config_file is None:
        import torch

        count = torch.cuda.device_count()
        if count < processes:
            return (
                f"{processes} processes need {processes} CUDA devices, this machine has {count} "
                "(several machines: --ftb-accelerate-config)"
            )
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when `port` can't be bound on `host`: someone (an earlier run, a hung rank) has it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def threads_per_process(processes: int, cores: int | None = None) -> int:
    """Each process's share of the cores, so N processes don't fight over them."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // processes)


def config_port(config_file: str | None) -> int | None:
    """The main_process_port an accelerate config file sets, if any (several machines)."""
    if not config_file:
        return None
    import yaml

    try:
        config = yaml.safe_load(Path(config_file).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"--ftb-accelerate-config {config_file}: can't read it ({exc})") from None
    port = config.get("main_process_port") if isinstance(config, dict) else None
    return int(port) if port else None


# -- the spec travels as a file ----------------------------------------------------------------


def write_spec(spec: CaseSpec, path: Path) -> Path:
    return write_json_atomic(Path(path), asdict(spec))


def read_spec(path: str | Path) -> CaseSpec:
    """The CaseSpec `write_spec` wrote: the child trains exactly the parent's case."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    lora = data.pop("lora")
    if lora is not None:
        if lora.get("targets") is not None:
            lora["targets"] = tuple(lora["targets"])
        lora = Lora(**lora)
    return CaseSpec(**{**data, "training": Training(**data.pop("training")), "lora": lora})


# -- the command ---------------------------------------------------------------------------------


def launch_command(
    processes: int,
    run_args: Sequence[str],
    *,
    port: int | None,
    config_file: str | None = None,
    log_dir: str | None = None,
    module: str = "ftbench.cli.run",
) -> list[str]:
    """`python -m accelerate.commands.launch ... -m ftbench.cli.run ARGS` (or another `module`:
    the invariants' traced runs).

    Without a config file: one machine, `--multi_gpu` (accelerate's name for its torchrun
    path, also on CPU, where each process then joins gloo). With one, the file says where and
    how (machines, FSDP, DeepSpeed); `--num_processes` is the world size over all machines.
    """
    command = [sys.executable, "-m", "accelerate.commands.launch"]
    if config_file:
        command += ["--config_file", str(config_file)]
    else:
        command += ["--multi_gpu", "--num_machines", "1", "--mixed_precision", "no",
                    "--dynamo_backend", "no"]  # fmt: skip
    command += ["--num_processes", str(processes)]
    if port is not None:
        command += ["--main_process_port", str(port)]
    # No restarts: a dead rank fails the case. Watch the workers twice a second.
    command += ["--max_restarts", "0", "--monitor_interval", "0.5"]
    if log_dir:
        command += ["--tee", "3", "--log_dir", str(log_dir)]
    return [*command, "-m", module, *run_args]


def child_environment(
    processes: int, device: str, extra_paths: Sequence[str] = ()
) -> dict[str, str]:
    """The launched processes' environment: their share of the cores on CPU (one process keeps
    the parent's threads), and this ftbench on their path (an editable checkout may not be the
    installed one), with `extra_paths` (where a task of a conftest is imported from)."""
    import ftbench

    env = {**os.environ, **parent_variables()}
    if device == "cpu" and processes > 1:
        env["OMP_NUM_THREADS"] = str(threads_per_process(processes))
    here = str(Path(ftbench.__file__).resolve().parents[1])  # the folder that holds ftbench/
    paths = env.get("PYTHONPATH", "").split(os.pathsep) if env.get("PYTHONPATH") else []
    new = [p for p in dict.fromkeys([here, *extra_paths]) if p not in paths]
    if new:
        env["PYTHONPATH"] = os.pathsep.join([*new, *paths])
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


# -- running it ----------------------------------------------------------------------------------


class RankOutput:
    """The launcher's merged output, split by rank: the last lines of each, for messages."""

    def __init__(self, keep: int = LAST_LINES, echo: Callable[[str], None] | None = None) -> None:
        self.ranks: dict[int | None, collections.deque[str]] = {}
        self.keep = keep
        self.echo = echo

    def add(self, line: str) -> None:
        line = line.rstrip("\n")
        match = RANK_PREFIX.match(line)
        rank = int(match.group(1)) if match else None
        text = (line[match.end() :] if match else line).split("\r")[-1].rstrip()
        if not text:
            return  # blank lines and spent progress bars say nothing about a failure
        self.ranks.setdefault(rank, collections.deque(maxlen=self.keep)).append(text)
        # Progress lines come from rank 0 only (runner's `report`); show them as they come.
        if self.echo is not None and rank in (0, None) and text.startswith("[ftbench] "):
            self.echo(text[len("[ftbench] ") :])

    def last(self, rank: int | None, count: int = 8) -> list[str]:
        return list(self.ranks.get(rank, ()))[-count:]


def failed_rank(output: str) -> tuple[int, str] | None:
    """The root-cause rank torchrun names in its failure summary, and its exit."""
    root = output.rfind("Root Cause")
    if root < 0:
        return None
    block = output[root:]
    rank = re.search(r"rank\s*:\s*(\d+)", block)
    if rank is None:
        return None
    exit_match = re.search(r"exitcode\s*:\s*(-?\d+)[^\n]*", block)
    exit_text = exit_match.group(0).split(":", 1)[1].strip() if exit_match else "unknown exit"
    return int(rank.group(1)), re.sub(r"\s+", " ", exit_text)


def kill_group(process: subprocess.Popen, grace: float = KILL_GRACE_SECONDS) -> None:
    """SIGTERM the launcher's whole process group (every rank), then SIGKILL what is left."""
    if process.poll() is not None:
        _kill(process.pid, signal.SIGKILL)  # stragglers a dead launcher left behind
        return
    _kill(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    _kill(process.pid, signal.SIGKILL)
    process.wait()


def _kill(group: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            os.killpg(group, sig)
        else:  # Windows: no process groups to signal; the process itself
            os.kill(group, signal.SIGTERM)


def run_launcher(
    command: list[str],
    env: dict[str, str],
    *,
    timeout: float,
    echo: Callable[[str], None] | None = None,
    what: str = "case",
) -> RankOutput:
    """Run the launcher to the end within `timeout` seconds; raise LaunchError on a failure."""
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,  # its own group: one killpg stops every rank
    )
    output = RankOutput(echo=echo)
    tail: collections.deque[str] = collections.deque(maxlen=400)  # torchrun's summary

    def read() -> None:
        for line in process.stdout:
            tail.append(line)
            output.add(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    started = time.monotonic()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        reader.join(timeout=5)
        raise LaunchError(
            f"{what}: no result after {timeout:.0f} s (--ftb-launch-timeout); every rank was "
            f"killed. Last lines of rank 0: {_lines(output.last(0))}"
        ) from None
    except BaseException:  # Ctrl-C, SIGTERM (interrupt.py makes it KeyboardInterrupt)
        kill_group(process)
        raise
    reader.join(timeout=5)
    kill_group(process)  # nothing of it may outlive the case
    if process.returncode != 0:
        seconds = time.monotonic() - started
        found = failed_rank("".join(tail))
        if found is None:
            raise LaunchError(
                f"{what}: the launcher exited with {process.returncode} after {seconds:.0f} s. "
                f"Last lines: {_lines(output.last(None))}"
            )
        rank, exit_text = found
        raise LaunchError(
            f"{what}: rank {rank} failed ({exit_text}) after {seconds:.0f} s; the other ranks "
            f"were stopped and no record was kept. Last lines of rank {rank}: "
            f"{_lines(output.last(rank))}"
        )
    return output


def _lines(lines: list[str]) -> str:
    return ("\n    " + "\n    ".join(lines)) if lines else "(none)"


def launch_case(
    spec: CaseSpec,
    data_args: Sequence[str],
    *,
    config_file: str | None = None,
    timeout: float = 3600.0,
    echo: Callable[[str], None] | None = None,
    extra_args: Sequence[str] = (),
) -> CaseResult | None:
    """Train `spec` in `spec.processes` processes; return rank 0's result.

    None when this machine is not the main one of a multi-machine config (its rank 0 is
    elsewhere and writes the record there). `extra_args` go to `ftbench.cli.run` as they are
    (`--cost-curve`). A task registered in this process only goes along as its class.
    """
    where = defined_in(spec.task)
    if where is not None:
        extra_args = [*extra_args, "--task-class", where[0]]
    paths = [where[1]] if where is not None else []
    if spec.processes == 1:
        return _launch_one(spec, [*data_args, *extra_args], timeout=timeout, echo=echo,
                           paths=paths)  # fmt: skip
    if config_file and not Path(config_file).is_file():
        raise ConfigError(f"--ftb-accelerate-config {config_file}: no such file")
    port = config_port(config_file)
    if port is None:
        port = free_port()
    # Rank 0 listens on the main machine; elsewhere the port is that machine's business.
    if _main_machine(config_file) and port_in_use(port):
        # Found before launch, not as a rendezvous timeout minutes later.
        raise LaunchError(
            f"{spec.case_id}: port {port} is already in use on this machine; free it or set "
            "another main_process_port in the accelerate config"
        )
    with tempfile.TemporaryDirectory(prefix="ftbench-launch-") as work:
        spec_path = write_spec(spec, Path(work) / "spec.json")
        record_path = Path(work) / "record.json"
        run_args = ["--case-spec", str(spec_path), "--record", str(record_path), *data_args,
                    *extra_args]  # fmt: skip
        command = launch_command(
            spec.processes,
            run_args,
            port=None if config_port(config_file) else port,
            config_file=config_file,
            log_dir=str(Path(work) / "logs"),
        )
        env = child_environment(spec.processes, spec.device, paths)
        run_case(command, env, record_path, timeout=timeout, echo=echo, what=spec.case_id)
        if not record_path.exists():
            if _main_machine(config_file):
                raise LaunchError(f"{spec.case_id}: every rank exited 0 but rank 0 wrote no record")
            return None
        result = CaseResult.from_record(read_record(record_path))
    result.distributed = {
        **(result.distributed or {}),
        "launcher": "accelerate launch",
        "accelerate_config": str(Path(config_file).resolve()) if config_file else None,
        "command": shlex.join(["python", *command[1:]]),  # its temporary paths are gone
    }
    return result


def error_path(record: str | Path) -> Path:
    """Where a launched case's rank 0 leaves the ftbench error it stopped on, for the parent."""
    return Path(str(record) + ".error.json")


def run_case(
    command: list[str],
    env: dict[str, str],
    record: Path,
    *,
    timeout: float,
    echo: Callable[[str], None] | None,
    what: str,
) -> None:
    """`run_launcher`; a case that stopped on an ftbench error fails with that error."""
    try:
        run_launcher(command, env, timeout=timeout, echo=echo, what=what)
    except LaunchError:
        raise_child_error(record)
        raise


def raise_child_error(record: Path) -> None:
    """Raise the ftbench error the launched case stopped on (out of memory, a NaN loss, bad
    data), so it fails as it would in-process; return when it left none (a crash)."""
    path = error_path(record)
    if not path.exists():
        return
    error = json.loads(path.read_text(encoding="utf-8"))
    raise error_named(error.get("error", ""), error.get("message", "")) from None


def _launch_one(
    spec: CaseSpec,
    args: Sequence[str],
    *,
    timeout: float,
    echo: Callable[[str], None] | None,
    paths: Sequence[str] = (),
) -> CaseResult:
    """Train `spec` in one fresh `python -m ftbench.cli.run`: nothing the parent loaded,
    allocated or compiled before is in the process that is timed."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ftbench-fresh-") as work:
        spec_path = write_spec(spec, Path(work) / "spec.json")
        record_path = Path(work) / "record.json"
        command = [sys.executable, "-m", "ftbench.cli.run", "--case-spec", str(spec_path),
                   "--record", str(record_path), *args]  # fmt: skip
        env = child_environment(1, spec.device, paths)
        run_case(command, env, record_path, timeout=timeout, echo=echo, what=spec.case_id)
        if not record_path.exists():
            raise LaunchError(f"{spec.case_id}: the fresh process exited 0 but wrote no record")
        result = CaseResult.from_record(read_record(record_path))
    # What isolation costs: the child's wall time beyond its own phases is start-up and loading.
    result.times["fresh_process_seconds"] = time.monotonic() - started
    result.machine = {**result.machine, "timed_in": "a fresh process"}
    # The run's commit and command are the parent's (the tree may change while it runs).
    result.environment = {**result.environment, "git": git_state(), "argv": list(sys.argv)}
    return result


def _main_machine(config_file: str | None) -> bool:
    if not config_file:
        return True
    import yaml

    config = yaml.safe_load(Path(config_file).read_text(encoding="utf-8")) or {}
    return int(config.get("machine_rank", 0) or 0) == 0


def option_args(get: Callable[[str], Any], names: Sequence[str]) -> list[str]:
    """`--name value` for the options in `names` that are set: what ftbench.cli.run needs besides
    the spec (where the data is), from the one option table."""
    args: list[str] = []
    for option in OPTIONS:
        if option.name not in names:
            continue
        value = get(option.dest)
        if value is None or value == option.default:
            continue
        if isinstance(value, list | tuple):
            value = ",".join(map(str, value))
        args += [f"--{option.name}", str(value)]
    return args


# What a launched case reads besides its spec: its data.
DATA_OPTIONS = (
    "data-dir", "train-file", "validation-file", "test-file", "text-columns", "label-column",
    "prompt-column", "completion-column", "chosen-column", "rejected-column", "preference-data",
    "hub-dataset", "hub-config",
)  # fmt: skip
