"""Run one case: the task's trainer trains, then evaluates, measured. No pytest needed.

    from ftbench.core.spec import CaseSpec, Training
    from ftbench.measure.runner import run
    from ftbench.stack.data import DataSource
    spec = CaseSpec("throughput", "minilm-l6", "dynamic", method="lora",
                    training=Training(max_steps=25))
    result = run(spec, DataSource(data_dir="../shared/data"))
    print(result.throughput["train_samples_per_second"])
    spec = CaseSpec("sft", "smollm2-135m", "padded", task="sft", max_length=256,
                    training=Training(max_steps=10, batch_size=4))

The runner is the same for every task (Trainer or a TRL trainer): timing, token counting,
memory and the record. What differs (data, model class, trainer, metrics) is the task's.

`train_and_evaluate` reads as its steps: `instruments` (the callbacks ftbench adds), `train`
and `check_loss`, `evaluate`, `gather` (every process's timed window), `mfu`, `record`.

From a shell: `python -m ftbench.cli.run --help`. The pytest plugin builds the same pieces as
session-scoped fixtures and calls `train_and_evaluate` directly.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ftbench.core.errors import (
    CaseOutOfMemoryError,
    CheckpointError,
    ConfigError,
    MissingAttentionMaskError,
    NonFiniteLossError,
)
from ftbench.core.record import CaseResult
from ftbench.core.spec import CaseSpec, Training
from ftbench.env.devices import environment, peak_flops, training_device_arguments
from ftbench.env.distributed import gather_window, merge_contention, merge_windows
from ftbench.env.distributed import summary as distributed_summary
from ftbench.env.oom import describe_oom
from ftbench.measure.mfu import rate_spread, utilisation
from ftbench.stack.checkpoints import Checkpoint, load_tokenizer, resolve_checkpoint
from ftbench.stack.methods import describe, num_parameters
from ftbench.stack.padding import PaddingCounter, get_strategy
from ftbench.tasks import Task, get_task

if TYPE_CHECKING:
    from datasets import DatasetDict

    from ftbench.measure.callbacks import LossGuard, Progress, RoundGate, StepTimer, TimeToAccuracy
    from ftbench.measure.machine import MachineWatch
    from ftbench.stack.data import DataSource


def run(
    spec: CaseSpec,
    source: DataSource,
    *,
    report: Callable[[str], None] | None = None,
    show_progress_bar: bool = True,
    cost_curve: bool = False,
    progress_every: float | None = None,
    evaluate_after: bool = True,
) -> CaseResult:
    """Everything from scratch: resolve, load, encode, train, evaluate; with `cost_curve`,
    then time the padding ceiling's step-cost curve on a fresh model (ftbench.core.cost).
    Without `evaluate_after`, stop after training (a re-measure only times again)."""
    task = get_task(spec.task)
    checkpoint = resolve_checkpoint(spec.checkpoint)
    check_checkpoint_fits(task, checkpoint)
    tokenizer = load_tokenizer(checkpoint)
    data = task.load_data(source)
    identity = task.identity(source, data)  # what the case trained on, as pytest's records say
    encoded = encode(task, data, tokenizer, spec)
    model, load_seconds = task.load_case_model(spec, checkpoint, tokenizer, data)
    result = train_and_evaluate(
        spec,
        checkpoint=checkpoint,
        model=model,
        tokenizer=tokenizer,
        encoded=encoded,
        collator=task.collator(spec.padding, tokenizer),
        model_load_seconds=load_seconds,
        report=report,
        show_progress_bar=show_progress_bar,
        evaluate_after=evaluate_after,
        **({"progress_every": progress_every} if progress_every is not None else {}),
    )
    result.data = {**identity, **(result.data or {})}
    if cost_curve:
        from ftbench.measure.costcurve import measure_for_case

        release_model(model, spec.device)  # the curve times a fresh model, as in pytest's
        del model
        started = time.perf_counter()
        result.cost_curve = measure_for_case(spec, checkpoint, tokenizer, data, report=report)
        result.times["cost_curve_seconds"] = time.perf_counter() - started
    return result


def release_model(model: Any, device: str) -> None:
    """Free a trained model's device memory, so what is measured next has the device."""
    if device == "cuda":
        import gc

        import torch

        model.to("cpu")
        gc.collect()
        torch.cuda.empty_cache()


