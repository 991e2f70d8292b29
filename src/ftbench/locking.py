"""A file lock for files that several runs write: read, change and write them under it.

    from ftbench.locking import locked
    with locked(path):                    # .name.lock beside it; waits for other holders
        data = read(path)                 # re-read under the lock: another run may have written
        data.update(mine)
        write_json_atomic(path, data)

Also for directories that runs fill (a converted-model cache): `with locked(cache_dir):`.
The lock is `filelock`'s (an OS file lock, released if the process dies), so two runs side by
side merge their writes instead of the last one dropping the first one's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ftbench.errors import FtbenchError

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
