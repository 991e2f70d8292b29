"""Gates on a case's numbers. For now: the profile's absolute accuracy and F1 floors.

from ftbench.baselines import check_floors
check_floors(result, profile.job("finetune"))   # raises AccuracyFloorError below a floor
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ftbench.errors import AccuracyFloorError

if TYPE_CHECKING:
    from ftbench.profiles import Job
    from ftbench.results import CaseResult


def check_floors(result: CaseResult, job: Job) -> list[str]:
    """Compare accuracy and F1 with the job's floors; return what was checked, raise on a miss.

    Floors say nothing about random weights, and are dropped when options change the recipe.
    """
    if not result.accuracy_meaningful or job.floors_off:
        return []
    checked, misses = [], []
    for metric, floor in (("eval_accuracy", job.min_accuracy), ("eval_f1", job.min_f1)):
        if floor is None:
            continue
        value = result.metrics.get(metric)
        line = f"{metric} {value:.4f} (floor {floor})" if value is not None else f"{metric} missing"
        checked.append(line)
        if value is None or value < floor:
            misses.append(line)
    if misses:
        raise AccuracyFloorError(
            f"{result.case_id}: below the {result.profile} profile's floor: {'; '.join(misses)}. "
            f"All checked: {'; '.join(checked)}."
        )
    return checked
