"""Inside a launched case: which rank this is, and every rank's timing gathered to rank 0.

Each rank runs its own StepTimer on its share of every global batch; DDP's gradient all-reduce
keeps the ranks in step, and a barrier at both ends of the timed window lines their clocks up.
After training, `gather_window` hands rank 0 every rank's window, and `merge_windows` makes
the case's figures from them: samples and tokens summed over ranks (global), each step as long
as its slowest rank, the window as long as the longest. One process: nothing changes.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from ftbench.env.contention import busy_threshold


def world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a launcher."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def is_distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    """Wait for every rank (no-op in one process), so the ranks' windows open and close together."""
    if is_distributed():
        import torch.distributed as dist

        dist.barrier()


def backend() -> str | None:
    if not is_distributed():
        return None
    import torch.distributed as dist

    return str(dist.get_backend())


def gather_window(window: dict[str, Any], extra: dict[str, Any]) -> list[dict[str, Any]]:
    """Every rank's timing window and `extra` (memory, contention), in rank order, on every
    rank. One process: just this one."""
    import torch

    mine = {
        "rank": world()[0],
        "host": socket.gethostname(),
        "threads": torch.get_num_threads(),
        "window": window,
        **extra,
    }
    if not is_distributed():
        return [mine]
    import torch.distributed as dist

    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, mine)
    return gathered


def merge_windows(ranks: list[dict[str, Any]]) -> dict[str, Any]:
    """One window for the case from every rank's: global samples and tokens, the slowest
    rank's time. Rank 0's padded batches stand for the rest (the same collator on each)."""
    windows = [r["window"] for r in ranks]
    if len(windows) == 1:
        return dict(windows[0])
    steps = min(len(w["step_seconds"]) for w in windows)
    step_seconds = [max(w["step_seconds"][i] for w in windows) for i in range(steps)]
    step_samples = [sum(w["step_samples"][i] for w in windows) for i in range(steps)]
    seconds = max(w["timed_seconds"] for w in windows)
    counted = ("timed_samples", "real_tokens", "padded_tokens")
    total = {k: sum(w[k] for w in windows) for k in counted}
    merged = dict(windows[0])
    merged.update(
        total,
        timed_seconds=seconds,
        step_seconds=step_seconds,
        step_samples=step_samples,
        train_samples_per_second=total["timed_samples"] / seconds,
        train_tokens_per_second=total["real_tokens"] / seconds,
        train_padded_tokens_per_second=total["padded_tokens"] / seconds,
        batches=[b for w in windows for b in w["batches"]],
    )
    return merged


def summary(ranks: list[dict[str, Any]], spec: Any, merged: dict[str, Any]) -> dict[str, Any]:
    """The record's `distributed` section: the processes, the batch split, per-process rates
    and every rank's own step times."""
    processes = len(ranks)
    return {
        "processes": processes,
        "world_size": processes,
        "machines": len({r["host"] for r in ranks}),
        "backend": backend(),
        "per_device_batch_size": spec.per_device_batch_size,
        "global_batch_size": spec.per_device_batch_size * processes,
        "batch": (
            "global batch kept: each process takes the job's batch / processes, so the optimizer "
            "steps and what they see match one process"
        ),
        "threads_per_process": [r["threads"] for r in ranks],
        "samples_per_second_per_process": merged["train_samples_per_second"] / processes,
        "tokens_per_second_per_process": merged["train_tokens_per_second"] / processes,
        "ranks": [
            {
                "rank": r["rank"],
                "host": r["host"],
                "timed_samples": r["window"]["timed_samples"],
                "timed_seconds": r["window"]["timed_seconds"],
                "real_tokens": r["window"]["real_tokens"],
                "train_samples_per_second": r["window"]["train_samples_per_second"],
                "step_seconds": r["window"]["step_seconds"],
                "step_samples": r["window"]["step_samples"],
                "peak_bytes": (r.get("memory") or {}).get("peak_bytes"),
            }
            for r in ranks
        ],
    }


def merge_contention(ranks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Rank 0's contention figures, with its sibling ranks on the same host not counted as
    'other processes': they are the case."""
    mine = ranks[0].get("contention")
    if not mine or len(ranks) == 1:
        return mine

    siblings = sum(
        (r.get("contention") or {}).get("own_cores", 0.0)
        for r in ranks[1:]
        if r["host"] == ranks[0]["host"]
    )
    merged = dict(mine)
    merged["other_cores"] = max(mine["other_cores"] - siblings, 0.0)
    merged["own_cores"] = mine["own_cores"] + siblings
    threshold = busy_threshold(mine["cpu_count"])
    if "gpu" in mine:
        ours = {r.get("pid") for r in ranks}
        others = [p for p in mine["gpu"].get("other_processes", []) if p.get("pid") not in ours]
        if "other_processes" in mine["gpu"]:  # absent: NVML could not tell
            merged["gpu"] = {**mine["gpu"], "other_processes": others}
        merged["busy"] = bool(others) or merged["other_cores"] >= mine["cpu_count"] / 2
    else:
        merged["busy"] = merged["other_cores"] >= threshold
    return merged
