"""Run one case: the task's trainer trains, then evaluates, measured. No pytest needed.

    from ftbench.stack.data import DataSource
    from ftbench.core.spec import Training
    from ftbench.core.spec import CaseSpec
    from ftbench.measure.runner import run
    spec = CaseSpec("throughput", "minilm-l6", "dynamic", method="lora",
                    training=Training(max_steps=25))
    result = run(spec, DataSource(data_dir="../shared/data"))
    print(result.throughput["train_samples_per_second"])
    spec = CaseSpec("sft", "smollm2-135m", "padded", task="sft", max_length=256,
                    training=Training(max_steps=10, batch_size=4))

The runner is the same for every task (Trainer or a TRL trainer): timing, token counting,
memory and the record. What differs (data, model class, trainer, metrics) is the task's.

From a shell: `python -m ftbench.cli.run --help`. The pytest plugin builds the same pieces as
session-scoped fixtures and calls `train_and_evaluate` directly.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ftbench.core.errors import (
    CaseOutOfMemoryError,
    CheckpointError,
    ConfigError,
    MissingAttentionMaskError,
    NonFiniteLossError,
)
from ftbench.core.spec import CaseSpec, Training
from ftbench.stack.checkpoints import Checkpoint
from ftbench.tasks import get_task

if TYPE_CHECKING:
    from datasets import DatasetDict

    from ftbench.core.record import CaseResult
    from ftbench.stack.data import DataSource


def run(
    spec: CaseSpec,
    source: DataSource,
    *,
    report: Callable[[str], None] | None = None,
    show_progress_bar: bool = True,
) -> CaseResult:
    """Everything from scratch: resolve, load, encode, train, evaluate."""
    from ftbench.stack.checkpoints import load_tokenizer, resolve_checkpoint

    task = get_task(spec.task)
    checkpoint = resolve_checkpoint(spec.checkpoint)
    check_checkpoint_fits(task, checkpoint)
    tokenizer = load_tokenizer(checkpoint)
    data = task.load_data(source)
    encoded = encode(task, data, tokenizer, spec)
    model, load_seconds = task.load_case_model(spec, checkpoint, tokenizer, data)
    return train_and_evaluate(
        spec,
        checkpoint=checkpoint,
        model=model,
        tokenizer=tokenizer,
        encoded=encoded,
        collator=task.collator(spec.padding, tokenizer),
        model_load_seconds=load_seconds,
        report=report,
        show_progress_bar=show_progress_bar,
    )


def check_checkpoint_fits(task: Any, checkpoint: Checkpoint) -> None:
    """A task that trains a causal LM refuses an encoder before any data is read."""
    from ftbench.stack.checkpoints import is_causal_lm, model_config

    if task.needs_decoder and not is_causal_lm(model_config(checkpoint)):
        raise CheckpointError(
            f"checkpoint {checkpoint.spec!r} is not a causal LM; task {task.name} trains one "
            "(for example smollm2-135m, or llama-1b@random)"
        )


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
    from ftbench.env.devices import training_device_arguments
    from ftbench.stack.padding import get_strategy

    t = spec.training
    periodic = t.target_accuracy is not None and t.evaluate and t.evaluations > 0
    steps_per_epoch = math.ceil(train_size / t.batch_size) if train_size else 1
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
    # The task's settings win over the shared ones (GRPO logs every step's rewards).
    return task.config_class()(**{**arguments, **task.config_arguments(spec), **extra})


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
) -> CaseResult:
    """Train and evaluate a ready model; return the measured CaseResult.

    With `benchmark` (pytest-benchmark's fixture), the timed steps run as pedantic rounds of
    `steps_per_round` steps each, so pytest-benchmark's statistics, storage and comparisons
    cover them too.
    """
    import torch

    from ftbench.env.devices import environment, peak_flops
    from ftbench.env.distributed import gather_window, merge_contention, merge_windows
    from ftbench.env.distributed import summary as distributed_summary
    from ftbench.env.oom import describe_oom
    from ftbench.measure.callbacks import LossGuard, Progress, RoundGate, StepTimer, TimeToAccuracy
    from ftbench.measure.machine import MachineWatch, attach
    from ftbench.measure.mfu import rate_spread, utilisation
    from ftbench.stack.methods import describe, num_parameters
    from ftbench.stack.padding import PaddingCounter

    task = get_task(spec.task)
    setup_started = time.perf_counter()
    counter = PaddingCounter(
        model,
        tokenizer.pad_token_id,
        rows_per_sample=task.rows_per_sample,
        pad_is_eos=tokenizer.pad_token_id == tokenizer.eos_token_id,
    )
    timer = StepTimer(spec.device, counter, spec.training.timing_warmup_steps)
    guard = LossGuard()
    # issue 12: probe the device around the timed window (listed first: it stays outside it)
    watch = MachineWatch(spec.device, spec.precision, spec.training.timing_warmup_steps)
    extra_callbacks: list[Any] = [watch, timer, guard, *(callbacks or [])]
    if report is not None:
        extra_callbacks.append(
            Progress(spec.case_id, report, timer, guard, every=progress_every, quality=task.quality)
        )
    gate = RoundGate(spec.device) if benchmark is not None else None
    if gate is not None:
        extra_callbacks.append(gate)
    target = spec.training.target_accuracy if spec.training.evaluate else None
    tta = TimeToAccuracy(target, counter) if target is not None else None
    if tta is not None:
        extra_callbacks.append(tta)
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
            callbacks=extra_callbacks,
        )
        untrained = _evaluate_untrained(trainer) if spec.training.evaluate_untrained else {}
        setup_seconds = model_load_seconds + time.perf_counter() - setup_started
        train_started = time.perf_counter()
        try:
            train_output = (
                trainer.train()
                if gate is None
                else _train_in_rounds(trainer, gate, benchmark, spec.training)
            )
        except torch.OutOfMemoryError as exc:
            raise CaseOutOfMemoryError(
                f"{spec.case_id}: out of memory on {spec.device} at batch size "
                f"{spec.training.batch_size}: {describe_oom(exc, spec.device)}; lower it "
                f"with --ftb-batch-size. ({exc})"
            ) from None
        except MissingAttentionMaskError as exc:
            raise MissingAttentionMaskError(
                f"{spec.case_id}, {spec.padding} padding, step {trainer.state.global_step + 1}: "
                f"{exc}"
            ) from None
        finally:
            counter.remove()
        train_seconds = time.perf_counter() - train_started
        train_loss = train_output.metrics.get("train_loss")
        if guard.bad is not None or (train_loss is not None and not math.isfinite(train_loss)):
            step, loss = guard.bad or (train_output.global_step, train_loss)
            raise NonFiniteLossError(
                f"{spec.case_id}: training loss became {loss} at step {step}; the result is "
                f"meaningless (learning rate {spec.training.learning_rate}, precision "
                f"{spec.precision}). Try a lower learning rate"
                + (" or fp32." if spec.precision != "fp32" else ".")
            )
        eval_metrics: dict[str, Any] = {}
        eval_seconds = 0.0
        if spec.training.evaluate:
            eval_started = time.perf_counter()
            try:
                eval_metrics = trainer.evaluate()
            except torch.OutOfMemoryError as exc:
                raise CaseOutOfMemoryError(
                    f"{spec.case_id}: out of memory on {spec.device} evaluating at batch size "
                    f"{spec.training.eval_batch_size}: {describe_oom(exc, spec.device)}. ({exc})"
                ) from None
            eval_seconds = time.perf_counter() - eval_started
        memory = {**timer.peak_memory(), "model_bytes": model.get_memory_footprint()}
        parameters = num_parameters(model)
        method = describe(model, spec.method, spec.lora, parameters)

    # Several processes: every rank's window to rank 0, summed over ranks (ftbench.env.distributed).
    ranks = gather_window(
        timer.summary(), {"memory": memory, "contention": watch.contention, "pid": os.getpid()}
    )
    window = merge_windows(ranks)
    extra = task.measures(
        spec, trainer, window, task.quality(eval_metrics), task.quality(untrained)
    )
    peak, peak_source = peak_flops(spec.device)
    if peak and len(ranks) > 1:
        peak *= len(ranks)  # each rank measured or looked up its own device's share
    config = model.config
    load = utilisation(
        non_embedding_parameters=parameters["non_embedding"],
        trainable_non_embedding_parameters=parameters["trainable_non_embedding"],
        layers=config.num_hidden_layers,
        hidden=config.hidden_size,
        real_tokens=window["real_tokens"],
        samples=window["timed_samples"],
        seconds=window["timed_seconds"],
        peak_flops_per_second=peak,
        peak_source=peak_source,
    )
    result = _result(
        spec,
        task=task,
        untrained=untrained,
        extra=extra,
        data=task.data_summary(encoded),
        checkpoint=checkpoint,
        window=window,
        spread=rate_spread(window["step_seconds"], window["step_samples"]),
        train_metrics=train_output.metrics,
        eval_metrics=eval_metrics,
        memory=memory,
        times={
            "setup_seconds": setup_seconds,
            "train_seconds": train_seconds,
            "eval_seconds": eval_seconds,
        },
        training_arguments=args.to_dict(),
        parameters=parameters,
        method=method,
        environment=environment(spec.device, spec.profile),
        utilisation=load,
        time_to_accuracy=tta.summary() if tta is not None else None,
        model_shape={
            "layers": config.num_hidden_layers,
            "hidden": config.hidden_size,
            "heads": config.num_attention_heads,
        },
    )
    result = attach(result, watch)  # issue 12: the probe and contention figures
    result.distributed = distributed_summary(ranks, spec, window)
    if len(ranks) > 1:
        result.machine["contention"] = merge_contention(ranks)
    return result


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
    from ftbench.measure.callbacks import _rng_state, _set_rng_state

    state = _rng_state()
    try:
        return trainer.evaluate()
    finally:
        _set_rng_state(state)


def _result(
    spec: CaseSpec,
    *,
    task: Any,
    untrained: dict[str, Any],
    extra: dict[str, dict[str, Any]],
    data: dict[str, Any],
    checkpoint: Checkpoint,
    window: dict[str, Any],
    spread: dict[str, float] | None,
    train_metrics: dict[str, Any],
    eval_metrics: dict[str, Any],
    memory: dict[str, Any],
    times: dict[str, float],
    training_arguments: dict[str, Any],
    parameters: dict[str, int],
    method: dict[str, Any],
    environment: dict[str, Any],
    utilisation: dict[str, Any],
    time_to_accuracy: dict[str, Any] | None,
    model_shape: dict[str, int],
) -> CaseResult:
    from ftbench.core.record import CaseResult

    real, padded = window["real_tokens"], window["padded_tokens"]
    notes = []
    if checkpoint.random_init:
        notes.append("random weights: quality metrics mean nothing; throughput and memory do")
    dropped = {k: v for k, v in (data.get("dropped_without_room") or {}).items() if v}
    if dropped:
        notes.append(
            f"rows dropped before training, as they don't fit in max_length {spec.max_length}: "
            + ", ".join(f"{n} of {split}" for split, n in dropped.items())
        )
    return CaseResult(
        case_id=spec.case_id,
        job=spec.job,
        profile=spec.profile,
        axes=spec.axes,
        metrics={
            **task.quality(eval_metrics),
            "eval_loss": eval_metrics.get("eval_loss"),
            "train_loss": train_metrics.get("train_loss"),
            **{f"untrained_{k}": v for k, v in task.quality(untrained).items()},
            **({"untrained_eval_loss": untrained.get("eval_loss")} if untrained else {}),
            **extra.get("metrics", {}),
        },
        throughput={
            "train_samples_per_second": window["train_samples_per_second"],
            "train_tokens_per_second": window["train_tokens_per_second"],
            "train_padded_tokens_per_second": window["train_padded_tokens_per_second"],
            "samples_per_second_spread": spread,
            "warmup_steps": window["warmup_steps"],
            "timed_steps": window["timed_steps"],
            "timed_samples": window["timed_samples"],
            "timed_seconds": window["timed_seconds"],
            "step_seconds": window["step_seconds"],
            "step_samples": window["step_samples"],
            "step_times_synchronized": window["step_times_synchronized"],
            # Trainer's figure covers every step, warm-up and data-loader start included.
            "trainer_train_samples_per_second": train_metrics.get("train_samples_per_second"),
            "eval_samples_per_second": eval_metrics.get("eval_samples_per_second"),
            **extra.get("throughput", {}),
        },
        padding={
            "strategy": spec.padding,
            "real_tokens": real,
            "padded_tokens": padded,
            "efficiency": real / padded if padded else None,
            "mean_real_length": real / window["timed_samples"],
            "mean_padded_length": padded / window["timed_samples"],
            "max_length": spec.max_length,
            # [samples, padded length, real tokens, sum of squared real lengths] per timed batch
            "batches": window["batches"],
        },
        memory=memory,
        times=times,
        data=data,
        training={
            "seed": spec.training.seed,
            "recipe": spec.recipe,
            "arguments": training_arguments,
        },
        checkpoint={**checkpoint.describe(), "parameters": parameters, "shape": model_shape},
        method=method,
        utilisation=utilisation,
        time_to_accuracy=time_to_accuracy,
        environment=environment,
        accuracy_meaningful=not checkpoint.random_init and spec.training.evaluate,
        rollout=extra.get("rollout"),
        notes=notes,
    )
