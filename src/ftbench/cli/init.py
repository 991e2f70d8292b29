"""`ftbench init [DIR] --task TASK`: a starter job file and a CI workflow in a repository.

    ftbench init . --task dpo        # ./ftbench.yaml and ./.github/workflows/ftbench.yml

`pytest` in DIR then collects the job file. The job file names every section a recipe has,
with comments; what it does not set takes the task's defaults. Nothing is overwritten unless
--force is given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ftbench.core.files import write_text_atomic
from ftbench.tasks import get_task, task_names

TEMPLATES = Path(__file__).parent / "templates"
WORKFLOW = Path(".github/workflows/ftbench.yml")

# What differs per kind of task: the checkpoint, the data and its columns, the trainer settings.
STARTERS = {
    "mrpc": {
        "checkpoint": "minilm-l6  # or a Hub id, a folder of safetensors, bert@random",
        "data": "train: data/train.csv\n  validation: data/dev.csv\n"
        "  columns: {sentence1: sentence1, sentence2: sentence2, label: label}",
        "trainer": "num_train_epochs: 3\n  per_device_train_batch_size: 32\n"
        "  learning_rate: 1.0e-4\n  lr_scheduler_type: linear",
        "floors": "eval_accuracy: 0.75",
        "extra": "evaluation:\n  target_accuracy: 0.75  # also: the time it takes to get there\n",
    },
    "sft": {
        "checkpoint": "smollm2-135m  # a chat model (its template formats the rows)",
        "data": "train: data/train.jsonl\n  validation: data/dev.jsonl\n"
        "  columns: {prompt: prompt, completion: completion}",
        "trainer": "max_steps: 100\n  per_device_train_batch_size: 4\n  learning_rate: 2.0e-5\n"
        "  max_length: 512\n  gradient_accumulation_steps: 1",
        "floors": "eval_loss: 1.5  # a loss: the highest it may end at",
        "extra": "evaluation:\n  eval_samples: 64\n  evaluate_untrained: true\n",
    },
    "preference": {
        "checkpoint": "smollm2-135m",
        "data": "train: data/pairs_train.jsonl\n  validation: data/pairs_dev.jsonl\n"
        "  columns: {prompt: prompt, chosen: chosen, rejected: rejected}",
        "trainer": "max_steps: 100\n  per_device_train_batch_size: 2\n  learning_rate: 1.0e-5\n"
        "  max_length: 512{beta}",
        "floors": "{floor}",
        "extra": "evaluation:\n  eval_samples: 64\n  evaluate_untrained: true\n",
    },
    "grpo": {
        "checkpoint": "smollm2-135m",
        "data": "train: data/train.jsonl\n  validation: data/dev.jsonl\n"
        "  columns: {prompt: question, answer: answer}  # the answer the reward checks",
        "trainer": "max_steps: 50\n  per_device_train_batch_size: 8\n  learning_rate: 1.0e-6\n"
        "  num_generations: 4\n  max_completion_length: 128",
        "floors": "eval_reward_gain: 0.1",
        "extra": "evaluation:\n  eval_samples: 32\n  evaluate_untrained: true\n",
    },
}
PREFERENCE_FLOORS = {
    "dpo": "eval_reward_accuracy: 0.5",
    "reward": "eval_accuracy: 0.55",
    "cpo": "eval_reward_accuracy: 0.5",
    "orpo": "eval_reward_accuracy: 0.5",
}

JOB_FILE = """\
# An ftbench job: `pytest` in this folder trains it, records it under results/, and gates it
# against results/baselines/. Every field: `ftbench jobs --fields` (docs/jobs.md).
#   ftbench jobs                                    # what pytest will collect
#   pytest                                          # train, check the floors and baselines
#   pytest --ftb-update-baselines --ftb-seeds 3     # record baselines (commit results/baselines)
name: {name}
task: {task}
checkpoint: {checkpoint}

# Your data: CSV, TSV, JSON lines or Parquet, paths relative to this file (or `hub: org/name`
# with `config:` when the Hub is reachable). Without `data:`, the task's own data is used.
data:
  {data}

# The trainer config's own field names ({config}); any of its fields may be set.
trainer:
  {trainer}
{extra}
# The matrix: one case per combination.
paddings: [{padding}]
devices: [cpu]          # cuda, mps
precisions: [fp32]      # bf16, fp16
methods: [full]         # lora, qlora (with lora: {{rank: 8, alpha: 16}})

# A finished fine-tune on the wrong side of a floor fails, baseline or not.
floors:
  {floors}
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dir", nargs="?", type=Path, default=Path("."),
        help="the repository's root, where .github/workflows/ must go (default: here)",
    )  # fmt: skip
    parser.add_argument("--task", default="mrpc", help=f"one of {', '.join(task_names())}")
    parser.add_argument("--name", help="the job's name (default: the task's)")
    parser.add_argument("--force", action="store_true", help="overwrite files that exist")
    parser.add_argument("--no-workflow", action="store_true", help="only the job file")


def main(args: argparse.Namespace) -> int:
    task_name = args.task
    if task_name not in task_names():
        print(f"ftbench init: unknown task {task_name!r}; choose from {', '.join(task_names())}",
              file=sys.stderr)  # fmt: skip
        return 2
    files = {args.dir / "ftbench.yaml": job_file(task_name, args.name or task_name)}
    if not args.no_workflow:
        files[args.dir / WORKFLOW] = (TEMPLATES / "github-workflow.yml").read_text("utf-8")
    kept = [] if args.force else [path for path in files if path.exists()]
    if len(kept) == len(files):
        print(f"ftbench init: {', '.join(map(str, kept))} exist(s); nothing written (--force "
              "to overwrite)", file=sys.stderr)  # fmt: skip
        return 2
    for path, text in files.items():
        if path in kept:
            print(f"kept {path}, which exists (--force to overwrite)")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text)
        print(f"wrote {path}")
    print("next: put your data where ftbench.yaml says, then `pytest` in "
          f"{args.dir} (`ftbench jobs` lists what it will run)")  # fmt: skip
    return 0


def job_file(task_name: str, name: str) -> str:
    """The starter job file of a task, with comments."""
    task = get_task(task_name)
    kind = task_name if task_name in ("mrpc", "sft", "grpo") else "preference"
    starter = dict(STARTERS.get(kind, STARTERS["preference"]))
    if kind == "preference":
        starter["trainer"] = starter["trainer"].replace(
            "{beta}", "\n  beta: 0.1" if task_name in ("dpo", "cpo", "orpo") else ""
        )
        floor = PREFERENCE_FLOORS.get(task_name)
        starter["floors"] = floor or "{}"
    if task_name not in STARTERS and task_name not in PREFERENCE_FLOORS:
        columns = ", ".join(f"{c}: {c}" for c in task.columns)
        starter["data"] = starter["data"].rsplit("columns:", 1)[0] + f"columns: {{{columns}}}"
        starter["floors"] = "{}"
    config = task.config_class() if task.problem() is None else None
    config_name = f"{config.__module__.split('.')[0]}.{config.__name__}" if config else "trainer"
    return JOB_FILE.format(
        name=name,
        task=task_name,
        config=config_name,
        padding=task.paddings[0],
        **starter,
    )
