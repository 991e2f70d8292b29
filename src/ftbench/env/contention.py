"""What else used the device while a case was timed: other processes, not ftbench's code.

    from ftbench.env.contention import CpuWindow, wait_until_idle
    window = CpuWindow.start()
    ...                                   # the timed steps
    figures = window.stop()               # {"other_cores": 1.7, "cpu_count": 2, "busy": True, ...}
    wait_until_idle("cpu", limit=60)      # None once the machine is quiet, else the last figures

On a CPU, other processes' share is the system-wide CPU time (psutil.cpu_times, steal included:
a hypervisor giving our cores to other guests is contention too) less this process's own
(threads and waited-for children included), over the window's wall time. On CUDA, other
processes holding a context on the device are listed through NVML where pynvml is installed;
without it GPU contention is not measured, and the record says so.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Any

# Busy: other processes used at least this many cores on average, or this share of all cores.
BUSY_CORES = 0.25
BUSY_SHARE = 0.10
IDLE_POLL_SECONDS = 1.0
# NVML's memory of a process beyond torch's reserved memory: the CUDA context and libraries.
CONTEXT_BYTES = 3 << 30


def busy_threshold(cpu_count: int) -> float:
    return max(BUSY_CORES, BUSY_SHARE * cpu_count)


def _system_busy_seconds() -> float:
    import psutil

    t = psutil.cpu_times()
    return sum(
        getattr(t, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal")
    )


def _own_seconds() -> float:
    import psutil

    t = psutil.Process().cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def _steal_seconds() -> float:
    import psutil

    return getattr(psutil.cpu_times(), "steal", 0.0)


@dataclass
class CpuWindow:
    """CPU time of the whole machine and of this process between `start()` and `stop()`."""

    wall: float
    system: float
    own: float
    steal: float

    @classmethod
    def start(cls) -> CpuWindow:
        return cls(time.perf_counter(), _system_busy_seconds(), _own_seconds(), _steal_seconds())

    def stop(self) -> dict[str, Any]:
        wall = max(time.perf_counter() - self.wall, 1e-9)
        system = _system_busy_seconds() - self.system
        own = _own_seconds() - self.own
        cpu_count = os.cpu_count() or 1
        other = max(system - own, 0.0) / wall
        return {
            "seconds": wall,
            "cpu_count": cpu_count,
            "own_cores": own / wall,
            "other_cores": other,
            "steal_cores": max(_steal_seconds() - self.steal, 0.0) / wall,
            "busy_threshold_cores": busy_threshold(cpu_count),
            "busy": other >= busy_threshold(cpu_count),
        }


def gpu_others(device: str) -> dict[str, Any] | None:
    """Other processes with a compute context on the CUDA device (NVML), or None if unknown."""
    if device != "cuda":
        return None
    try:
        import pynvml
    except ImportError:
        return {"measured": False, "why": "pynvml is not installed"}
    try:
        pynvml.nvmlInit()
        try:
            handle = _nvml_handle(pynvml)
            running = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
            utilisation = pynvml.nvmlDeviceGetUtilizationRates(handle).gpu
        finally:
            pynvml.nvmlShutdown()
    except Exception as exc:  # NVML absent in containers, or the driver refuses: not measured
        return {"measured": False, "why": f"NVML: {exc}"}
    processes = [{"pid": p.pid, "memory_bytes": p.usedGpuMemory} for p in running]
    others, host_ids = other_processes(processes, os.getpid(), _own_gpu_bytes())
    parent = launching_parent()
    if parent is not None:  # the pytest that launched this case waits for it, idle
        others, parent_host_ids = other_processes(others, *parent)
        host_ids = host_ids or parent_host_ids
    figures = {"measured": True, "other_processes": others, "utilisation_percent": utilisation}
    if host_ids:
        figures["host_pids"] = True
    return figures


def other_processes(
    processes: list[dict[str, Any]], pid: int, own_bytes: int | None
) -> tuple[list[dict[str, Any]], bool]:
    """The processes that are not this one, and whether NVML gave the host's process ids.

    The driver knows no PID namespaces: in a container NVML lists the host's ids, so our own
    id is missing and, without this, every case on a containerised GPU runner would count
    itself as a neighbour and never be gated. Then the entry whose memory is nearest ours is
    ours: NVML counts torch's reserved memory plus the context (a few hundred MB). An entry
    outside that span is not ours, so when none fits, all count: a neighbour is never dropped.
    """
    if any(p["pid"] == pid for p in processes):
        return [p for p in processes if p["pid"] != pid], False
    if own_bytes is None:  # no CUDA context here: none of them is ours
        return processes, False
    fits = [
        p
        for p in processes
        if p["memory_bytes"] is not None
        and own_bytes <= p["memory_bytes"] <= own_bytes + CONTEXT_BYTES
    ]
    if not fits:
        return processes, bool(processes)
    ours = min(fits, key=lambda p: p["memory_bytes"] - own_bytes)
    return [p for p in processes if p is not ours], True


PARENT_PID = "FTBENCH_PARENT_PID"
PARENT_GPU_BYTES = "FTBENCH_PARENT_GPU_BYTES"


def parent_variables() -> dict[str, str]:
    """What a launched case needs to know its parent: a pytest that may hold a CUDA context of
    its own (earlier cases ran in it) is not a neighbour of the case it waits for."""
    variables = {PARENT_PID: str(os.getpid())}
    if "torch" in sys.modules:
        own = _own_gpu_bytes() if sys.modules["torch"].cuda.is_available() else None
        if own is not None:
            variables[PARENT_GPU_BYTES] = str(own)
    return variables


def launching_parent() -> tuple[int, int | None] | None:
    """The launching process's id and reserved CUDA bytes (`parent_variables`), if any."""
    pid = os.environ.get(PARENT_PID)
    if not pid or not pid.isdigit():
        return None
    own = os.environ.get(PARENT_GPU_BYTES)
    return int(pid), int(own) if own and own.isdigit() else None