def check_checkpoint_fits(task: Task, checkpoint: Checkpoint) -> None:
    """A task that trains a causal LM refuses an encoder before any data is read."""
    problem = task.checkpoint_problem(checkpoint)
    if problem:
        raise CheckpointError(f"{problem} (for example smollm2-135m, or llama-1b@random)")


def encode(task: Any, data: Any, tokenizer: Any, spec: CaseSpec) -> Any:
    """The task's training and evaluation data for this case's tokenizer and padding."""
    return task.encode(
        data,
        tokenizer,
        padding=spec.padding,
        max_length=spec.max_length,
        eval_samples=spec.training.eval_samples,
    )


def training_arguments(spec: CaseSpec, output_dir: str, train_size: int = 0, **extra: Any) -> Any:
    """The trainer config of a case: the profile's recipe, the padding's sampler, the device,
    and the task's own settings (TRL's configs extend TrainingArguments)."""
    t = spec.training
    periodic = t.target_accuracy is not None and t.evaluate and t.evaluations > 0
    accumulation = int(t.trainer_args.get("gradient_accumulation_steps", 1))
    steps_per_epoch = math.ceil(train_size / (t.batch_size * accumulation)) if train_size else 1
    total_steps = t.max_steps if t.max_steps > 0 else math.ceil(steps_per_epoch * t.epochs)
    task = get_task(spec.task)
    arguments = dict(
        output_dir=output_dir,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=spec.per_device_batch_size,
        per_device_eval_batch_size=spec.per_device_eval_batch_size,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        warmup_steps=t.warmup,
        seed=t.seed,
        # Evaluation runs after training, and periodically only to time a target accuracy
        # (the timer leaves those evaluations out).
        eval_strategy="steps" if periodic else "no",
        eval_steps=max(1, math.ceil(total_steps / t.evaluations)) if periodic else None,
        save_strategy="no",
        logging_strategy="steps",
        logging_steps=10,
        logging_nan_inf_filter=False,  # a NaN must reach the loss guard, not be averaged away
        report_to="none",
        dataloader_num_workers=0,
        **training_device_arguments(spec.device, spec.precision),
        **get_strategy(spec.padding).training_arguments(),
    )
    # The task's settings win over the shared ones (GRPO logs every step's rewards), and the
    # job's own trainer settings over both: they are the user's recipe.
    settings = {**arguments, **task.config_arguments(spec), **t.trainer_args, **extra}
    return task.config_class()(**settings)


