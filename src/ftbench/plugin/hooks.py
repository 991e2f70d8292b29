"""The hook ftbench adds to pytest, for a conftest.py to register its own tasks.

    # conftest.py
    def pytest_ftbench_register_tasks(register):
        from my_tasks import Kto
        register(Kto)

It is called before each job file is read, so conftest.py files anywhere above a job file count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def pytest_ftbench_register_tasks(register: Callable[[Any], Any]) -> None:
    """Register tasks of your own: call `register(TaskSubclass)` for each
    (`ftbench.tasks.register_task`)."""
