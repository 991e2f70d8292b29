"""Ctrl-C and SIGTERM: stop at once, keep what finished, say what ran, touch no baseline.

SIGTERM (a CI cancel) is turned into KeyboardInterrupt, so it takes pytest's own interrupt
path: the case under way stops (a throughput case's training thread too, see
`callbacks.RoundGate.stop`), its record is never written, pytest still runs the session's end
and prints the summary, and `FtbSession.finish` sees `was_interrupted` and writes no baseline.
A second signal interrupts whatever the first one left running.

The plugin registers an `InterruptGuard` in `pytest_configure`; it installs the handler there
and restores the previous one in `pytest_unconfigure`.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import pytest

GUARD_KEY = pytest.StashKey["InterruptGuard"]()


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"{signal.Signals(signum).name} received")


class InterruptGuard:
    """A small pytest plugin object: the SIGTERM handler, and what was running when stopped."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.interrupted: str | None = None
        self.running: str | None = None
        self._previous: Any = None
        # Signal handlers belong to the main thread; elsewhere (pytest run in a thread) skip.
        if threading.current_thread() is threading.main_thread():
            current = signal.getsignal(signal.SIGTERM)
            if current in (signal.SIG_DFL, None):  # never replace a handler someone installed
                self._previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.running = nodeid

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.running = None

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self.interrupted = str(excinfo.value) or "KeyboardInterrupt"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.interrupted is None:
            return
        where = f" during {self.running}, which left no record" if self.running else ""
        terminalreporter.write_line(
            f"ftbench: run interrupted ({self.interrupted}){where}; the cases above finished "
            "and are recorded",
            red=True,
            bold=True,
        )


def install(config: pytest.Config) -> None:
    guard = InterruptGuard(config)
    config.stash[GUARD_KEY] = guard
    config.pluginmanager.register(guard, "ftbench-interrupt")


def uninstall(config: pytest.Config) -> None:
    guard = config.stash.get(GUARD_KEY, None)
    if guard is not None:
        guard.restore()


def was_interrupted(config: pytest.Config) -> bool:
    guard = config.stash.get(GUARD_KEY, None)
    return guard is not None and guard.interrupted is not None
