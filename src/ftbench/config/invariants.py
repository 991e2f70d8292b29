"""An invariants job's pairs: two specs that must train the same model, and their bounds.

    from ftbench.config.invariants import pairs_of, plan
    for pair in pairs_of(job, profile):
        pair.id, pair.a.spec, pair.b.spec, pair.bounds, pair.expected
    plan(job, profile)      # the pairs, and `Unbuilt(id, reason)` for those the job can't make

A job with `invariants:` trains its first checkpoint on its first device. Side a is the job's
recipe at its first padding (bucketed and packed group or pack rows, so never a side) and
precision (fp32 when listed) in one process; side b changes one thing. Each pair's sides start
from the same seed and see the same rows in the same order.

| invariant   | side b                                                                    |
| determinism | the same run again                                                        |
| resume      | stopped and saved at half the steps, resumed from the checkpoint          |
| grad-accum  | k micro-batches of batch/k, accumulated (k: 4, or 2 if 4 does not divide) |
| processes   | each other `processes` value, same global batch (gloo on the CPU)         |
| padding     | each other padding of the job but bucketed and packed                     |
| precision   | each other precision of the job (default bf16)                            |
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ftbench.config.build import case_spec
from ftbench.core.errors import ConfigError
from ftbench.core.invariants import INVARIANTS, Bounds, Expected, bounds_for

if TYPE_CHECKING:
    from ftbench.config.profiles import Job, Profile
    from ftbench.core.spec import CaseSpec


@dataclass(frozen=True)
class Side:
    label: str  # in words: "1 batch of 32", "4 x 8 accumulated"
    spec: CaseSpec
    resume_at: int | None = None  # stop there, save, resume in a fresh trainer
    dropout: bool = True
    repeat: int = 1  # determinism: the second run of the same thing is trained again

    @property
    def key(self) -> tuple:
        """Two sides with one key train the same thing: a session traces it once."""
        return (self.spec, self.resume_at, self.dropout, self.repeat)


@dataclass(frozen=True)
class Pair:
    invariant: str
    a: Side
    b: Side
    bounds: Bounds
    expected: Expected | None = None
    variant: str = ""  # which value side b takes, when an axis has several: "static"

    @property
    def id(self) -> str:
        return self.invariant + (f"-{self.variant}" if self.variant else "")

    @property
    def title(self) -> str:
        return INVARIANTS[self.invariant].title


# Paddings that change which rows a step trains on (length groups, packing): never a side of a
# pair that must see the same rows.
REORDERING = ("bucketed", "packed")


@dataclass(frozen=True)
class Unbuilt:
    """A pair the job asks for that can't be built from its settings: skipped, saying why."""

    id: str
    reason: str


def pairs_of(job: Job, profile: Profile) -> list[Pair]:
    """The job's pairs, in the order of its `invariants` (those that can be built)."""
    return [p for p in plan(job, profile) if isinstance(p, Pair)]


def plan(job: Job, profile: Profile) -> list[Pair | Unbuilt]:
    """Every pair the job asks for: built, or why not (one padding, an odd batch, ...)."""
    unknown = [name for name in job.invariants if name not in INVARIANTS]
    if unknown:
        raise ConfigError(
            f"job {job.name!r}: unknown invariant(s) {unknown}; known: {', '.join(INVARIANTS)}"
        )
    precision = "fp32" if "fp32" in job.precisions else job.precisions[0]
    paddings = [p for p in job.paddings if p not in REORDERING]
    if not paddings or job.training.max_steps <= 0:
        why = (
            f"{'/'.join(job.paddings)} padding changes which rows a step trains on"
            if not paddings
            else "an invariants job needs trainer.max_steps > 0"
        )
        return [Unbuilt(name, why) for name in job.invariants]
    base = case_spec(
        job,
        profile,
        checkpoint=job.checkpoints[0],
        padding=paddings[0],
        device=job.devices[0],
        precision=precision,
    )
    planned: list[Pair | Unbuilt] = []
    for name in job.invariants:
        dropout = INVARIANTS[name].dropout
        try:
            sides = _other_sides(name, job, base, dropout)
        except ConfigError as exc:
            planned.append(Unbuilt(name, str(exc)))
            continue
        for variant, a_label, b in sides:
            if isinstance(b, str):  # a variant that can't be a side: why
                planned.append(Unbuilt(f"{name}-{variant}", b))
                continue
            planned.append(
                Pair(
                    name,
                    Side(a_label, base, dropout=dropout),
                    b,
                    bounds_for(name, device=base.device, precision=base.precision),
                    expected=job.expected.get(name),
                    variant=variant,
                )
            )
    return planned


def _other_sides(
    name: str, job: Job, base: CaseSpec, dropout: bool
) -> list[tuple[str, str, Side | str]]:
    """(variant, side a's label, side b or why it can't be one) for each pair; ConfigError
    when the job's settings give the invariant no pair at all."""
    training, batch = base.training, base.training.batch_size
    if name == "determinism":
        return [("", "run 1", Side("run 2", base, dropout=dropout, repeat=2))]
    if name == "resume":
        if training.max_steps < 2:
            raise ConfigError("resume needs at least 2 steps")
        at = training.max_steps // 2
        label = f"resumed at step {at}"
        return [("", "uninterrupted", Side(label, base, resume_at=at, dropout=dropout))]
    if name == "grad-accum":
        k = 4 if batch % 4 == 0 and batch >= 8 else 2
        if batch % k:
            raise ConfigError(f"grad-accum needs an even batch, not {batch}")
        already = int(training.trainer_args.get("gradient_accumulation_steps", 1))
        accumulated = replace(
            training,
            batch_size=batch // k,
            trainer_args={**training.trainer_args, "gradient_accumulation_steps": already * k},
        )
        label = f"{k} x {batch // k} accumulated"
        b = Side(label, replace(base, training=accumulated), dropout=dropout)
        return [("", f"1 batch of {batch}", b)]
    if name == "processes":
        counts = [n for n in job.processes if n != 1] or [2]
        sides: list[tuple[str, str, Side | str]] = []
        for n in counts:
            b = Side(f"{n} processes", replace(base, processes=n), dropout=dropout)
            sides.append((f"{n}proc", "1 process", b if batch % n == 0 else
                          f"batch {batch} does not split over {n} processes"))  # fmt: skip
        return sides
    if name == "padding":
        others = [p for p in job.paddings if p != base.padding]
        if not others:
            raise ConfigError(f"padding needs a second padding; the job has {base.padding} only")
        return [
            (p, _padding_words(base.padding),
             f"{p} padding changes which rows a step trains on" if p in REORDERING
             else Side(_padding_words(p), replace(base, padding=p), dropout=dropout))
            for p in others
        ]  # fmt: skip
    if name == "precision":
        default = ["bf16"] if base.precision == "fp32" else ["fp32"]
        others = [p for p in job.precisions if p != base.precision] or default
        return [
            (p, base.precision, Side(p, replace(base, precision=p), dropout=dropout))
            for p in others
        ]
    raise ConfigError(f"unknown invariant {name!r}")


def _padding_words(padding: str) -> str:
    return padding if padding.startswith("padd") else f"{padding} padding"
