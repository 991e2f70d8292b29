"""Train one side of an invariant, step by step: the losses, gradient norms, weights it ends with.

    from ftbench.measure.trace import train_traced
    trace = train_traced(spec, source)                 # in this process
    trace = train_traced(spec, source, resume_at=12)   # stop at 12, save, resume in a new trainer
    trace = trace_in_processes(spec, source)           # spec.processes ranks (accelerate launch)
    trace.loss[0], trace.grad_norm[0], trace.eval["eval_loss"], trace.weights["classifier.bias"]

A trace is what two settings that must train the same model are compared on
(`ftbench.judge.invariants`). It runs the case's own task, data, model and trainer config, as
the benchmark does, with two differences: the trainer logs every step, and nothing is timed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftbench.core.files import write_json_atomic

if TYPE_CHECKING:
    from ftbench.core.spec import CaseSpec
    from ftbench.stack.data import DataSource


@dataclass
class Trace:
    """What one side trained: per optimizer step (1, 2, ...) its loss, gradient norm and
    learning rate as the trainer logged them, its final evaluation and its trained weights."""

    loss: list[float]
    grad_norm: list[float | None]
    learning_rate: list[float | None]
    eval: dict[str, float]
    weights: dict[str, Any] = field(repr=False)  # name -> fp32 CPU tensor
    seconds: float = 0.0

    def steps(self) -> dict[str, list[Any]]:
        return {"loss": self.loss, "grad_norm": self.grad_norm, "learning_rate": self.learning_rate}

    def save(self, directory: Path) -> None:
        """`trace.json` and `weights.safetensors` under `directory`, each written atomically."""
        from safetensors.torch import save_file

        directory.mkdir(parents=True, exist_ok=True)
        partial = directory / "weights.safetensors.partial"
        save_file({k: v.contiguous() for k, v in self.weights.items()}, str(partial))
        partial.replace(directory / "weights.safetensors")
        write_json_atomic(
            directory / "trace.json",
            {**self.steps(), "eval": self.eval, "seconds": self.seconds},
        )

    @classmethod
    def load(cls, directory: Path) -> Trace:
        from safetensors.torch import load_file

        data = json.loads((directory / "trace.json").read_text(encoding="utf-8"))
        return cls(weights=load_file(str(directory / "weights.safetensors")), **data)


def step_recorder() -> Any:
    """A TrainerCallback keeping every logged step's loss, grad norm and learning rate.

    Shared by both trainers of a resumed run: the steps before the save come from the first,
    those after from the second."""
    from transformers import TrainerCallback

    class StepRecorder(TrainerCallback):
        def __init__(self) -> None:
            self.steps: dict[int, dict[str, float]] = {}

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any):
            if logs and "loss" in logs:
                self.steps[state.global_step] = {
                    k: logs.get(k) for k in ("loss", "grad_norm", "learning_rate")
                }

    return StepRecorder()


def stop_after(step: int) -> Any:
    """A TrainerCallback that ends training after `step`: the first half of a resumed run."""
    from transformers import TrainerCallback

    class StopAfter(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any):
            if state.global_step >= step:
                control.should_training_stop = True
            return control

    return StopAfter()


def without_dropout(model: Any) -> Any:
    """Every dropout layer off (p = 0), the model still in training mode.

    For pairs whose sides draw random numbers differently (other batch shapes, other
    processes): their dropout masks differ by construction, which is not what they test."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        # Attention dropout is often a float the attention function reads (Llama's family).
        for name, value in vars(module).items():
            if "dropout" in name and isinstance(value, float):
                setattr(module, name, 0.0)
    return model


