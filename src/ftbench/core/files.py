"""Files several runs write: atomic writes, a lock to read-change-write under, a writable check.

    from ftbench.core.files import locked, write_json_atomic
    write_json_atomic(path, data)         # beside it, fsync, rename: never a half-written file
    with locked(path):                    # .name.lock beside it; waits for other holders
        data = read(path)                 # re-read under the lock: another run may have written
        data.update(mine)
        write_json_atomic(path, data)

Also for directories that runs fill (a converted-model cache): `with locked(cache_dir):`.
The lock is `filelock`'s (an OS file lock, released if the process dies), so two runs side by
side merge their writes instead of the last one dropping the first one's.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ftbench.core.errors import ConfigError, FtbenchError

LOCK_TIMEOUT_SECONDS = 600.0  # a baseline write takes milliseconds; this is a stuck holder


@contextmanager
def locked(path: str | Path, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[Path]:
    """Hold `.<name>.lock` beside `path` (a file or a directory) while the block runs.

    The lock file stays (removing it would race with the next holder); it is hidden, and
    .gitignore keeps it out of committed baselines.
    """
    from filelock import FileLock, Timeout

    path = Path(path)
    lock_path = path.with_name(f".{path.name}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(lock_path), timeout=timeout):
            yield path
    except Timeout:
        raise FtbenchError(
            f"{lock_path}: another process has held this lock for {timeout:.0f} s; if none is "
            "running, delete the lock file"
        ) from None


def write_json_atomic(path: Path, data: Any) -> Path:
    """Serialise first, then write beside `path`, fsync and rename: never a half-written file."""
    text = json.dumps(data, indent=2, default=_jsonable) + "\n"
    return write_text_atomic(Path(path), text)


def write_text_atomic(path: Path, text: str) -> Path:
    """Write to a temporary file beside `path`, fsync, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy and torch scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def check_writable(directory: str | Path, option: str) -> Path:
    """Create `directory` if needed and write a file in it, so an unwritable one stops the run
    before any training rather than after the first case."""
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".ftbench-write-check-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"{option} {path}: can't write there ({reason}); choose a directory you can write"
        ) from None
    return path
