"""Planted regressions for checking ftbench's gates: a pytest plugin that ftbench never ships.

Each is switched on by an environment variable; none changes anything when they are unset.

    FTB_PLANT_LR_FACTOR=100             train with the learning rate multiplied by this
    FTB_PLANT_SLEEP=0.2                 sleep this many seconds in every training step
    FTB_PLANT_SLOWDOWN=0.3              then make every step this much slower still (30%)
    FTB_PLANT_SHUFFLED_EVAL=1           evaluate on a shuffled-label copy of validation
    FTB_PLANT_NO_ATTENTION_MASK=1       a collator that drops the attention mask
    FTB_PLANT_NAN=1                     a NaN training loss
    FTB_PLANT_SWAP_PREFERENCES=1        preference pairs trained with chosen and rejected swapped
    FTB_PLANT_NOISE_REWARD=1            GRPO trained on rewards that are noise (evaluation keeps
                                        the real rewards)
    FTB_PLANT_HOST_SPEED=1.45           a host this much faster: the planted sleep shrinks and
                                        the device probe's score grows by the factor (with a
                                        planted sleep the probe's score is fixed at 100 x this)
    FTB_PLANT_OOM=static                cases of this padding run out of memory in the forward

The recipe each record states stays the profile's: the plants act like a silent bug in a
library, which is what the baseline gates are there to catch (a maskless collator is stopped
earlier, by the padding counter's own check). On the real benchmark, in every process (the
fresh one each throughput-gated case trains in too):

    FTB_PLANT_NO_ATTENTION_MASK=1 PYTHONPATH=scripts/plants pytest bench/ \\
        -k "test_finetune and full" --ftb-data-dir ../shared/data

tests/test_gates.py loads it the same way in its pytester runs (conftest and sitecustomize).
"""

import os
import random
import sys
import time
from typing import Any

import ftbench.measure.callbacks
import ftbench.stack.data
import ftbench.stack.padding


def plant(module: Any, name: str, replacement: Any) -> None:
    """Replace `module.name` and every ftbench module's name for it, imported yet or not, so
    the plant acts wherever the function is called from, like a bug in it would."""
    original = getattr(module, name)
    for other in list(sys.modules.values()):
        if getattr(other, "__name__", "").startswith("ftbench") and (
            getattr(other, name, None) is original
        ):
            setattr(other, name, replacement)


LR_FACTOR = float(os.environ.get("FTB_PLANT_LR_FACTOR", "0"))
if LR_FACTOR:
    import ftbench.measure.runner

    make_arguments = ftbench.measure.runner.training_arguments

    def scaled_arguments(*args, **kwargs):
        arguments = make_arguments(*args, **kwargs)
        arguments.learning_rate *= LR_FACTOR
        return arguments

    plant(ftbench.measure.runner, "training_arguments", scaled_arguments)

HOST_SPEED = float(os.environ.get("FTB_PLANT_HOST_SPEED", "1"))
if HOST_SPEED != 1 or os.environ.get("FTB_PLANT_SLEEP"):
    import ftbench.env.probe

    probe = ftbench.env.probe.measure_probe

    def planted_probe(*args, **kwargs):
        # The planted step is mostly a sleep, which no CPU speed changes, so a real probe would
        # add only its own noise (10% between two probes on the shared VM): the planted host's
        # probe is a fixed score, scaled by its speed.
        figures = probe(*args, **kwargs)
        return {**figures, "score": 100.0 * HOST_SPEED}

    plant(ftbench.env.probe, "measure_probe", planted_probe)

SLEEP = float(os.environ.get("FTB_PLANT_SLEEP", "0")) / HOST_SPEED
SLOWDOWN = float(os.environ.get("FTB_PLANT_SLOWDOWN", "0"))
if SLEEP or SLOWDOWN:
    step_end = ftbench.measure.callbacks.StepTimer.on_step_end
    last = [None]

    def slow_step_end(self, *args, **kwargs):
        # The step's own work since the last step ended, then the plant's "work", then the
        # slowdown as a share of both: a 30% slowdown makes every step 1.3 times as long.
        work = time.perf_counter() - last[0] if last[0] is not None else 0.0
        time.sleep(SLEEP + SLOWDOWN * (work + SLEEP))
        last[0] = time.perf_counter()
        return step_end(self, *args, **kwargs)

    ftbench.measure.callbacks.StepTimer.on_step_end = slow_step_end