def train_traced(
    spec: CaseSpec,
    source: DataSource,
    *,
    resume_at: int | None = None,
    dropout: bool = True,
    trainer_hook: Any = None,
    data: Any = None,
    prepared: tuple[Any, Any, Any] | None = None,
) -> Trace:
    """Train `spec` with the trainer logging every step; evaluate; keep the weights.

    `resume_at`: train to that step, save a checkpoint (model, optimizer, scheduler, RNG, data
    position), then resume from it in a fresh trainer with a fresh model, to the end.
    `trainer_hook(trainer)`: called on each trainer before it trains (tests plant faults).
    `data`: the task's data, already loaded from `source`; `prepared`: (checkpoint, tokenizer,
    encoded data) for this spec, already built (a pytest session builds each once)."""
    import time

    from transformers import PrinterCallback

    from ftbench.measure.runner import encode, training_arguments
    from ftbench.stack.checkpoints import load_tokenizer, resolve_checkpoint
    from ftbench.tasks import get_task

    started = time.perf_counter()
    task = get_task(spec.task)
    if data is None:
        data = task.load_data(source)
    if prepared is None:
        checkpoint = resolve_checkpoint(spec.checkpoint)
        tokenizer = load_tokenizer(checkpoint)
        prepared = (checkpoint, tokenizer, encode(task, data, tokenizer, spec))
    checkpoint, tokenizer, encoded = prepared
    recorder = step_recorder()

    with tempfile.TemporaryDirectory(prefix="ftbench-trace-") as work:

        def build(callbacks: list[Any], **saving: Any) -> Any:
            model, _ = task.load_case_model(spec, checkpoint, tokenizer, data)
            if not dropout:
                without_dropout(model)
            args = training_arguments(
                spec,
                work,
                train_size=len(encoded["train"]),
                logging_steps=1,
                disable_tqdm=True,
                **saving,
            )
            trainer = task.trainer(
                spec,
                model=model,
                args=args,
                tokenizer=tokenizer,
                data=encoded,
                collator=task.collator(spec.padding, tokenizer),
                callbacks=[recorder, *callbacks],
            )
            trainer.remove_callback(PrinterCallback)  # logs every step: keep the output quiet
            if trainer_hook is not None:
                trainer_hook(trainer)
            return trainer

        if resume_at:
            first = build([stop_after(resume_at)], save_strategy="steps", save_steps=resume_at)
            first.train()
            trainer = build([])
            trainer.train(resume_from_checkpoint=str(Path(work) / f"checkpoint-{resume_at}"))
        else:
            trainer = build([])
            trainer.train()
        evaluated = trainer.evaluate() if spec.training.evaluate else {}
        model = trainer.model
        weights = {name: p.detach().float().cpu().clone() for name, p in model.named_parameters()}

    steps = [recorder.steps[s] for s in sorted(recorder.steps)]
    quality = {k: v for k, v in task.quality(evaluated).items() if v is not None}
    if "eval_loss" in evaluated:
        quality["eval_loss"] = evaluated["eval_loss"]
    return Trace(
        loss=[s["loss"] for s in steps],
        grad_norm=[s.get("grad_norm") for s in steps],
        learning_rate=[s.get("learning_rate") for s in steps],
        eval={k: float(v) for k, v in quality.items()},
        weights=weights,
        seconds=time.perf_counter() - started,
    )


def trace_in_processes(
    spec: CaseSpec,
    source: DataSource,
    *,
    dropout: bool = True,
    timeout: float = 1800.0,
) -> Trace:
    """`train_traced` in `spec.processes` processes under accelerate launch; rank 0's trace.

    The same global batch: each process takes batch_size / processes rows a step."""
    from ftbench.measure.launch import (
        LaunchError,
        child_environment,
        free_port,
        launch_command,
        run_launcher,
        write_spec,
    )

    with tempfile.TemporaryDirectory(prefix="ftbench-trace-launch-") as work:
        spec_path = write_spec(spec, Path(work) / "spec.json")
        source_path = write_json_atomic(Path(work) / "source.json", asdict(source))
        out = Path(work) / "trace"
        args = ["--case-spec", str(spec_path), "--source", str(source_path), "--out", str(out)]
        if not dropout:
            args.append("--no-dropout")
        command = launch_command(
            spec.processes, args, port=free_port(), module="ftbench.measure.trace"
        )
        env = child_environment(spec.processes, spec.device)
        run_launcher(command, env, timeout=timeout, what=f"{spec.case_id} (traced)")
        if not (out / "trace.json").is_file():
            raise LaunchError(f"{spec.case_id}: every rank exited 0 but rank 0 wrote no trace")
        return Trace.load(out)


def main(argv: list[str] | None = None) -> int:
    """The launched side of `trace_in_processes`: every rank trains, rank 0 saves the trace."""
    from ftbench.env.distributed import world
    from ftbench.measure.launch import read_spec
    from ftbench.stack.data import DataSource

    parser = argparse.ArgumentParser(prog="python -m ftbench.measure.trace")
    parser.add_argument("--case-spec", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--no-dropout", action="store_true")
    args = parser.parse_args(argv)
    spec = read_spec(args.case_spec)
    fields = json.loads(Path(args.source).read_text(encoding="utf-8"))
    fields["text_columns"] = tuple(fields["text_columns"])
    trace = train_traced(spec, DataSource(**fields), dropout=not args.no_dropout)
    if world()[0] == 0:
        trace.save(Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