def train_and_evaluate(
    spec: CaseSpec,
    *,
    checkpoint: Checkpoint,
    model: Any,
    tokenizer: Any,
    encoded: DatasetDict,
    collator: Any,
    model_load_seconds: float = 0.0,
    report: Callable[[str], None] | None = None,
    show_progress_bar: bool = False,
    progress_every: float = 10.0,
    callbacks: list[Any] | None = None,
    benchmark: Any = None,
    evaluate_after: bool = True,
) -> CaseResult:
    """Train and evaluate a ready model; return the measured CaseResult.

    Without `evaluate_after`, the evaluation after training is left out: a re-measure times
    the same steps again, after the same untrained evaluation, and stops there.

    With `benchmark` (pytest-benchmark's fixture), the timed steps run as pedantic rounds of
    `steps_per_round` steps each, so pytest-benchmark's statistics, storage and comparisons
    cover them too.
    """
    task = get_task(spec.task)
    setup_started = time.perf_counter()
    tools = instruments(
        spec,
        task,
        model,
        tokenizer,
        report=report,
        progress_every=progress_every,
        callbacks=callbacks,
        rounds=benchmark is not None,
    )
    # Scratch for the trainer (nothing is saved); the model's figures are read before it goes.
    with tempfile.TemporaryDirectory(prefix="ftbench-") as output_dir:
        args = training_arguments(
            spec, output_dir, train_size=len(encoded["train"]), disable_tqdm=not show_progress_bar
        )
        trainer = task.trainer(
            spec,
            model=model,
            args=args,
            tokenizer=tokenizer,
            data=encoded,
            collator=collator,
            callbacks=tools.callbacks,
        )
        untrained = _evaluate_untrained(trainer) if spec.training.evaluate_untrained else {}
        times = Timings(setup_seconds=model_load_seconds + time.perf_counter() - setup_started)
        train_metrics, eval_metrics = train_then_evaluate(
            trainer, tools, spec, benchmark, times, evaluate_after=evaluate_after
        )
        trained = Trained(args, untrained, train_metrics, eval_metrics, times)
        memory = {**tools.timer.peak_memory(), "model_bytes": model.get_memory_footprint()}
        parameters = num_parameters(model)
        method = describe(model, spec.method, spec.lora, parameters)

    ranks, window = gather(tools, memory)  # a collective: every rank calls it
    extra = task.measures(
        spec, trainer, window, task.quality(eval_metrics), task.quality(untrained)
    )
    shape = model_shape(model)
    load = mfu(spec.device, parameters, shape, window, processes=len(ranks))
    measured = Measured(memory, parameters, method, shape, ranks, window, extra, load)
    return record(spec, task, checkpoint, task.data_summary(encoded), tools, trained, measured)


# -- the steps ------------------------------------------------------------------------------------


@dataclass
class Instruments:
    """The callbacks ftbench adds to the task's trainer, and the token counter they share."""

    counter: PaddingCounter
    watch: MachineWatch
    timer: StepTimer
    guard: LossGuard
    user: list[Any] = field(default_factory=list)  # the caller's own callbacks
    progress: Progress | None = None
    gate: RoundGate | None = None  # only in pytest-benchmark rounds
    tta: TimeToAccuracy | None = None  # only with a target accuracy

    @property
    def callbacks(self) -> list[Any]:
        """In the order the trainer calls them. The watch is first: its device probes stay
        outside the timed window."""
        optional = (self.progress, self.gate, self.tta)
        return [
            self.watch,
            self.timer,
            self.guard,
            *self.user,
            *(c for c in optional if c is not None),
        ]


def instruments(
    spec: CaseSpec,
    task: Task,
    model: Any,
    tokenizer: Any,
    *,
    report: Callable[[str], None] | None = None,
    progress_every: float = 10.0,
    callbacks: list[Any] | None = None,
    rounds: bool = False,
) -> Instruments:
    """Build the callbacks that time, count, guard and report a case's training.

    The counter hooks into `model` now; `train` removes it."""
    from ftbench.measure.callbacks import LossGuard, Progress, RoundGate, StepTimer, TimeToAccuracy
    from ftbench.measure.machine import MachineWatch

    warmup = spec.training.timing_warmup_steps
    counter = PaddingCounter(
        model,
        tokenizer.pad_token_id,
        rows_per_sample=task.rows_per_sample,
        pad_is_eos=tokenizer.pad_token_id == tokenizer.eos_token_id,
    )
    timer = StepTimer(spec.device, counter, warmup)
    guard = LossGuard()
    # issue 12: probe the device around the timed window
    watch = MachineWatch(spec.device, spec.precision, warmup)
    progress = None
    if report is not None:
        progress = Progress(
            spec.case_id, report, timer, guard, every=progress_every, quality=task.quality
        )
    target = spec.training.target_accuracy if spec.training.evaluate else None
    return Instruments(
        counter,
        watch,
        timer,
        guard,
        user=list(callbacks or []),
        progress=progress,
        gate=RoundGate(spec.device) if rounds else None,
        tta=TimeToAccuracy(target, counter) if target is not None else None,
    )


