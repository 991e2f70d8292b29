"""ftbench's options, defined once (`OPTIONS`), and their types.

    from ftbench.config.options import OPTIONS, options_markdown
    [o.name for o in OPTIONS]      # 'profile', 'job', 'checkpoint', ...
    options_markdown()             # docs/options.md (`ftbench options > docs/options.md`)

pytest shows each as `--ftb-NAME` (ftbench.plugin), `ftbench run` as `--NAME`
(ftbench.cli.run), and the session maps each `override` onto the profile
(profiles.apply_overrides). argparse calls the types, so a bad value becomes a usage error that
names the option, before any work starts."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ftbench.env.devices import DEVICES, PRECISIONS
from ftbench.stack.methods import METHODS
from ftbench.stack.padding import STRATEGIES
from ftbench.tasks import parse_tolerance


def list_of(kind: Callable[[str], Any], length: int | None = None) -> Callable[[str], list]:
    def parse(text: str) -> list:
        values = [kind(v.strip()) for v in text.split(",") if v.strip()]
        if not values or (length is not None and len(values) != length):
            raise ValueError(text)
        return values

    parse.__name__ = f"comma-separated list{f' of {length}' if length else ''}"
    return parse


def choices_of(allowed: Iterable[str], what: str) -> Callable[[str], list[str]]:
    allowed = tuple(allowed)

    def parse(text: str) -> list[str]:
        import argparse

        values = list_of(str)(text)
        unknown = [v for v in values if v not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(unknown)}; choose from {', '.join(allowed)}"
            )
        return values

    return parse


def one_of(allowed: Iterable[str], what: str) -> Callable[[str], str]:
    allowed = tuple(allowed)

    def parse(text: str) -> str:
        import argparse

        if text not in allowed:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {text}; choose from {', '.join(allowed)}"
            )
        return text

    return parse


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


def float_value(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


def seconds(text: str) -> float:
    """Zero or more seconds."""
    value = float(text)
    if not value >= 0:
        raise ValueError(text)
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise ValueError(text)
    return value


def tolerance_rule(text: str) -> dict[str, dict[str, float]]:
    return parse_tolerance(text)


tolerance_rule.__name__ = "tolerance rule"


@dataclass(frozen=True)
class Option:
    """One option, defined once: pytest shows it as --ftb-NAME, `python -m ftbench.cli.run` as
    --NAME. `override` is the profile field it replaces (see profiles.apply_overrides)."""

    name: str
    help: str
    metavar: str | None = None
    type: Callable[[str], Any] | None = None
    default: Any = None
    override: str | None = None
    action: str | None = None
    pytest_only: bool = False  # session-wide settings a single case has no use for

    @property
    def dest(self) -> str:
        return "ftb_" + self.name.replace("-", "_")

    def kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"default": self.default, "help": self.help}
        if self.action:
            kwargs["action"] = self.action
        if self.action != "store_true":
            kwargs.update(metavar=self.metavar, type=self.type)
        return kwargs


def overrides_from(get: Callable[[str], Any]) -> dict[str, Any]:
    """The profile overrides the options give, `get` reading an option by its dest."""
    overrides = {o.override: get(o.dest) for o in OPTIONS if o.override}
    if overrides.get("tolerances"):
        overrides["tolerances"] = {
            metric: fields for t in overrides["tolerances"] for metric, fields in t.items()
        }
    return overrides


OPTIONS: tuple[Option, ...] = (
    Option(
        "profile",
        "Profile: smoke (CPU minutes), full (GPU, the HF course recipe) or auto.",
        "NAME",
        default="auto",
    ),
    Option(
        "job",
        "Run only these jobs (of the profile, and of the job files), comma-separated: "
        "finetune, throughput, sft, dpo, reward, cpo, orpo, grpo, or your jobs' names.",
        "JOBS",
        list_of(str),
        override="jobs",
    ),
    Option(
        "jobs",
        "Job files to collect besides those named ftbench*.yaml (and those listed under "
        "[tool.ftbench] jobs in pyproject.toml): comma-separated paths or globs, relative to "
        "the rootdir. Collected where pytest looks (the rootdir, or the paths given).",
        "GLOBS",
        list_of(str),
        pytest_only=True,
    ),
    Option(
        "checkpoint",
        "Checkpoints, comma-separated: Hub ids, directories, minilm-l6, "
        "smollm2-135m, <arch>@random.",
        "SPECS",
        list_of(str),
        override="checkpoints",
    ),
    Option(
        "padding",
        "Padding strategies, comma-separated: static, dynamic, bucketed, dynamic-x8 "
        "(mrpc); padded, packed, padding-free (TRL tasks). Each job keeps the ones its task "
        "has.",
        "NAMES",
        choices_of(STRATEGIES, "padding strategy"),
        override="paddings",
    ),
    Option(
        "device",
        "Devices, comma-separated: cpu, cuda, mps. An absent device is a skip.",
        "NAMES",
        choices_of(DEVICES, "device"),
        override="devices",
    ),
    Option(
        "precision",
        "Precisions, comma-separated: fp32, bf16, fp16.",
        "NAMES",
        choices_of(PRECISIONS, "precision"),
        override="precisions",
    ),
    Option(
        "method",
        "Fine-tuning methods, comma-separated: full, lora, qlora (bitsandbytes).",
        "NAMES",
        choices_of(METHODS, "method"),
        override="methods",
    ),
    Option(
        "processes",
        "Processes per case, comma-separated (e.g. 1,2): N > 1 runs the case under `accelerate "
        "launch` (torchrun; gloo on CPU, nccl on CUDA) with the job's batch split across them.",
        "N,...",
        list_of(positive_int),
        override="processes",
    ),
    Option(
        "accelerate-config",
        "An accelerate config file (`accelerate config`) for cases of N > 1 processes: "
        "several machines, FSDP, DeepSpeed. None: one machine, DDP.",
        "FILE",
    ),
    Option(
        "launch-timeout",
        "Wall-clock bound on one launched case (N > 1 processes, or a fresh process); then "
        "every process of it is killed.",
        "SECONDS",
        float_value,
        default=3600.0,
    ),
    Option("lora-rank", "LoRA rank, for lora and qlora.", "R", positive_int, override="lora_rank"),
    Option(
        "lora-alpha",
        "LoRA alpha (the update is scaled by alpha / rank).",
        "ALPHA",
        positive_int,
        override="lora_alpha",
    ),
    Option("lora-dropout", "LoRA dropout.", "P", fraction, override="lora_dropout"),
    Option(
        "lora-targets",
        "LoRA target modules, comma-separated (e.g. query,key,value) or "
        "all-linear. None: peft's default for the architecture.",
        "MODULES",
        list_of(str),
        override="lora_targets",
    ),
    Option(
        "epochs",
        "Training epochs (when no max steps are set).",
        "N",
        float_value,
        override="epochs",
    ),
    Option(
        "max-steps",
        "Stop every case after N optimizer steps.",
        "N",
        positive_int,
        override="max_steps",
    ),
    Option(
        "batch-size",
        "Train batch size of a step, over all processes: with N processes each takes 1/N "
        "(preference tasks: pairs; grpo: completions).",
        "N",
        positive_int,
        override="batch_size",
    ),
    Option("learning-rate", "Peak learning rate.", "LR", float_value, override="learning_rate"),
    Option("seed", "Seed for data order and init.", "N", int, override="seed"),
    Option(
        "max-length",
        "Truncation length in tokens (and static padding's length).",
        "N",
        positive_int,
        override="max_length",
    ),
    Option(
        "max-completion-length",
        "grpo: the most tokens generated per completion.",
        "N",
        positive_int,
        override="max_completion_length",
    ),
    Option(
        "num-generations",
        "grpo: completions sampled per prompt (a group; at least 2).",
        "N",
        positive_int,
        override="num_generations",
    ),
    Option(
        "vllm",
        "grpo: generate with vLLM (colocated, CUDA only) instead of transformers' generate; "
        "a skip with the reason where vLLM or CUDA is missing.",
        action="store_true",
        override="use_vllm",
    ),
    Option(
        "data-dir",
        "Data directory: the folder holding glue/MRPC, gsm8k and hh-rlhf (e.g. "
        "../shared/data), or a GLUE directory (DIR/MRPC/train.tsv). Else the Hub.",
        "DIR",
    ),
    Option("train-file", "Your own training data: csv, tsv, json(l) or parquet.", "FILE"),
    Option("validation-file", "Your own validation data, evaluated after training.", "FILE"),
    Option("test-file", "Your own test pairs for mrpc (labels optional).", "FILE"),
    Option(
        "text-columns",
        "mrpc: the two text columns of your files.",
        "A,B",
        list_of(str, length=2),
        default=["sentence1", "sentence2"],
    ),
    Option(
        "label-column",
        "mrpc: the label column of your files: integers or strings.",
        "NAME",
        default="label",
    ),
    Option(
        "prompt-column",
        "sft, dpo, reward: the prompt column of your files.",
        "NAME",
        default="prompt",
    ),
    Option(
        "completion-column",
        "sft: the completion column of your files.",
        "NAME",
        default="completion",
    ),
    Option(
        "chosen-column", "dpo, reward: the preferred answer's column.", "NAME", default="chosen"
    ),
    Option(
        "rejected-column", "dpo, reward: the other answer's column.", "NAME", default="rejected"
    ),
    Option(
        "preference-data",
        "dpo, reward without your own files: gsm8k (a correct solution "
        "chosen over a wrong one) or hh-rlhf (harmless-base).",
        "NAME",
        one_of(("gsm8k", "hh-rlhf"), "preference data"),
        default="gsm8k",
    ),
    Option(
        "hub-dataset",
        "Your data as a Hub dataset id (a job file's data.hub); --ftb-train-file and "
        "--ftb-validation-file then name its splits (default train, validation).",
        "ID",
    ),
    Option("hub-config", "The Hub dataset's configuration name.", "NAME"),
    Option(
        "results-dir",
        "Where run records go (DIR/runs/<run>/<case>.json).",
        "DIR",
        default="results",
    ),
    Option(
        "baselines-dir",
        "Baselines: DIR/<hardware-id>/<profile>.json, committed.",
        "DIR",
        default="results/baselines",
        pytest_only=True,
    ),
    Option(
        "update-baselines",
        "Record this run as the baselines (refused if any case fails); gates are off.",
        action="store_true",
        default=False,
        pytest_only=True,
    ),
    Option(
        "seeds",
        "Repeat each quality case over N seeds (seed, seed+1, ...) to measure the spread.",
        "N",
        positive_int,
        default=1,
        pytest_only=True,
    ),
    Option(
        "require-baseline",
        "Fail cases that have no baseline, instead of reporting 'no baseline'.",
        action="store_true",
        default=False,
        pytest_only=True,
    ),
    Option(
        "strict-repro",
        "Fail, not warn, when environment and seed match the baseline but numbers differ.",
        action="store_true",
        default=False,
        pytest_only=True,
    ),
    Option(
        "strict",
        "Fail, not report 'not gated', when a throughput case stays on a busy device.",
        action="store_true",
        default=False,
        pytest_only=True,
    ),
    Option(
        "allow-skips",
        "Exit 0 when every selected case skipped for want of its device, a package or a "
        "checkpoint; without it such a run fails, so a GPU runner that can't see its GPU is "
        "not green.",
        action="store_true",
        default=False,
        pytest_only=True,
    ),
    Option(
        "in-process",
        "Time throughput-gated cases in pytest's own process, after what ran before them, "
        "instead of each in a fresh process (faster; what ran before can move their speed).",
        action="store_true",
        default=False,
        pytest_only=True,
    ),
    Option(
        "busy-wait",
        "How long a case timed on a busy device waits for quiet to measure again.",
        "SECONDS",
        seconds,
        default=60.0,
        pytest_only=True,
    ),
    Option(
        "tolerance",
        "Override a gate, e.g. train_samples_per_second:15%% or "
        "eval_accuracy:k=2,min=0.02. Repeatable.",
        "METRIC:RULE",
        tolerance_rule,
        action="append",
        override="tolerances",
        pytest_only=True,
    ),
    Option(
        "progress-every",
        "Seconds between progress lines (None: 5 on a terminal, 30 in CI logs).",
        "SECONDS",
        float_value,
    ),
)


def options_markdown() -> str:
    """The option table as docs/options.md: generated, so it can't fall behind the code."""
    lines = [
        "# Options",
        "",
        "<!-- Generated from ftbench.config.options by `ftbench options > docs/options.md`; "
        "tests/test_docs.py fails when it is stale. -->",
        "",
        "Every option of `pytest bench/` (as `--ftb-NAME`) and of `ftbench run` (as `--NAME`; "
        "those marked *pytest only* are not there; it runs one case, of smoke's `throughput` "
        "job unless `--profile` and `--job` say otherwise). Axis options take comma-separated "
        "values and override the profile's job; options that change the recipe turn its "
        "accuracy floors off.",
        "",
        "| pytest | `ftbench run` | value | default | what it does |",
        "| --- | --- | --- | --- | --- |",
    ]
    for option in OPTIONS:
        value = "" if option.action == "store_true" else f"`{option.metavar}`"
        default = "" if option.default in (None, False) else f"`{option.default!r}`"
        run = "*pytest only*" if option.pytest_only else f"`--{option.name}`"
        text = option.help.replace("%%", "%").replace("|", "\\|").replace("<", "\\<")
        lines.append(f"| `--ftb-{option.name}` | {run} | {value} | {default} | {text} |")
    return "\n".join(lines) + "\n"
