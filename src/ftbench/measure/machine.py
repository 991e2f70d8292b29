"""The machine around a case's timed window: a probe before and after it, contention across it.

`MachineWatch` is a TrainerCallback. Listed before StepTimer, it probes the device just before
the steady-state window opens (after the warm-up steps) and again after training ends, so the
probe never runs inside the window, and it measures what other processes used in between.
`attach` stores both in the record (`machine`) and adds the machine-relative throughputs,
such as `throughput["train_samples_per_probe"]`: samples/s divided by the probe's score.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from ftbench.core.measures import probe_twin_name
from ftbench.env.contention import DeviceWindow
from ftbench.env.probe import combine, measure_probe
from ftbench.tasks import known_metrics

if TYPE_CHECKING:
    from ftbench.core.record import CaseResult


class MachineWatch(TrainerCallback):
    def __init__(self, device: str, precision: str, warmup_steps: int) -> None:
        self.device = device
        self.precision = precision
        self.warmup_steps = warmup_steps
        self._before: dict[str, Any] | None = None
        self._after: dict[str, Any] | None = None
        self._window: Any = None
        self.contention: dict[str, Any] | None = None

    def _open(self) -> None:
        self._before = measure_probe(self.device, self.precision)
        self._window = DeviceWindow(self.device)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.warmup_steps == 0:
            self._open()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.warmup_steps and self._window is None:
            self._open()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._window is None or self.contention is not None:
            return
        self.contention = self._window.stop()
        self._after = measure_probe(self.device, self.precision)

    def summary(self) -> dict[str, Any]:
        probe = combine(self._before, self._after) if self._before and self._after else None
        return {"probe": probe, "contention": self.contention}


def attach(result: CaseResult, watch: MachineWatch) -> CaseResult:
    """Store the watch's figures in the record; add each timed rate relative to the probe
    (samples/s, tokens/s, GRPO's generated and optimizer tokens/s)."""
    result.machine = watch.summary()
    probe = result.machine["probe"]
    if not (probe and probe["score"]):
        return result
    known = known_metrics()
    for name, rate in list(result.throughput.items()):
        twin = probe_twin_name(name)
        if twin in known and isinstance(rate, (int, float)):
            result.throughput[twin] = rate / probe["score"]
    return result
