"""What ftbench hooks into Trainer: steady-state timing, a loss guard and progress lines."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

from ftbench.core.errors import ConfigError
from ftbench.env.devices import synchronize
from ftbench.env.distributed import barrier
from ftbench.stack.padding import PaddingCounter


class StepTimer(TrainerCallback):
    """Times the steps after `warmup_steps`, with the device synchronised at both ends.

    Per-step times are host clock readings at step ends: exact on CPU, where they are what
    the spread is computed from; on CUDA only the window total is synchronised.
    """

    def __init__(self, device: str, counter: PaddingCounter, warmup_steps: int) -> None:
        self.device = device
        self.counter = counter
        self.warmup_steps = warmup_steps
        self.step_seconds: list[float] = []
        self.step_samples: list[int] = []
        self.peak_rss = 0
        self.start_rss = 0  # at the start of training: the model loaded, no optimizer state yet
        self.start_cuda = 0
        self._start: tuple[float, int, int, int] | None = None
        self._end: tuple[float, int, int, int] | None = None
        self._batch_window = [0, 0]  # the counter's batches inside the timed window
        self._last_time = 0.0
        self._last_samples = 0
        self._process: Any = None
        self._paused = 0.0  # evaluation inside the window, not yet taken off a step
        self._paused_total = 0.0

    # -- Trainer events --------------------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        import psutil
        import torch

        self._process = psutil.Process()
        self._sample_memory()
        self.start_rss = self.peak_rss
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            self.start_cuda = torch.cuda.memory_allocated()
        if self.warmup_steps == 0:
            self._mark_start()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._sample_memory()
        step = state.global_step
        if step == self.warmup_steps:
            self._mark_start()
        elif step > self.warmup_steps and self._start is not None:
            last = step >= state.max_steps or control.should_training_stop
            if last:
                synchronize(self.device)
                barrier()  # several processes: the window closes when the slowest rank's does
            now = time.perf_counter()
            self.step_seconds.append(now - self._last_time - self._paused)
            self._paused_total += self._paused
            self._paused = 0.0
            self.step_samples.append(self.counter.samples - self._last_samples)
            self._last_time, self._last_samples = now, self.counter.samples
            if last:
                self._mark_end(now)

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # Periodic evaluation (time-to-accuracy) is not training: keep it out of the window.
        if self._start is not None and self._end is None:
            self._paused += (kwargs.get("metrics") or {}).get("eval_runtime", 0.0)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._start is not None and self._end is None and self.step_seconds:
            synchronize(self.device)
            self._mark_end(self._last_time)

    # -- results ---------------------------------------------------------------------------------

    def running_samples_per_second(self) -> float | None:
        """A rough live figure for progress lines (host clock, no synchronisation)."""
        if self._start is None or not self.step_seconds:
            return None
        return (self._last_samples - self._start[1]) / max(self._last_time - self._start[0], 1e-9)

    def summary(self) -> dict[str, Any]:
        if self._start is None or self._end is None:
            raise ConfigError(
                f"no steady-state window: training ran fewer than {self.warmup_steps + 1} steps "
                f"({self.warmup_steps} are warm-up); raise the step count or lower the warm-up"
            )
        t0, samples0, real0, padded0 = self._start
        t1, samples1, real1, padded1 = self._end
        seconds = t1 - t0 - self._paused_total
        real, padded, samples = real1 - real0, padded1 - padded0, samples1 - samples0
        return {
            "warmup_steps": self.warmup_steps,
            "timed_steps": len(self.step_seconds),
            "timed_samples": samples,
            "timed_seconds": seconds,
            "train_samples_per_second": samples / seconds,
            "train_tokens_per_second": real / seconds,
            "train_padded_tokens_per_second": padded / seconds,
            "step_seconds": self.step_seconds,
            "step_samples": self.step_samples,
            "step_times_synchronized": self.device == "cpu",
            "real_tokens": real,
            "padded_tokens": padded,
            "batches": self.counter.batches(*self._batch_window),
        }

    def peak_memory(self) -> dict[str, Any]:
        """The peak, and how far training raised it above the start (gradients, optimizer state,
        activations): the part full fine-tuning, LoRA and QLoRA differ in most."""
        import torch

        if self.device == "cuda":
            peak = torch.cuda.max_memory_allocated()
            return {
                "peak_bytes": peak,
                "training_growth_bytes": peak - self.start_cuda,
                "kind": "cuda_max_allocated",
            }
        return {
            "peak_bytes": self.peak_rss,
            "training_growth_bytes": self.peak_rss - self.start_rss,
            "kind": "process_rss_sampled_per_step",
        }

    # -- helpers ---------------------------------------------------------------------------------

    def _mark_start(self) -> None:
        synchronize(self.device)
        barrier()  # several processes: every rank's window opens together
        samples, real, padded = self.counter.snapshot()
        self._last_time = time.perf_counter()
        self._last_samples = samples
        self._start = (self._last_time, samples, real, padded)
        self._batch_window[0] = self.counter.batch_count

    def _mark_end(self, now: float) -> None:
        samples, real, padded = self.counter.snapshot()
        self._end = (now, samples, real, padded)
        self._batch_window[1] = self.counter.batch_count

    def _sample_memory(self) -> None:
        if self._process is not None:
            self.peak_rss = max(self.peak_rss, self._process.memory_info().rss)


class LossGuard(TrainerCallback):
    """Stops training at the first logged NaN or infinite loss, and remembers where."""

    def __init__(self) -> None:
        self.bad: tuple[int, float] | None = None
        self.last_loss: float | None = None

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        self.last_loss = float(loss)
        if not math.isfinite(self.last_loss) and self.bad is None:
            self.bad = (state.global_step, self.last_loss)
            control.should_training_stop = True


class Progress(TrainerCallback):
    """Reports `case: step N/M, loss, samples/s` through `report` at most every `every` seconds."""

    def __init__(
        self,
        case_id: str,
        report: Callable[[str], None],
        timer: StepTimer,
        guard: LossGuard,
        every: float = 10.0,
        quality: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.case_id = case_id
        self.report = report
        self.timer = timer
        self.guard = guard
        self.every = every
        self.quality = quality  # the task's metrics by its names (Task.quality); else all
        self._last = 0.0

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        now = time.monotonic()
        final = state.global_step >= state.max_steps
        if now - self._last < self.every and not final:
            return
        self._last = now
        parts = [f"{self.case_id}: step {state.global_step}/{state.max_steps}"]
        if state.max_steps and state.num_train_epochs:
            parts.append(f"epoch {state.epoch or 0:.2f}")
        if self.guard.last_loss is not None:
            parts.append(f"loss {self.guard.last_loss:.4f}")
        rate = self.timer.running_samples_per_second()
        if rate is not None:
            parts.append(f"{rate:.3g} samples/s")
        self.report(", ".join(parts))

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        metrics = kwargs.get("metrics") or {}
        if self.quality is not None:
            metrics = {k: v for k, v in self.quality(metrics).items() if v is not None}
        shown = [
            f"{name.removeprefix('eval_')} {value:.4f}"
            for name, value in metrics.items()
            if isinstance(value, float) and not name.endswith(("runtime", "per_second"))
        ]
        if shown:
            self.report(f"{self.case_id}: eval {', '.join(shown[:6])}")


class TrainingEndedError(RuntimeError):
    """Training stopped before a benchmark round was complete."""


class TrainingStoppedError(RuntimeError):
    """Raised inside the training thread by `RoundGate.stop()`: ends Trainer's loop at once."""


