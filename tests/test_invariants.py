"""Invariants: pairs of settings that must train the same model, compared step by step.

The judge on made-up traces (a pass, a parting named by step and values, expected marks that
must stay true), job files' `invariants:`, and planted faults on tiny models: a gradient
accumulation normalised by the wrong count, a padding-free collator that drops position ids,
a resume that restores neither the scheduler nor the data order. Each must fail naming its
invariant; the unplanted pair must pass within its bound.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import datasets  # noqa: F401  (see test_plugin.py: imported before any pytester run)
import pytest
import torch
from transformers import Trainer, TrainingArguments  # noqa: F401  (pickled in checkpoints)

from ftbench.config.invariants import pairs_of
from ftbench.config.jobfile import load_job_file
from ftbench.core.errors import ConfigError
from ftbench.core.invariants import EXACT, Bounds, Expected, bounds_for
from ftbench.core.spec import CaseSpec, Training
from ftbench.judge.invariants import EXPECTED, FAILED, FIXED, PASSED, compare, outcome
from ftbench.measure.trace import Trace, train_traced
from ftbench.stack.data import DataSource

# -- the judge ----------------------------------------------------------------------------------


def trace(loss, grad_norm=None, weight=0.5, **evaluated) -> Trace:

    return Trace(
        loss=list(loss),
        grad_norm=list(grad_norm or [1.0] * len(loss)),
        learning_rate=[1e-4] * len(loss),
        eval=evaluated or {"eval_loss": 0.6},
        weights={"w": torch.full((2, 2), weight)},
    )


def test_identical_traces_agree_bit_for_bit() -> None:
    comparison = compare("determinism", trace([0.7, 0.6]), trace([0.7, 0.6]), EXACT)

    assert comparison.passed
    assert comparison.describe() == "invariant determinism: a and b agree over 2 steps bit for bit"


def test_a_parting_names_the_step_and_both_values() -> None:
    a, b = trace([0.7, 0.6, 0.5]), trace([0.7, 0.6, 0.52])
    comparison = compare("grad-accum", a, b, Bounds(1e-5, 1e-4, 1, 1), ("1 batch", "4 x 8"))

    assert not comparison.passed
    assert comparison.describe() == (
        "invariant grad-accum: the loss parted at step 3: 0.5 (1 batch) vs 0.52 (4 x 8); "
        "relative difference 0.04 > bound 1e-05"
    )


def test_weights_and_evaluation_are_compared_too() -> None:
    within_steps = Bounds(loss=1, grad_norm=1, weights=1e-3, eval=1e-3)
    weights = compare("padding", trace([1.0]), trace([1.0], weight=0.6), within_steps)
    evaluated = compare("padding", trace([1.0]), trace([1.0], eval_loss=0.61), within_steps)

    assert "the weights differ; max abs difference 0.1 > bound 0.001" in weights.describe()
    assert "the eval loss differ: 0.6 (a) vs 0.61 (b)" in evaluated.describe()


def test_sides_of_other_lengths_are_not_compared() -> None:
    comparison = compare("resume", trace([1.0, 0.9]), trace([1.0]), EXACT)

    assert not comparison.passed
    assert "a logged 2 steps, b 1" in comparison.describe()


def test_an_expected_divergence_is_reported_and_must_stay_true() -> None:
    mark = Expected("Trainer scales the loss by the processes", "https://example.org/1")
    parted = compare("processes", trace([0.7]), trace([1.4]), Bounds(1e-5, 1e-4, 1, 1))
    agreed = compare("processes", trace([0.7]), trace([0.7]), Bounds(1e-5, 1e-4, 1, 1))

    assert outcome(parted, None)[0] == FAILED
    status, line = outcome(parted, mark)
    assert status == EXPECTED
    assert "expected: Trainer scales the loss by the processes (https://example.org/1)" in line
    status, line = outcome(agreed, mark)
    assert status == FIXED
    assert line.endswith("remove the mark")
    assert outcome(agreed, None)[0] == PASSED


def test_bounds_are_exact_only_where_the_arithmetic_is() -> None:
    assert bounds_for("resume", device="cpu", precision="fp32") == EXACT
    assert bounds_for("determinism", device="cuda", precision="fp32") != EXACT
    assert bounds_for("grad-accum", device="cpu", precision="fp32").loss == 1e-5
    assert bounds_for("precision", device="cpu", precision="fp32").loss > 1e-5


# -- job files ------------------------------------------------------------------------------------

JOB = """\
name: inv
task: mrpc
checkpoint: minilm-l6
paddings: [dynamic, static]
trainer: {max_steps: 8, per_device_train_batch_size: 16}
"""


def test_a_job_lists_its_invariants_and_their_pairs(tmp_path: Path) -> None:
    path = tmp_path / "ftbench.yaml"
    path.write_text(
        JOB + "invariants:\n  - determinism\n  - resume\n  - grad-accum\n  - padding\n"
        "  - processes: {expected: the loss doubles, link: 'https://example.org/2'}\n"
    )
    profile = load_job_file(path)
    [job] = profile.jobs
    pairs = {p.id: p for p in pairs_of(job, profile)}

    assert job.expected["processes"] == Expected("the loss doubles", "https://example.org/2")
    assert list(pairs) == [
        "determinism",
        "resume",
        "grad-accum",
        "padding-static",
        "processes-2proc",
    ]
    assert pairs["resume"].b.resume_at == 4
    assert pairs["grad-accum"].b.spec.training.batch_size == 4
    assert pairs["grad-accum"].b.spec.training.trainer_args == {"gradient_accumulation_steps": 4}
    assert pairs["determinism"].a.key != pairs["determinism"].b.key  # trained twice
    assert pairs["resume"].a.key == pairs["determinism"].a.key  # side a trained once
    assert pairs["padding-static"].a.dropout is False
    assert pairs["processes-2proc"].expected is not None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("invariants: [determinsm]\n", "unknown invariant 'determinsm'"),
        ("invariants: [resume, resume]\n", "invariant 'resume' is listed twice"),
        ("invariants: [{resume: {link: x}}]\n", "invariant resume: give `expected:`"),
        ("invariants: [{resume: {expected: x, why: y}}]\n", "unknown key 'why'"),
    ],
)
def test_bad_invariants_are_one_line_with_the_line(
    tmp_path: Path, extra: str, message: str
) -> None:
    path = tmp_path / "ftbench.yaml"
    path.write_text(JOB + extra)
    with pytest.raises(ConfigError, match=r"ftbench\.yaml:6") as caught:
        load_job_file(path)
    assert message in str(caught.value)


def test_an_invariants_job_needs_fixed_steps(tmp_path: Path) -> None:
    path = tmp_path / "ftbench.yaml"
    path.write_text(JOB.replace("max_steps: 8", "num_train_epochs: 1") + "invariants: [resume]\n")
    with pytest.raises(ConfigError, match=r"set trainer\.max_steps"):
        load_job_file(path)


# -- planted faults, on tiny models ----------------------------------------------------------------

STEPS = Training(
    max_steps=6, batch_size=8, eval_batch_size=8, learning_rate=1e-3, eval_samples=8, seed=3
)


def _mrpc(checkpoint: Path, **changes) -> CaseSpec:
    return CaseSpec("inv", str(checkpoint), "dynamic", max_length=64, training=STEPS, **changes)


def _accumulated(spec: CaseSpec, k: int) -> CaseSpec:
    t = spec.training
    accumulated = replace(t, batch_size=t.batch_size // k,
                          trainer_args={"gradient_accumulation_steps": k})  # fmt: skip
    return replace(spec, training=accumulated)


def _judge(name: str, spec: CaseSpec, a: Trace, b: Trace) -> tuple[str, str]:
    bounds = bounds_for(name, device="cpu", precision="fp32")
    return outcome(compare(name, a, b, bounds), None)


def test_gradient_accumulation_normalised_by_the_wrong_count_fails(tiny_checkpoint, glue_dir):
    source = DataSource(data_dir=str(glue_dir))
    spec = _mrpc(tiny_checkpoint)
    one = train_traced(spec, source, dropout=False)
    four = train_traced(_accumulated(spec, 4), source, dropout=False)
    assert _judge("grad-accum", spec, one, four)[0] == PASSED

    def undivided(trainer):  # transformers 5's default for a classifier: never divided by k
        trainer.model_accepts_loss_kwargs = True

    planted = train_traced(_accumulated(spec, 4), source, dropout=False, trainer_hook=undivided)
    status, line = _judge("grad-accum", spec, one, planted)
    assert status == FAILED
    assert line.startswith("invariant grad-accum: the loss parted at step 1:")


def _sft(checkpoint: Path, padding: str = "padded") -> CaseSpec:
    return CaseSpec("inv", str(checkpoint), padding, task="sft", max_length=128, training=STEPS)


def test_a_padding_free_collator_without_position_ids_fails(tiny_llama, chat_data) -> None:
    source = DataSource(data_dir=str(chat_data))
    padded = train_traced(_sft(tiny_llama), source)
    free = train_traced(_sft(tiny_llama, "padding-free"), source)
    assert _judge("padding", padded.loss, padded, free)[0] == PASSED

    # Without any position ids TRL stops with a ValueError; the silent fault is position ids
    # that no longer restart at each row: the rows then attend to one another.
    def drop_position_ids(trainer):

        collate = trainer.data_collator

        def collator(rows):
            batch = collate(rows)
            batch["position_ids"] = torch.arange(batch["input_ids"].shape[1]).unsqueeze(0)
            return batch

        trainer.data_collator = collator

    planted = train_traced(_sft(tiny_llama, "padding-free"), source, trainer_hook=drop_position_ids)
    status, line = _judge("padding", padded.loss, padded, planted)
    assert status == FAILED
    assert line.startswith("invariant padding: the loss parted at step 1:")


def test_gradient_accumulation_of_a_token_level_loss(tiny_llama, chat_data) -> None:
    """SFT, where the bug lived: micro-batches of other token counts must not be averaged
    as equals."""
    source = DataSource(data_dir=str(chat_data))
    one = train_traced(_sft(tiny_llama), source)
    two = train_traced(_accumulated(_sft(tiny_llama), 2), source)
    assert _judge("grad-accum", None, one, two)[0] == PASSED

    def per_micro_batch_mean(trainer):  # the pre-2024 bug: each micro-batch's mean, then / k
        compute = trainer.compute_loss

        def compute_loss(model, inputs, return_outputs=False, num_items_in_batch=None):
            return compute(model, inputs, return_outputs=return_outputs)

        trainer.compute_loss = compute_loss

    planted = train_traced(
        _accumulated(_sft(tiny_llama), 2), source, trainer_hook=per_micro_batch_mean
    )
    status, line = _judge("grad-accum", None, one, planted)
    assert status == FAILED
    assert "invariant grad-accum: the loss parted at step" in line


@pytest.mark.parametrize("fault", ["scheduler", "data order", "rng"])
def test_a_resume_that_restores_less_fails(
    tiny_checkpoint, glue_dir, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    source = DataSource(data_dir=str(glue_dir))
    spec = _mrpc(tiny_checkpoint)
    straight = train_traced(spec, source)
    resumed = train_traced(spec, source, resume_at=3)
    assert _judge("resume", spec, straight, resumed)[0] == PASSED

    def plant(trainer):
        if fault == "data order":
            trainer.args.ignore_data_skip = True  # starts again from the epoch's first batch
        elif fault == "rng":
            monkeypatch.setattr(trainer, "_load_rng_state", lambda checkpoint: None)

    if fault == "scheduler":
        # Trainer's schedules are LambdaLR: its state is never loaded, so it starts again
        monkeypatch.setattr(
            torch.optim.lr_scheduler.LambdaLR, "load_state_dict", lambda self, state: None
        )
    planted = train_traced(spec, source, resume_at=3, trainer_hook=plant)
    status, line = _judge("resume", spec, straight, planted)
    assert status == FAILED, fault
    # Steps 1-3 ran before the save: the curves part only after it.
    expected = r"invariant resume: the (loss|grad norm|learning rate) parted at step [456]:"
    assert re.match(expected, line), line


# -- the job in pytest --------------------------------------------------------------------------


def test_an_invariants_job_file_runs_its_pairs_in_pytest(
    pytester: pytest.Pytester, tiny_checkpoint, glue_dir
) -> None:
    pytester.makefile(
        ".yaml",
        ftbench_inv=(
            f"name: inv\ntask: mrpc\ncheckpoint: {tiny_checkpoint}\nmax_length: 64\n"
            "paddings: [dynamic, static]\n"
            "trainer: {max_steps: 4, per_device_train_batch_size: 8, learning_rate: 1.0e-3}\n"
            "evaluation: {eval_samples: 8}\n"
            "invariants:\n  - determinism\n  - padding\n"
            "  - grad-accum: {expected: 'a made-up mark', link: 'https://example.org/3'}\n"
        ),
    )
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--ftb-data-dir", str(glue_dir),
        "--ftb-results-dir", str(pytester.path / "results"),
    )  # fmt: skip

    result.assert_outcomes(passed=2, failed=1)
    output = "\n".join(result.outlines + result.errlines)
    assert (
        "inv: invariant grad-accum: 1 batch of 8 and 4 x 2 accumulated agree over 4 steps, but "
        "it is marked as an expected divergence (a made-up mark (https://example.org/3)): "
        "remove the mark"
    ) in output
    assert "invariants: 2 of 3 pairs agree within their bounds" in output
    assert "FAILED ftbench_inv.yaml::inv[grad-accum]" in output
    [run] = (pytester.path / "results" / "runs").iterdir()
    rows = [json.loads(p.read_text()) for p in (run / "invariants").glob("*.json")]
    assert sorted(r["status"] for r in rows) == ["pass", "pass", "unexpectedly agrees"]
    assert (run / "invariants.png").stat().st_size > 10_000


def test_pairs_a_job_cannot_make_are_skipped_saying_why(tmp_path: Path) -> None:
    from ftbench.config.invariants import Unbuilt, plan

    path = tmp_path / "ftbench.yaml"
    path.write_text(
        JOB.replace("[dynamic, static]", "[dynamic, bucketed]").replace("size: 16", "size: 6")
        + "processes: [1, 4]\ninvariants: [padding, processes, grad-accum]\n"
    )
    profile = load_job_file(path)
    planned = {p.id: p for p in plan(profile.jobs[0], profile)}

    assert planned["padding-bucketed"] == Unbuilt(
        "padding-bucketed", "bucketed padding changes which rows a step trains on"
    )
    assert planned["processes-4proc"].reason == "batch 6 does not split over 4 processes"
    assert planned["grad-accum"].b.label == "2 x 3 accumulated"
    only_bucketed = replace(profile.jobs[0], paddings=("bucketed",))
    assert all(isinstance(p, Unbuilt) for p in plan(only_bucketed, profile))
