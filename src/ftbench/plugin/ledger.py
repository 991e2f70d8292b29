"""What a run has done: its records, each case's outcome and status, and its baselines.

    ledger = Ledger(settings)
    ledger.record(nodeid, result)             # results/runs/<run>/<case>.json, atomically
    ledger.outcomes[nodeid], ledger.statuses[case_id]
    ledger.finish(interrupted)                # --ftb-update-baselines: all that passed, or none

The only writer of `statuses`: a case's own status (`Case.status`), REGRESSED or FAILED from
the error a case raised, and what happened to the baselines.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ftbench.core.errors import DeviceBusyError, RegressionError
from ftbench.core.record import CaseResult, RunStore
from ftbench.env.devices import hardware_id
from ftbench.judge.baselines import BaselineStore
from ftbench.judge.recording import BaselineRecorder

if TYPE_CHECKING:
    from ftbench.plugin.case import Case
    from ftbench.plugin.settings import Settings

# The status a case's error leaves in the summary and JUnit.
ERROR_STATUS = ((RegressionError, "REGRESSED"), (DeviceBusyError, "FAILED: device busy"))


class Ledger:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.results: list[tuple[str, CaseResult]] = []  # (nodeid, result), in order
        self.outcomes: dict[str, str] = {}  # nodeid -> passed, failed, skipped
        self.statuses: dict[str, str] = {}  # case id -> the gate's word
        self._store: RunStore | None = None
        self._baselines: BaselineStore | None = None
        self._hardware: dict[str, str] = {}
        self._recorder: BaselineRecorder | None = None

    # -- records ---------------------------------------------------------------------------------

    @property
    def store(self) -> RunStore:
        if self._store is None:
            self._store = RunStore.create(self.settings.results_dir)
        return self._store

    def record(self, nodeid: str, result: CaseResult) -> Path:
        self.results.append((nodeid, result))
        return self.store.write(result)

    def case_status(self, case: Case, error: BaseException | None) -> None:
        """A case's status once its test ran: the gate's word, or the error's."""
        if case.status is not None:
            self.statuses[case.spec.case_id] = case.status
        for kind, status in ERROR_STATUS:
            if isinstance(error, kind):
                self.statuses[case.spec.case_id] = status

    # -- baselines -------------------------------------------------------------------------------

    def baseline_location(self, device: str, profile: str) -> tuple[BaselineStore, str, str]:
        """The baseline store, this device's hardware id and the profile: where a case's
        baseline entry is kept."""
        if device not in self._hardware:
            self._hardware[device] = hardware_id(device)
        return self.baselines, self._hardware[device], profile

    @property
    def baselines(self) -> BaselineStore:
        if self._baselines is None:
            self._baselines = BaselineStore(Path(self.settings.baselines_dir))
        return self._baselines

    @property
    def recorder(self) -> BaselineRecorder:
        if self._recorder is None:
            self._recorder = BaselineRecorder(self.baselines)
        return self._recorder

    @property
    def baseline_report(self) -> list[str]:
        """What happened to the baselines, for the summary; nothing when none were staged."""
        return self._recorder.report if self._recorder is not None else []

    def stage_baseline(self, case: Case) -> None:
        _, hardware, profile = self.baseline_location(case.spec.device, case.spec.profile)
        self.recorder.stage(hardware, profile, case.spec.case_id, case.results, case.job)

    def finish(self, interrupted: bool) -> None:
        """With --ftb-update-baselines: write what passed, or nothing if anything failed."""
        if not self.settings.updating_baselines:
            return
        for case_id in self.recorder.write(self.outcomes, interrupted):
            self.statuses[case_id] = "baseline recorded"
