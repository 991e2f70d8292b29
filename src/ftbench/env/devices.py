"""Devices and precisions: what this machine can run, and a fingerprint of what it is.

    from ftbench.env.devices import device_problem, precision_problem, environment
    device_problem("cuda")          # None, or why not ("torch.cuda.is_available() is False")
    precision_problem("cpu", "fp16")
    environment(profile="smoke")    # versions, device, CPU, git commit: stored with every record

An absent device or an unsupported pair is reported, never silently replaced by another.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DEVICES = ("cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "fp16")


def device_problem(device: str) -> str | None:
    """Why `device` can't run here, or None."""
    import torch

    if device == "cpu":
        return None
    if device == "cuda":
        if not torch.cuda.is_available():
            return "no CUDA device: torch.cuda.is_available() is False"
        if torch.cuda.device_count() > 1 and "CUDA_VISIBLE_DEVICES" not in os.environ:
            # Trainer would wrap the model in DataParallel over every GPU: not one device's number.
            return (
                f"{torch.cuda.device_count()} CUDA devices are visible; pick one with "
                "CUDA_VISIBLE_DEVICES=N so a case measures one device"
            )
        return None
    if device == "mps":
        if not torch.backends.mps.is_available():
            return "no MPS device: torch.backends.mps.is_available() is False"
        return None
    return f"unknown device {device!r}; ftbench knows {', '.join(DEVICES)}"


def precision_problem(device: str, precision: str) -> str | None:
    """Why `precision` (mixed-precision training) can't run on `device`, or None."""
    import torch

    if precision == "fp32":
        return None
    if precision not in PRECISIONS:
        return f"unknown precision {precision!r}; ftbench knows {', '.join(PRECISIONS)}"
    if device == "cuda":
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            return f"bf16 is not supported by {torch.cuda.get_device_name(0)}"
        return None
    if device == "cpu" and precision == "fp16":
        return "fp16 mixed precision needs CUDA or MPS; on CPU use bf16"
    if device == "mps" and precision == "bf16":
        return "bf16 autocast on MPS is not supported by Trainer; use fp16"
    return None


def training_device_arguments(device: str, precision: str) -> dict[str, Any]:
    """TrainingArguments that pin the device and the mixed-precision mode."""
    return {
        "use_cpu": device == "cpu",
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
    }


def synchronize(device: str) -> None:
    """Wait for queued device work, so a clock read after it measures finished work."""
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


# Dense bf16 tensor-core peaks from NVIDIA's datasheets, TFLOP/s. More specific names first.
GPU_PEAK_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100", 989.0),  # SXM
    ("H200", 989.0),
    ("A100", 312.0),
)


def gpu_peak_flops(name: str) -> float | None:
    """The table's peak for a CUDA device name, or None: an unknown device gets no MFU."""
    for key, tflops in GPU_PEAK_TFLOPS:
        if all(part.lower() in name.lower() for part in key.split()):
            return tflops * 1e12
    return None


def peak_flops(device: str) -> tuple[float | None, str]:
    """(peak FLOP/s, where the number comes from) for utilisation figures."""
    if device == "cuda":
        name = device_name(device)
        peak = gpu_peak_flops(name)
        if peak is None:
            return None, f"no peak known for {name}"
        return peak, f"{name}: {peak / 1e12:.0f} TFLOP/s dense bf16 (datasheet)"
    if device == "cpu":
        measured = measured_cpu_peak_flops()
        return measured, f"measured fp32 matmul peak of this CPU: {measured / 1e9:.1f} GFLOP/s"
    return None, f"no peak known for {device}"


@functools.lru_cache(maxsize=1)
def measured_cpu_peak_flops(size: int = 1024, seconds: float = 0.5) -> float:
    """The best fp32 matmul rate this CPU reaches, measured once per process."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm-up: threads, caches
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * size**3 / (time.perf_counter() - started))
    return best


def device_name(device: str) -> str:
    import torch

    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    if device == "mps":  # the chip, so an M1 and an M3 Max don't share baselines
        return f"{apple_chip()} GPU (MPS)"
    return cpu_model()


def apple_chip() -> str:
    """`Apple M2 Pro`: macOS's name for the chip, or `Apple arm64` where it can't be read."""
    import subprocess

    try:
        out = subprocess.run(
            ["sysctl", "-n", "machdep.cpu.brand_string"],
            capture_output=True, text=True, timeout=5, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return f"Apple {platform.machine()}"
    return out.stdout.strip() or f"Apple {platform.machine()}"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_id(device: str) -> str:
    """A stable id for baselines: the device model and core count, not the host name."""
    name = device_name(device)
    if device == "cpu":
        name = f"{name} {os.cpu_count()}c"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def environment(device: str = "cpu", profile: str | None = None) -> dict[str, Any]:
    """Everything a number depends on besides the case: versions, hardware, commit."""
    import torch

    versions = {"python": platform.python_version()}
    packages = ("torch", "transformers", "datasets", "accelerate", "tokenizers", "numpy")
    # peft, trl and bitsandbytes drive the lora, qlora and trainer cases: None when absent
    for package in (*packages, "peft", "trl", "bitsandbytes"):
        versions[package] = _version(package)
    env: dict[str, Any] = {
        "versions": versions,
        "device": device,
        "device_name": device_name(device),
        "hardware_id": hardware_id(device),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda,
        "cuda_driver": _cuda_driver() if device == "cuda" else None,
        "platform": platform.platform(),
        "git": git_state(),
        "profile": profile,
        "argv": sys.argv,
    }
    return env


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _cuda_driver() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


def git_state(cwd: str | Path | None = None) -> dict[str, Any]:
    """The commit and dirty flag, read once per process: the code a run imported is the code
    at its start, and edits or commits made while it runs must not relabel its records."""
    return dict(_git_state(cwd))


@functools.lru_cache(maxsize=8)
def _git_state(cwd: str | Path | None) -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}
