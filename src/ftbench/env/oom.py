"""An out-of-memory case fails alone: it says what it wanted, and gives its memory back.

    from ftbench.env.oom import describe_oom, release
    describe_oom(exc, "cuda")   # "it asked for 2.00 GiB more with 37.2 GiB in use (peak ...)"
    release(error)              # drop the frames that hold the model, activations, optimizer

pytest keeps a failed test's exception (and `sys.last_traceback`) until the next failure; its
frames hold the case's model, optimizer state and activations. `release` clears those frames
and empties the CUDA cache, so the next case starts with the device's memory free.
"""

from __future__ import annotations

import re

_WANTED = re.compile(r"Tried to allocate ([\d.]+ ?[KMGT]?i?B)")


def _gib(value: float) -> str:
    return f"{value / 2**30:.2f} GiB"


def describe_oom(exc: BaseException, device: str) -> str:
    """What the failed allocation asked for, and what was in use, as far as the device says."""
    parts = []
    wanted = _WANTED.search(str(exc))
    if wanted:
        parts.append(f"it asked for {wanted.group(1)} more")
    if device == "cuda":
        import torch

        if torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            parts.append(
                f"with {_gib(torch.cuda.memory_allocated())} allocated (peak "
                f"{_gib(torch.cuda.max_memory_allocated())}) and {_gib(free)} free of "
                f"{_gib(total)}"
            )
    else:
        import psutil

        memory = psutil.virtual_memory()
        parts.append(
            f"with the process at {_gib(psutil.Process().memory_info().rss)} and "
            f"{_gib(memory.available)} available of {_gib(memory.total)}"
        )
    return ", ".join(parts) or "the device gave no figures"


def release(error: BaseException) -> None:
    """Clear the finished frames an exception chain holds, collect, empty the CUDA cache."""
    import gc
    import sys
    import traceback

    seen: set[int] = set()
    exc: BaseException | None = error
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if exc.__traceback__ is not None:
            traceback.clear_frames(exc.__traceback__)
        exc = exc.__cause__ or exc.__context__
    gc.collect()
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
