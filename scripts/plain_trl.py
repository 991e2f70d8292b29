"""Does ftbench distort what it measures on the TRL tasks? A plain SFTTrainer script, with no
ftbench code, alternated with ftbench's runner on the same case in one process.

    python scripts/plain_trl.py --data-dir ../shared/data --repeats 3

Both train SmolLM2-135M (the directory ftbench converted, or --model DIR) on GSM8K with the
smoke profile's SFT recipe (batch 4, max length 256, fp32, no gradient checkpointing, seed 42)
for --max-steps steps, without evaluation, and print steady-state train samples/s: the steps
after --warmup-steps. The plain side times them with a callback that only reads the clock.
Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def plain_sft(model_dir: str, data_dir: str, steps: int, warmup: int, batch: int) -> float:
    """Steady-state samples/s of TRL's SFTTrainer, set up as its docs show."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback, set_seed
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = []
    with open(Path(data_dir) / "gsm8k" / "train.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            rows.append(
                {
                    "prompt": [{"role": "user", "content": row["question"]}],
                    "completion": [{"role": "assistant", "content": row["answer"]}],
                }
            )

    def fits(row: dict) -> bool:  # the rows ftbench keeps: whole under max_length
        ids = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=True)
        return len(ids["input_ids"] if hasattr(ids, "keys") else ids) <= 256

    train = Dataset.from_list([r for r in rows if fits(r)])
    set_seed(42)
    model = AutoModelForCausalLM.from_pretrained(model_dir)

    class Clock(TrainerCallback):
        start = end = 0.0

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == warmup:
                Clock.start = time.perf_counter()
            elif state.global_step == steps:
                Clock.end = time.perf_counter()

    with tempfile.TemporaryDirectory() as out:
        config = SFTConfig(
            output_dir=out,
            max_steps=steps,
            per_device_train_batch_size=batch,
            learning_rate=2e-5,
            seed=42,
            max_length=256,
            gradient_checkpointing=False,
            bf16=False,
            use_cpu=True,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
        )
        SFTTrainer(
            model=model, args=config, train_dataset=train, processing_class=tokenizer,
            callbacks=[Clock()],
        ).train()  # fmt: skip
    return (steps - warmup) * batch / (Clock.end - Clock.start)


def ftbench_sft(data_dir: str, steps: int, warmup: int, batch: int) -> float:
    from dataclasses import replace

    from ftbench.config.profiles import get_profile
    from ftbench.core.spec import CaseSpec
    from ftbench.measure.runner import run
    from ftbench.stack.data import DataSource

    job = get_profile("smoke").job("sft")
    training = replace(
        job.training,
        max_steps=steps,
        timing_warmup_steps=warmup,
        batch_size=batch,
        evaluate=False,
        evaluate_untrained=False,
    )
    spec = CaseSpec("sft", "smollm2-135m", "padded", task="sft", max_length=256, training=training)
    result = run(spec, DataSource(data_dir=data_dir), show_progress_bar=False)
    return result.throughput["train_samples_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="the folder holding gsm8k/")
    parser.add_argument("--model", help="SmolLM2 directory (default: ftbench's converted one)")
    parser.add_argument("--max-steps", type=int, default=12)
    parser.add_argument("--warmup-steps", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = args.model
    if model is None:
        from ftbench.stack.checkpoints import bundled_path

        model = str(bundled_path("smollm2-135m"))
    plain, ours = [], []
    for i in range(args.repeats):  # alternated, so drift in the machine hits both alike
        plain.append(
            plain_sft(model, args.data_dir, args.max_steps, args.warmup_steps, args.batch_size)
        )
        ours.append(ftbench_sft(args.data_dir, args.max_steps, args.warmup_steps, args.batch_size))
        print(f"round {i + 1}: plain SFTTrainer {plain[-1]:.3f}, ftbench {ours[-1]:.3f} samples/s")
    p, o = statistics.median(plain), statistics.median(ours)
    print(f"median: plain {p:.3f}, ftbench {o:.3f} samples/s; ftbench / plain = {o / p:.3f}")


if __name__ == "__main__":
    main()
