"""Recording baselines: stage each passing case's entry, write them all at the end, or none.

    recorder = BaselineRecorder(BaselineStore("results/baselines"))
    recorder.stage(hardware_id, "smoke", case_id, results, job)
    recorder.write(outcomes, interrupted=False)     # the case ids written
    recorder.report                                  # lines for the summary

A run with a failed case, or an interrupted one, never becomes the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ftbench.judge.baselines import entry_from_results

if TYPE_CHECKING:
    from ftbench.config.profiles import Job
    from ftbench.core.record import CaseResult
    from ftbench.judge.baselines import BaselineStore


@dataclass
class BaselineRecorder:
    store: BaselineStore
    staged: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    report: list[str] = field(default_factory=list)

    def stage(
        self, hardware_id: str, profile: str, case_id: str, results: list[CaseResult], job: Job
    ) -> None:
        entry = entry_from_results(results, job)
        self.staged.setdefault((hardware_id, profile), {})[case_id] = entry

    def write(self, outcomes: dict[str, str], interrupted: bool) -> list[str]:
        """Write the staged entries (each file under its lock), unless a case failed or the
        run was interrupted; return the case ids written."""
        if interrupted:
            self.report.append("baselines NOT updated: the run was interrupted")
            return []
        failed = sorted(n for n, outcome in outcomes.items() if outcome == "failed")
        if failed:
            self.report.append(
                f"baselines NOT updated: {len(failed)} case(s) failed, and a broken run never "
                f"becomes the baseline ({', '.join(failed)})"
            )
            return []
        written = []
        for (hardware_id, profile), entries in self.staged.items():
            path = self.store.update(hardware_id, profile, entries)
            self.report.append(f"baselines updated: {path} ({len(entries)} case(s))")
            written += list(entries)
        return written