class RoundGate(TrainerCallback):
    """Holds Trainer's loop, run in a worker thread, at step boundaries.

    The caller then runs rounds of exactly N real training steps (`run_steps(N)`), which is
    what pytest-benchmark's `pedantic` times: the rounds are Trainer's own loop, data loading
    and optimizer included, with the device synchronised at the end of each round. A round
    starts after the next batch was fetched, and stops before the loop's logging; StepTimer's
    window, which the gates use, covers both.
    """

    def __init__(self, device: str) -> None:
        import threading

        self.device = device
        self._cond = threading.Condition()
        self._allowed = 0
        self._done_in_round = 0
        self._open = False
        self._alive = False
        self._stopping = False
        self._thread: Any = None
        self._output: Any = None
        self._error: BaseException | None = None

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        with self._cond:
            while self._allowed == 0 and not self._open and not self._stopping:
                self._cond.wait()
            if self._stopping:
                raise TrainingStoppedError("interrupted")
            if self._allowed:
                self._allowed -= 1

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        with self._cond:
            if self._stopping:
                raise TrainingStoppedError("interrupted")
            self._done_in_round += 1
            if self._allowed == 0 and not self._open:
                synchronize(self.device)
                self._cond.notify_all()

    def start(self, train: Callable[[], Any]) -> None:
        import threading

        def work() -> None:
            try:
                self._output = train()
            except BaseException as exc:  # re-raised in the caller's thread
                self._error = exc
            finally:
                with self._cond:
                    self._alive = False
                    self._cond.notify_all()

        self._alive = True
        self._thread = threading.Thread(target=work, name="ftbench-train", daemon=True)
        self._thread.start()

    def run_steps(self, steps: int) -> None:
        """Let the loop run `steps` more steps and wait for them (or for training to end)."""
        with self._cond:
            self._done_in_round = 0
            self._allowed = steps
            self._cond.notify_all()
            while self._done_in_round < steps and self._alive:
                self._cond.wait()
            ended_early = self._done_in_round < steps
        if self._error is not None:
            raise self._error
        if ended_early:  # e.g. the loss guard stopped training: no more rounds to time
            raise TrainingEndedError(f"training ended {steps - self._done_in_round} steps early")

    def stop(self) -> None:
        """End the training thread at its next step boundary (Ctrl-C, SIGTERM), not after the
        rest of training: the step under way finishes, no other starts."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def finish(self) -> Any:
        """Let the rest of training run unheld; return Trainer.train's output."""
        with self._cond:
            self._open = True
            self._cond.notify_all()
        self._thread.join()
        if self._error is not None and not isinstance(self._error, TrainingStoppedError):
            raise self._error
        return self._output


