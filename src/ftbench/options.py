"""Types for ftbench's command-line options. argparse calls them, so a bad value becomes a
usage error that names the option, before any work starts."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ftbench.devices import DEVICES, PRECISIONS
from ftbench.methods import METHODS
from ftbench.padding import STRATEGIES


def list_of(kind: Callable[[str], Any], length: int | None = None) -> Callable[[str], list]:
    def parse(text: str) -> list:
        values = [kind(v.strip()) for v in text.split(",") if v.strip()]
        if not values or (length is not None and len(values) != length):
            raise ValueError(text)
        return values

    parse.__name__ = f"comma-separated list{f' of {length}' if length else ''}"
    return parse


def choices_of(allowed: Iterable[str], what: str) -> Callable[[str], list[str]]:
    allowed = tuple(allowed)

    def parse(text: str) -> list[str]:
        import argparse

        values = list_of(str)(text)
        unknown = [v for v in values if v not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(unknown)}; choose from {', '.join(allowed)}"
            )
        return values

    return parse


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


def float_value(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


def seconds(text: str) -> float:
    """Zero or more seconds."""
    value = float(text)
    if not value >= 0:
        raise ValueError(text)
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise ValueError(text)
    return value


padding_names = choices_of(STRATEGIES, "padding strategy")
method_names = choices_of(METHODS, "method")
device_names = choices_of(DEVICES, "device")
precision_names = choices_of(PRECISIONS, "precision")