def _own_gpu_bytes() -> int | None:
    """This process's reserved CUDA memory on its device, or None without a CUDA context."""
    import torch

    if not torch.cuda.is_initialized():
        return None
    return int(torch.cuda.memory_reserved())


def _nvml_handle(pynvml: Any) -> Any:
    """NVML's handle of this process's CUDA device. NVML numbers devices physically, and
    CUDA_VISIBLE_DEVICES may remap ours, by index or by UUID (GPU-..., MIG-...)."""
    import torch

    current = torch.cuda.current_device() if torch.cuda.is_initialized() else 0
    visible = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")]
    ours = visible[current] if visible[0] and current < len(visible) else str(current)
    if ours.isdigit():
        return pynvml.nvmlDeviceGetHandleByIndex(int(ours))
    return pynvml.nvmlDeviceGetHandleByUUID(ours)


class DeviceWindow:
    """Contention over a timed window: CPU time on every device (the host feeds the GPU too),
    and other GPU processes at both ends on CUDA."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.gpu_before = gpu_others(device)
        self.cpu = CpuWindow.start()

    def stop(self) -> dict[str, Any]:
        figures = self.cpu.stop()
        gpu_after = gpu_others(self.device)
        if gpu_after is not None:
            measured = [g for g in (self.gpu_before, gpu_after) if g and g.get("measured")]
            pids = {p["pid"]: p for g in measured for p in g["other_processes"]}
            figures["gpu"] = dict(gpu_after)
            if measured:  # unmeasured is unknown, not "no other processes"
                figures["gpu"]["other_processes"] = list(pids.values())
            # On a GPU the host's other load matters less than another process on the device.
            figures["busy"] = bool(pids) or figures["other_cores"] >= figures["cpu_count"] / 2
        return figures


def describe(figures: dict[str, Any]) -> str:
    """`other processes used 1.7 of 2 cores` (and GPU processes, where there were any)."""
    parts = [f"other processes used {figures['other_cores']:.1f} of {figures['cpu_count']} cores"]
    if figures.get("steal_cores", 0) >= 0.05:
        parts[0] += f" ({figures['steal_cores']:.1f} stolen by the hypervisor)"
    others = (figures.get("gpu") or {}).get("other_processes") or []
    if others:
        pids = ", ".join(str(p["pid"]) for p in others[:5])
        host = ", the host's ids" if (figures.get("gpu") or {}).get("host_pids") else ""
        parts.append(f"{len(others)} other process(es) on the GPU (pid {pids}{host})")
    return "; ".join(parts)


def wait_until_idle(
    device: str, limit: float, poll: float = IDLE_POLL_SECONDS
) -> dict[str, Any] | None:
    """Poll until other processes leave the device alone; None when they do within `limit`
    seconds, else the last window's figures."""
    deadline = time.monotonic() + limit
    while True:
        window = DeviceWindow(device)
        time.sleep(poll)
        figures = window.stop()
        if not figures["busy"]:
            return None
        if time.monotonic() >= deadline:
            return figures
