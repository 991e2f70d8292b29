"""GRPO's reward functions for GSM8K: plain functions a user can read, test and reuse.

    from ftbench.tasks.rewards import correct_answer, answer_format
    correct_answer(completions=["... \\n#### 72"], answer=["72"])   # [1.0]
    answer_format(completions=["... \\n#### 72"])                     # [1.0]

TRL calls each as `f(prompts=..., completions=..., **columns)` and wants one float a
completion. A completion is the model's text (or a chat message list, whose last content is
read). The prompt asks for the final answer on a last line `#### <number>`, GSM8K's own
convention, so both rewards read the same line.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

from ftbench.core.errors import RewardFunctionError
from ftbench.stack.rows import INSTRUCTION, number, reference_answer

__all__ = [
    "INSTRUCTION",
    "REWARDS",
    "answer_format",
    "correct_answer",
    "number",
    "reference_answer",
]

# `#### 1,234.50`, `#### $72`, `#### -3`: GSM8K writes numbers with thousands separators.
ANSWER_LINE = re.compile(r"^\s*####\s*\$?\s*(-?[\d,]*\.?\d+)\s*$", re.MULTILINE)


def final_answer(completion: str) -> float | None:
    """The number on the completion's last `#### <number>` line, or None."""
    found = ANSWER_LINE.findall(completion)
    return number(found[-1]) if found else None


def _text(completion: Any) -> str:
    if isinstance(completion, list):  # chat messages: the assistant's reply
        return completion[-1]["content"] if completion else ""
    return completion


def correct_answer(completions: list[Any], answer: list[str], **_: Any) -> list[float]:
    """1 where the final `#### <number>` equals the reference answer, else 0."""
    rewards = []
    for completion, reference in zip(completions, answer, strict=True):
        got, want = final_answer(_text(completion)), number(reference)
        rewards.append(1.0 if got is not None and want is not None and got == want else 0.0)
    return rewards


def answer_format(completions: list[Any], **_: Any) -> list[float]:
    """1 where the completion ends with a `#### <number>` line; 0.5 where such a line appears
    but text follows it (the model went on after answering); else 0."""
    rewards = []
    for completion in completions:
        text = _text(completion).rstrip()
        lines = ANSWER_LINE.findall(text)
        if not lines:
            rewards.append(0.0)
        elif ANSWER_LINE.fullmatch(text.rsplit("\n", 1)[-1]):
            rewards.append(1.0)
        else:
            rewards.append(0.5)
    return rewards


REWARDS = (correct_answer, answer_format)


def checked(function: Any, case_id: str) -> Any:
    """`function`, with what it raises or returns wrong turned into a RewardFunctionError that
    names the case and the function (TRL names reward functions by `__name__`)."""
    name = getattr(function, "__name__", repr(function))

    @functools.wraps(function)
    def reward(*args: Any, completions: list[Any], **kwargs: Any) -> list[float]:
        where = f"{case_id}: reward function {name!r}"
        try:
            values = list(function(*args, completions=completions, **kwargs))
        except Exception as exc:
            raise RewardFunctionError(f"{where} raised {type(exc).__name__}: {exc}") from exc
        if len(values) != len(completions):
            raise RewardFunctionError(
                f"{where} returned {len(values)} values for {len(completions)} completions; "
                "it must return one number per completion"
            )
        bad = [v for v in values if v is not None and not _finite(v)]
        if bad:
            raise RewardFunctionError(f"{where} returned non-numbers or NaN: {bad[:3]}")
        return values

    return reward


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