@dataclass
class Timings:
    """Wall-clock seconds of the case's phases, as the record's `times` holds them."""

    setup_seconds: float  # model load, trainer build and the untrained evaluation
    train_seconds: float = 0.0
    eval_seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "setup_seconds": self.setup_seconds,
            "train_seconds": self.train_seconds,
            "eval_seconds": self.eval_seconds,
        }


def train_then_evaluate(
    trainer: Any,
    tools: Instruments,
    spec: CaseSpec,
    benchmark: Any,
    times: Timings,
    evaluate_after: bool = True,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train, refuse a non-finite loss, evaluate; return (train metrics, eval metrics) and
    fill in `times`."""
    started = time.perf_counter()
    output = train(trainer, tools, spec, benchmark)
    times.train_seconds = time.perf_counter() - started
    check_loss(output, tools.guard, spec)
    eval_metrics: dict[str, Any] = {}
    if spec.training.evaluate and evaluate_after:
        started = time.perf_counter()
        eval_metrics = evaluate(trainer, spec)
        times.eval_seconds = time.perf_counter() - started
    return output.metrics, eval_metrics


def train(trainer: Any, tools: Instruments, spec: CaseSpec, benchmark: Any = None) -> Any:
    """Run training, plainly or in pytest-benchmark's rounds; return the trainer's output.

    Out of memory and a batch without its attention mask become ftbench's named errors,
    naming the case. The counter's hooks leave the model, whatever happens."""
    import torch

    try:
        if tools.gate is None:
            return trainer.train()
        return _train_in_rounds(trainer, tools.gate, benchmark, spec.training)
    except torch.OutOfMemoryError as exc:
        raise CaseOutOfMemoryError(
            f"{spec.case_id}: out of memory on {spec.device} at batch size "
            f"{spec.training.batch_size}: {describe_oom(exc, spec.device)}; lower it "
            f"with --ftb-batch-size. ({exc})"
        ) from None
    except MissingAttentionMaskError as exc:
        raise MissingAttentionMaskError(
            f"{spec.case_id}, {spec.padding} padding, step {trainer.state.global_step + 1}: {exc}"
        ) from None
    finally:
        tools.counter.remove()


def check_loss(output: Any, guard: LossGuard, spec: CaseSpec) -> None:
    """Raise NonFiniteLossError if the loss went NaN or infinite: the numbers mean nothing.

    The guard saw every logged step; the trainer's mean loss catches what it didn't."""
    train_loss = output.metrics.get("train_loss")
    if guard.bad is None and (train_loss is None or math.isfinite(train_loss)):
        return
    step, loss = guard.bad or (output.global_step, train_loss)
    raise NonFiniteLossError(
        f"{spec.case_id}: training loss became {loss} at step {step}; the result is "
        f"meaningless (learning rate {spec.training.learning_rate}, precision "
        f"{spec.precision}). Try a lower learning rate"
        + (" or fp32." if spec.precision != "fp32" else ".")
    )


def evaluate(trainer: Any, spec: CaseSpec) -> dict[str, Any]:
    """The trained model's evaluation metrics; out of memory names the case and batch size."""
    import torch

    try:
        return trainer.evaluate()
    except torch.OutOfMemoryError as exc:
        raise CaseOutOfMemoryError(
            f"{spec.case_id}: out of memory on {spec.device} evaluating at batch size "
            f"{spec.training.eval_batch_size}: {describe_oom(exc, spec.device)}. ({exc})"
        ) from None


def gather(
    tools: Instruments, memory: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every rank's timed window, memory and contention, and the case's window merged from
    them: samples and tokens summed over ranks, the slowest rank's time.

    A collective under several processes (ftbench.env.distributed): every rank must call it.
    One process: its own window."""
    ranks = gather_window(
        tools.timer.summary(),
        {"memory": memory, "contention": tools.watch.contention, "pid": os.getpid()},
    )
    return ranks, merge_windows(ranks)


def model_shape(model: Any) -> dict[str, int]:
    """Layers, width and heads: what FLOPs per token depend on besides the parameters."""
    config = model.config
    return {
        "layers": config.num_hidden_layers,
        "hidden": config.hidden_size,
        "heads": config.num_attention_heads,
    }


def mfu(
    device: str,
    parameters: dict[str, int],
    shape: dict[str, int],
    window: dict[str, Any],
    processes: int = 1,
) -> dict[str, Any]:
    """Model FLOPs utilisation of the timed window against the devices' peak."""
    peak, peak_source = peak_flops(device)
    if peak and processes > 1:
        peak *= processes  # each rank measured or looked up its own device's share
    return utilisation(
        non_embedding_parameters=parameters["non_embedding"],
        trainable_non_embedding_parameters=parameters["trainable_non_embedding"],
        layers=shape["layers"],
        hidden=shape["hidden"],
        real_tokens=window["real_tokens"],
        samples=window["timed_samples"],
        seconds=window["timed_seconds"],
        peak_flops_per_second=peak,
        peak_source=peak_source,
    )


def _train_in_rounds(trainer: Any, gate: Any, benchmark: Any, training: Training) -> Any:
    """Warm up, let pytest-benchmark time rounds of real steps, then finish training."""
    timed = training.max_steps - training.timing_warmup_steps
    if training.max_steps <= 0 or timed < training.steps_per_round:
        raise ConfigError(
            f"benchmark rounds need max steps ({training.max_steps}) of at least the warm-up "
            f"({training.timing_warmup_steps}) plus one round ({training.steps_per_round} steps)"
        )
    from ftbench.measure.callbacks import TrainingEndedError

    gate.start(trainer.train)
    try:
        gate.run_steps(training.timing_warmup_steps)
        benchmark.pedantic(
            gate.run_steps,
            args=(training.steps_per_round,),
            rounds=timed // training.steps_per_round,
            iterations=1,
            warmup_rounds=0,  # the warm-up steps above already ran
        )
    except TrainingEndedError:
        pass  # the loss guard's verdict, checked after training, says why
    except BaseException:
        gate.stop()  # issue 12: Ctrl-C, SIGTERM or an error: don't let training run on
        raise
    finally:
        output = gate.finish()
    return output


def _evaluate_untrained(trainer: Any) -> dict[str, Any]:
    """The model's numbers before any training, the reference a trained model must beat.

    The random-number state is restored afterwards, so training is the same as without it."""
    from ftbench.measure.callbacks import rng_state, set_rng_state

    state = rng_state()
    try:
        return trainer.evaluate()
    finally:
        set_rng_state(state)


# -- the record ------------------------------------------------------------------------------------


@dataclass
class Trained:
    """What the trainer gave: its arguments and the metrics before, after and during training."""

    args: Any  # the trainer's config (TrainingArguments or a TRL config)
    untrained: dict[str, Any]  # evaluation before training; empty when not asked for
    train_metrics: dict[str, Any]
    eval_metrics: dict[str, Any]  # empty when the case doesn't evaluate
    times: Timings


@dataclass
class Measured:
    """What ftbench measured: the model's sizes, the timed window over every rank, MFU."""

    memory: dict[str, Any]
    parameters: dict[str, int]
    method: dict[str, Any]
    shape: dict[str, int]
    ranks: list[dict[str, Any]]  # one entry per process, rank 0 first
    window: dict[str, Any]  # merged over the ranks
    extra: dict[str, dict[str, Any]]  # the task's own measures, by record section
    utilisation: dict[str, Any]


def record(
    spec: CaseSpec,
    task: Task,
    checkpoint: Checkpoint,
    data: dict[str, Any],
    tools: Instruments,
    trained: Trained,
    measured: Measured,
) -> CaseResult:
    """The case's record: the numbers, with what it takes to read and compare them."""
    from ftbench.measure.machine import attach

    result = CaseResult(
        case_id=spec.case_id,
        job=spec.job,
        profile=spec.profile,
        axes=spec.axes,
        metrics=_metrics(task, trained, measured.extra),
        throughput=_throughput(measured.window, trained, measured.extra),
        padding=_padding(spec, measured.window),
        memory=measured.memory,
        times=trained.times.as_dict(),
        data=data,
        training={
            "seed": spec.training.seed,
            "recipe": spec.recipe,
            "arguments": trained.args.to_dict(),
        },
        checkpoint={
            **checkpoint.describe(),
            "parameters": measured.parameters,
            "shape": measured.shape,
        },
        method=measured.method,
        utilisation=measured.utilisation,
        environment=environment(spec.device, spec.profile),
        time_to_accuracy=tools.tta.summary() if tools.tta is not None else None,
        accuracy_meaningful=not checkpoint.random_init and spec.training.evaluate,
        rollout=measured.extra.get("rollout"),
        notes=_notes(spec, checkpoint, data),
    )
    result = attach(result, tools.watch)  # issue 12: the probe and contention figures
    result.distributed = distributed_summary(measured.ranks, spec, measured.window)
    if len(measured.ranks) > 1:
        result.machine["contention"] = merge_contention(measured.ranks)
    return result


def _metrics(task: Task, trained: Trained, extra: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Quality after training, the losses, and the untrained model's figures beside them."""
    untrained = trained.untrained
    return {
        **task.quality(trained.eval_metrics),
        "eval_loss": trained.eval_metrics.get("eval_loss"),
        "train_loss": trained.train_metrics.get("train_loss"),
        **{f"untrained_{k}": v for k, v in task.quality(untrained).items()},
        **({"untrained_eval_loss": untrained.get("eval_loss")} if untrained else {}),
        **extra.get("metrics", {}),
    }


def _throughput(
    window: dict[str, Any], trained: Trained, extra: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The timed window's rates and what they were computed from."""
    return {
        "train_samples_per_second": window["train_samples_per_second"],
        "train_tokens_per_second": window["train_tokens_per_second"],
        "train_padded_tokens_per_second": window["train_padded_tokens_per_second"],
        "samples_per_second_spread": rate_spread(window["step_seconds"], window["step_samples"]),
        "warmup_steps": window["warmup_steps"],
        "timed_steps": window["timed_steps"],
        "timed_samples": window["timed_samples"],
        "timed_seconds": window["timed_seconds"],
        "step_seconds": window["step_seconds"],
        "step_samples": window["step_samples"],
        "step_times_synchronized": window["step_times_synchronized"],
        # Trainer's figure covers every step, warm-up and data-loader start included.
        "trainer_train_samples_per_second": trained.train_metrics.get("train_samples_per_second"),
        "eval_samples_per_second": trained.eval_metrics.get("eval_samples_per_second"),
        **extra.get("throughput", {}),
    }


def _padding(spec: CaseSpec, window: dict[str, Any]) -> dict[str, Any]:
    """Real against padded tokens in the timed batches."""
    real, padded = window["real_tokens"], window["padded_tokens"]
    return {
        "strategy": spec.padding,
        "real_tokens": real,
        "padded_tokens": padded,
        "efficiency": real / padded if padded else None,
        "mean_real_length": real / window["timed_samples"],
        "mean_padded_length": padded / window["timed_samples"],
        "max_length": spec.max_length,
        # [samples, padded length, real tokens, sum of squared real lengths] per timed batch
        "batches": window["batches"],
    }


def _notes(spec: CaseSpec, checkpoint: Checkpoint, data: dict[str, Any]) -> list[str]:
    """What a reader must know before trusting the numbers."""
    notes = []
    if checkpoint.random_init:
        notes.append("random weights: quality metrics mean nothing; throughput and memory do")
    dropped = {k: v for k, v in (data.get("dropped_without_room") or {}).items() if v}
    if dropped:
        notes.append(
            f"rows dropped before training, as they don't fit in max_length {spec.max_length}: "
            + ", ".join(f"{n} of {split}" for split, n in dropped.items())
        )
    return notes
