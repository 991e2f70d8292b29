"""A case's numbers and status as JUnit XML properties, for tools that read them per test.

    pytest bench/ --junitxml=bench.xml      # <property name="ftb.train_samples_per_second" ...>

The plugin calls `add_properties` after each benchmark test's call phase (passed or failed);
pytest's junitxml writes `item.user_properties` into the test's <properties>.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

    from ftbench.core.record import CaseResult

PREFIX = "ftb."


def case_properties(result: CaseResult) -> list[tuple[str, Any]]:
    """The headline numbers of one result, rounded for people; missing ones left out."""
    t, padding, memory = result.throughput or {}, result.padding or {}, result.memory or {}
    spread = t.get("samples_per_second_spread") or {}
    values: list[tuple[str, Any]] = [
        ("case_id", result.case_id),
        ("seed", result.training.get("seed")),
        ("train_samples_per_second", _round(t.get("train_samples_per_second"))),
        ("train_samples_per_second_q1", _round(spread.get("q1"))),
        ("train_samples_per_second_q3", _round(spread.get("q3"))),
        ("train_tokens_per_second", _round(t.get("train_tokens_per_second"))),
        ("padding_efficiency", _round(padding.get("efficiency"))),
        ("peak_memory_mib", _round((memory.get("peak_bytes") or 0) / 2**20) or None),
        ("mfu", _round(result.utilisation.get("mfu"))),
    ]
    if result.accuracy_meaningful:
        values += [
            ("eval_accuracy", _round(result.metrics.get("eval_accuracy"))),
            ("eval_f1", _round(result.metrics.get("eval_f1"))),
        ]
    return [(PREFIX + name, value) for name, value in values if value is not None]


def add_properties(item: pytest.Item, statuses: dict[str, str] | None = None) -> None:
    """Every measurement of the item's case (seeds, a re-measure), and the gate's verdict."""
    case = getattr(item, "funcargs", {}).get("ftb_case")
    if case is None:
        return
    status = (statuses or {}).get(case.spec.case_id)
    for index, result in enumerate(case.results):
        suffix = f".{index}" if index else ""  # later seeds and re-measures, numbered
        item.user_properties += [(name + suffix, v) for name, v in case_properties(result)]
    if status:
        item.user_properties.append((PREFIX + "baseline", status))


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value