if os.environ.get("FTB_PLANT_SHUFFLED_EVAL"):
    tokenize = ftbench.stack.data.tokenize_pairs

    def shuffled(*args, **kwargs):
        encoded = tokenize(*args, **kwargs)
        labels = list(encoded["validation"]["label"])
        random.Random(0).shuffle(labels)
        validation = encoded["validation"].remove_columns("label").add_column("label", labels)
        encoded["validation"] = validation
        return encoded

    plant(ftbench.stack.data, "tokenize_pairs", shuffled)

if os.environ.get("FTB_PLANT_NO_ATTENTION_MASK"):
    collator = ftbench.stack.padding.PaddingStrategy.collator

    def maskless(self, tokenizer):
        base = collator(self, tokenizer)
        return lambda features: {k: v for k, v in base(features).items() if k != "attention_mask"}

    ftbench.stack.padding.PaddingStrategy.collator = maskless

if os.environ.get("FTB_PLANT_NAN"):
    from transformers import Trainer

    compute_loss = Trainer.compute_loss

    def nan_loss(self, model, inputs, return_outputs=False, **kwargs):
        if return_outputs:  # evaluation
            return compute_loss(self, model, inputs, return_outputs=True, **kwargs)
        return compute_loss(self, model, inputs, **kwargs) * float("nan")

    Trainer.compute_loss = nan_loss

if os.environ.get("FTB_PLANT_SWAP_PREFERENCES"):
    import ftbench.stack.rows

    load_pairs = ftbench.stack.rows.load_preference_rows

    def swapped(*args, **kwargs):
        # Training pairs with chosen and rejected swapped; evaluation keeps the true labels.
        data = load_pairs(*args, **kwargs)
        data["train"] = data["train"].rename_columns({"chosen": "rejected", "rejected": "chosen"})
        return data

    plant(ftbench.stack.rows, "load_preference_rows", swapped)
if os.environ.get("FTB_PLANT_NOISE_REWARD"):
    import ftbench.tasks.grpo

    make_trainer = ftbench.tasks.grpo.Grpo.trainer

    def noisy_trainer(self, spec, **kwargs):
        # Every reward function returns uniform noise while the policy trains, and its real
        # value when the policy is evaluated: a reward bug that training alone would not show.
        trainer = make_trainer(self, spec, **kwargs)
        rng = random.Random(0)

        def noisy(function):
            def reward(*args, completions, **kw):
                values = function(*args, completions=completions, **kw)
                return [rng.random() for _ in values] if trainer.model.training else values

            return reward

        trainer.reward_funcs = [noisy(f) for f in trainer.reward_funcs]
        return trainer

    ftbench.tasks.grpo.Grpo.trainer = noisy_trainer

OOM = os.environ.get("FTB_PLANT_OOM")
if OOM:
    import gc
    import weakref

    import torch

    import ftbench.measure.runner

    train_and_evaluate = ftbench.measure.runner.train_and_evaluate
    failed = []  # weak references to the models of cases that ran out of memory

    def out_of_memory(module, inputs):
        raise torch.OutOfMemoryError("Tried to allocate 2.00 GiB (planted by FTB_PLANT_OOM)")

    def oom_case(spec, **kwargs):
        gc.collect()
        for model in failed:  # the last case's model must be gone by now
            print(f"FTB_PLANT_OOM: model of the failed case released: {model() is None}")
        if spec.padding == OOM:
            failed.append(weakref.ref(kwargs["model"]))
            kwargs["model"].register_forward_pre_hook(out_of_memory)
        return train_and_evaluate(spec, **kwargs)

    plant(ftbench.measure.runner, "train_and_evaluate", oom_case)