class TimeToAccuracy(TrainerCallback):
    """Records when periodic evaluation first reaches `target` accuracy (MLPerf's metric).

    Time counts training only: evaluation time is left out. The random-number state is saved
    before each periodic evaluation and restored after it, so evaluating does not change the
    training run: with or without it, the same seed gives the same model.
    """

    def __init__(self, target: float, counter: PaddingCounter) -> None:
        self.target = target
        self.counter = counter
        self.evaluations: list[dict[str, Any]] = []
        self.reached: dict[str, Any] | None = None
        self._started = 0.0
        self._eval_seconds = 0.0
        self._rng: dict[str, Any] | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._started = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if control.should_evaluate:  # set by DefaultFlowCallback, which runs before this one
            self._rng = rng_state()

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        metrics = kwargs.get("metrics") or {}
        if self._rng is None or "eval_accuracy" not in metrics:
            return  # the final, explicit evaluation: not part of the training run
        set_rng_state(self._rng)
        self._rng = None
        self._eval_seconds += metrics.get("eval_runtime", 0.0)
        point = {
            "step": state.global_step,
            "epoch": state.epoch,
            "samples": self.counter.samples,
            "train_seconds": time.perf_counter() - self._started - self._eval_seconds,
            "eval_accuracy": metrics["eval_accuracy"],
        }
        self.evaluations.append(point)
        if self.reached is None and point["eval_accuracy"] >= self.target:
            self.reached = point

    def summary(self) -> dict[str, Any]:
        return {
            "target_accuracy": self.target,
            "reached": self.reached is not None,
            "train_seconds": self.reached["train_seconds"] if self.reached else None,
            "samples": self.reached["samples"] if self.reached else None,
            "step": self.reached["step"] if self.reached else None,
            "evaluations": self.evaluations,
        }


def rng_state() -> dict[str, Any]:
    """Python's, NumPy's and torch's random-number state (every CUDA device's too), to put
    back with `set_rng_state` after an evaluation that must not change the training run."""
    import random

    import numpy as np
    import torch

    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Put back a state `rng_state` returned."""
    import random

    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])
