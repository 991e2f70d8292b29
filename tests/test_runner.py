"""One case end to end on a tiny model: the record, the timing window, and failure modes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftbench.core.errors import CaseOutOfMemoryError, ConfigError, NonFiniteLossError
from ftbench.core.record import SCHEMA_VERSION, RunStore, read_record
from ftbench.core.spec import CaseSpec, Lora, Training
from ftbench.measure.runner import run
from ftbench.stack.data import DataSource

TINY_TRAINING = Training(max_steps=6, batch_size=8, eval_batch_size=16, timing_warmup_steps=2)


def _spec(checkpoint: Path, padding: str = "dynamic", method: str = "full", **training) -> CaseSpec:
    from dataclasses import replace

    return CaseSpec(
        "throughput",
        str(checkpoint),
        padding,
        "cpu",
        "fp32",
        method,
        replace(TINY_TRAINING, **training),
        max_length=64,
        lora=Lora() if method != "full" else None,
    )


def test_record_holds_the_promised_keys(
    tiny_checkpoint: Path, glue_dir: Path, tmp_path: Path
) -> None:
    result = run(
        _spec(tiny_checkpoint), DataSource(data_dir=str(glue_dir)), show_progress_bar=False
    )
    path = RunStore(tmp_path / "runs" / "one").write(result)
    record = read_record(path)

    assert record["case_id"] == "throughput[tiny-bert-dynamic-cpu-fp32-full]"
    assert record["axes"] == {
        "task": "mrpc",
        "checkpoint": str(tiny_checkpoint),
        "padding": "dynamic",
        "device": "cpu",
        "precision": "fp32",
        "method": "full",
    }
    assert set(record["metrics"]) >= {"eval_accuracy", "eval_f1"}
    assert 0 <= record["metrics"]["eval_accuracy"] <= 1
    throughput = record["throughput"]
    assert (throughput["timed_steps"], throughput["timed_samples"]) == (4, 32)
    assert throughput["train_samples_per_second"] == pytest.approx(32 / throughput["timed_seconds"])
    assert throughput["trainer_train_samples_per_second"] > 0
    assert throughput["eval_samples_per_second"] > 0
    padding = record["padding"]
    assert 0 < padding["real_tokens"] <= padding["padded_tokens"]
    assert padding["efficiency"] == pytest.approx(padding["real_tokens"] / padding["padded_tokens"])
    # one [samples, padded length, real tokens, Σ real length²] per timed batch, adding up
    batches = padding["batches"]
    assert len(batches) == record["throughput"]["timed_steps"]
    assert sum(b[0] for b in batches) == record["throughput"]["timed_samples"]
    assert sum(b[0] * b[1] for b in batches) == padding["padded_tokens"]
    assert sum(b[2] for b in batches) == padding["real_tokens"]
    assert all(b[2] ** 2 / b[0] <= b[3] <= b[0] * b[1] ** 2 for b in batches)
    assert record["memory"]["peak_bytes"] > 0
    assert record["memory"]["model_bytes"] > 0
    assert record["method"]["name"] == "full"
    assert record["method"]["trainable_share"] == 1.0
    assert record["training"]["recipe"]["lora"] is None
    assert set(record["times"]) == {"setup_seconds", "train_seconds", "eval_seconds"}
    assert record["training"]["seed"] == 42
    assert record["training"]["arguments"]["per_device_train_batch_size"] == 8
    environment = record["environment"]
    assert set(environment["versions"]) >= {
        "python",
        "torch",
        "transformers",
        "datasets",
        "accelerate",
    }
    assert {"cpu_model", "cpu_count", "device_name", "git", "profile", "cuda"} <= set(environment)
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION
    # what it trained on, as pytest's records say: a baseline made from it compares data
    assert record["data"]["splits"]["train"]["rows"] > 0
    assert record["data"]["splits"]["validation"]["content_sha256"]


def test_same_seed_same_numbers(tiny_checkpoint: Path, glue_dir: Path) -> None:
    source = DataSource(data_dir=str(glue_dir))
    first, second = (
        run(_spec(tiny_checkpoint, "bucketed"), source, show_progress_bar=False) for _ in range(2)
    )

    assert first.metrics == second.metrics
    assert first.padding == second.padding


def test_static_padding_is_less_efficient(tiny_checkpoint: Path, glue_dir: Path) -> None:
    source = DataSource(data_dir=str(glue_dir))
    static = run(_spec(tiny_checkpoint, "static"), source, show_progress_bar=False)
    bucketed = run(_spec(tiny_checkpoint, "bucketed"), source, show_progress_bar=False)

    assert static.padding["padded_tokens"] == 32 * 64
    assert static.padding["efficiency"] < bucketed.padding["efficiency"]


def test_nan_loss_fails_the_case_clearly(
    tiny_checkpoint: Path, glue_dir: Path, monkeypatch
) -> None:
    from transformers import Trainer

    compute_loss = Trainer.compute_loss

    def poisoned(self, *args, **kwargs):
        loss = compute_loss(self, *args, **kwargs)
        return loss * float("nan") if self.state.global_step >= 2 else loss

    monkeypatch.setattr(Trainer, "compute_loss", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"training loss became nan at step \d+"):
        run(
            _spec(tiny_checkpoint, max_steps=30),
            DataSource(data_dir=str(glue_dir)),
            show_progress_bar=False,
        )


def test_out_of_memory_names_the_case_and_batch_size(
    tiny_checkpoint: Path, glue_dir: Path, monkeypatch
) -> None:
    import torch
    from transformers import Trainer

    def out_of_memory(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "train", out_of_memory)
    with pytest.raises(
        CaseOutOfMemoryError, match=r"dynamic-cpu-fp32-full\]: out of memory on cpu at batch size 8"
    ):
        run(_spec(tiny_checkpoint), DataSource(data_dir=str(glue_dir)), show_progress_bar=False)


def test_ftbench_run_refuses_an_absent_device(capsys) -> None:
    from ftbench.cli import main

    assert main(["run", "--device", "mps", "--data-dir", "nowhere"]) == 2
    assert "ftbench: mps/fp32/full: no MPS device" in capsys.readouterr().err


def test_too_few_steps_for_the_warm_up_is_explained(tiny_checkpoint: Path, glue_dir: Path) -> None:
    with pytest.raises(
        ConfigError, match="no steady-state window: training ran fewer than 3 steps"
    ):
        run(
            _spec(tiny_checkpoint, max_steps=2),
            DataSource(data_dir=str(glue_dir)),
            show_progress_bar=False,
        )


def test_progress_lines_name_the_case(tiny_checkpoint: Path, glue_dir: Path) -> None:
    lines: list[str] = []
    run(
        _spec(tiny_checkpoint),
        DataSource(data_dir=str(glue_dir)),
        report=lines.append,
        show_progress_bar=False,
    )

    assert lines[-2].startswith("throughput[tiny-bert-dynamic-cpu-fp32-full]: step 6/6")
    assert "samples/s" in lines[-2]
    assert lines[-1].startswith("throughput[tiny-bert-dynamic-cpu-fp32-full]: eval ")
    assert "accuracy 0." in lines[-1]


def test_time_to_accuracy_leaves_training_unchanged(tiny_checkpoint: Path, glue_dir: Path) -> None:
    """Periodic evaluation restores the random state, so the trained model is the same."""
    source = DataSource(data_dir=str(glue_dir))
    plain = run(_spec(tiny_checkpoint, max_steps=12), source, show_progress_bar=False)
    timed = run(
        _spec(tiny_checkpoint, max_steps=12, target_accuracy=0.0, evaluations=3),
        source,
        show_progress_bar=False,
    )
    never = run(
        _spec(tiny_checkpoint, max_steps=12, target_accuracy=1.01, evaluations=3),
        source,
        show_progress_bar=False,
    )

    assert plain.time_to_accuracy is None
    assert timed.metrics == plain.metrics
    tta = timed.time_to_accuracy
    assert tta["reached"]
    assert tta["step"] == 4  # the first of the evaluations every 12/3 steps
    assert tta["samples"] == 4 * 8
    assert 0 < tta["train_seconds"] < timed.times["train_seconds"]
    assert [e["step"] for e in tta["evaluations"]] == [4, 8, 12]
    assert never.time_to_accuracy["reached"] is False
    assert never.time_to_accuracy["train_seconds"] is None


def test_utilisation_is_recorded_against_the_measured_cpu_peak(
    tiny_checkpoint: Path, glue_dir: Path
) -> None:
    result = run(
        _spec(tiny_checkpoint), DataSource(data_dir=str(glue_dir)), show_progress_bar=False
    )
    load = result.utilisation
    assert load["peak_source"].startswith("measured fp32 matmul peak of this CPU")
    assert 0 < load["mfu"] < 1
    shape = result.checkpoint["shape"]
    assert shape == {"layers": 2, "hidden": 32, "heads": 2}
    assert load["flops_per_token"] == pytest.approx(
        6 * result.checkpoint["parameters"]["non_embedding"]
        + 12 * 2 * 32 * result.padding["real_tokens"] / result.throughput["timed_samples"]
    )


def test_instruments_keep_the_order_the_numbers_depend_on() -> None:
    """The watch probes outside the timed window only if it runs first; the rest as before."""
    from types import SimpleNamespace

    import torch

    from ftbench.measure.callbacks import LossGuard, Progress, RoundGate, StepTimer, TimeToAccuracy
    from ftbench.measure.machine import MachineWatch
    from ftbench.measure.runner import instruments
    from ftbench.tasks import get_task

    spec = _spec(Path("tiny-bert"), target_accuracy=0.5, evaluations=2)
    task, model = get_task(spec.task), torch.nn.Linear(2, 2)
    tokenizer = SimpleNamespace(pad_token_id=0, eos_token_id=1)
    mine = object()
    every = instruments(spec, task, model, tokenizer, report=print, callbacks=[mine], rounds=True)
    plain = instruments(_spec(Path("tiny-bert")), task, model, tokenizer)
    for tools in (every, plain):
        tools.counter.remove()

    assert [type(c) for c in every.callbacks] == [
        MachineWatch,
        StepTimer,
        LossGuard,
        object,
        Progress,
        RoundGate,
        TimeToAccuracy,
    ]
    assert every.callbacks[3] is mine
    assert every.tta.counter is every.counter is every.timer.counter
    assert [type(c) for c in plain.callbacks] == [MachineWatch, StepTimer, LossGuard]


@pytest.mark.parametrize("bad", [None, (3, float("nan"))])
def test_check_loss_refuses_a_loss_the_guard_or_the_trainer_saw_go_bad(bad) -> None:
    from types import SimpleNamespace

    from ftbench.measure.callbacks import LossGuard
    from ftbench.measure.runner import check_loss

    spec = _spec(Path("tiny-bert"))
    guard = LossGuard()
    check_loss(SimpleNamespace(metrics={"train_loss": 0.7}, global_step=6), guard, spec)
    guard.bad = bad
    output = SimpleNamespace(metrics={"train_loss": float("inf")}, global_step=6)
    step = 3 if bad else 6
    with pytest.raises(NonFiniteLossError, match=rf"loss became \w+ at step {step}"):
        check_loss(output, guard, spec)
