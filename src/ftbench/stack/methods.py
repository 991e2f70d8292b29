"""Fine-tuning methods: full fine-tuning, LoRA and QLoRA, applied to a freshly loaded model.

    from ftbench.core.spec import Lora
    from ftbench.stack.methods import method_problem, apply_method
    method_problem("qlora", "cpu")                      # why it can't run here, or None
    model = apply_method(model, "lora", Lora(rank=8))   # a peft model; the head is trained

LoRA and QLoRA go through peft's `LoraConfig(task_type="SEQ_CLS")`, so the classifier head is
trained and saved with the adapter. QLoRA loads the base model in 4-bit NF4 through
bitsandbytes (`quantization_config`), then `prepare_model_for_kbit_training`, then LoRA.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftbench.core.errors import AdapterError
from ftbench.core.spec import Lora
from ftbench.stack.checkpoints import MODEL_CLASSES

if TYPE_CHECKING:
    from transformers import BitsAndBytesConfig, PretrainedConfig

METHODS = ("full", "lora", "qlora")
ADAPTER_METHODS = ("lora", "qlora")
ALL_LINEAR = "all-linear"  # peft's shorthand for every linear layer but the head
# Classification heads across architectures (BERT/RoBERTa, DistilBERT, decoder models).
CLASSIFIER_HEADS = ("classifier", "pre_classifier", "score")


def method_problem(method: str, device: str) -> str | None:
    """Why `method` can't run on `device` here, or None."""
    if method not in METHODS:
        return f"unknown method {method!r}; ftbench knows {', '.join(METHODS)}"
    if method == "full":
        return None
    if importlib.util.find_spec("peft") is None:
        return f"{method} needs peft: pip install peft"
    if method == "qlora":
        if importlib.util.find_spec("bitsandbytes") is None:
            return "qlora needs bitsandbytes: pip install 'ftbench[qlora]'"
        return four_bit_problem(device)
    return None


@functools.cache
def four_bit_problem(device: str) -> str | None:
    """Why bitsandbytes can't train through a 4-bit NF4 layer on `device`, or None.

    Its device support moves between releases (0.50 runs 4-bit layers on some CPUs), so ask it:
    quantize a small layer, run it forward and backward.
    """
    import torch

    try:
        import bitsandbytes as bnb

        layer = bnb.nn.Linear4bit(64, 64, bias=False, compute_dtype=torch.float32)
        layer = layer.to(device)  # bitsandbytes quantizes on the move to a device
        inputs = torch.randn(4, 64, device=device, requires_grad=True)
        layer(inputs).sum().backward()
    except Exception as exc:
        version = getattr(sys.modules.get("bitsandbytes"), "__version__", "?")
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        return (
            f"bitsandbytes {version} can't train through a 4-bit NF4 layer on {device} "
            f"({type(exc).__name__}: {first})"
        )
    return None


def quantization_config(precision: str) -> BitsAndBytesConfig:
    """QLoRA's base-model quantization: 4-bit NF4, double quantization, compute in `precision`."""
    import torch
    from transformers import BitsAndBytesConfig

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
        # The new head is trained in full (peft's modules_to_save); 4-bit weights can't be.
        llm_int8_skip_modules=list(CLASSIFIER_HEADS),
    )


def linear_layers(model: Any) -> Counter[str]:
    """The model's linear layers by their last name ("query": 6, ...): what LoRA can target."""
    import torch

    kinds: tuple[type, ...] = (torch.nn.Linear,)
    try:
        from transformers.pytorch_utils import Conv1D  # GPT-2's linear layers

        kinds += (Conv1D,)
    except ImportError:
        pass
    return Counter(
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if isinstance(module, kinds)
    )


def check_targets(model: Any, lora: Lora) -> None:
    """Refuse target modules that match nothing, naming them and the model's linear layers.

    Matching follows peft: a name matches a module whose full name is it or ends in ".name".
    """
    targets = lora.targets
    model_type = getattr(getattr(model, "config", None), "model_type", "this model")
    if targets is None:
        from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

        if model_type in DEFAULTS:
            return
        raise AdapterError(
            f"peft has no default LoRA target modules for model type {model_type!r}; set them "
            f"with --ftb-lora-targets or the profile's lora.targets. Its linear layers: "
            f"{_describe(linear_layers(model))}"
        )
    if list(targets) == [ALL_LINEAR]:
        return
    names = [name for name, _ in model.named_modules()]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        raise AdapterError(
            f"LoRA target module(s) {', '.join(missing)} match nothing in {model_type!r} (looked "
            f"for {', '.join(targets)}). Its linear layers: {_describe(linear_layers(model))}"
        )


def check_targets_of_config(
    config: PretrainedConfig, lora: Lora, model_class: str = "sequence-classification"
) -> None:
    """`check_targets` before any weights load: the model is built on the meta device."""
    import torch
    import transformers

    auto = getattr(transformers, MODEL_CLASSES[model_class])
    with torch.device("meta"):
        model = auto.from_config(config)
    check_targets(model, lora)


def apply_method(
    model: Any, method: str, lora: Lora | None = None, task_type: str = "SEQ_CLS"
) -> Any:
    """The model to train: unchanged for `full`; wrapped in a LoRA adapter otherwise.

    `task_type` is peft's: SEQ_CLS trains and saves a new classifier head with the adapter;
    CAUSAL_LM keeps the language-model head frozen.
    """
    if method == "full":
        return model
    from peft import LoraConfig, TaskType, get_peft_model

    lora = lora or Lora()
    check_targets(model, lora)
    if method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=lora.gradient_checkpointing
        )
    targets: Any = list(lora.targets) if lora.targets else None
    config = LoraConfig(
        task_type=TaskType[task_type],
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=ALL_LINEAR if targets == [ALL_LINEAR] else targets,
    )
    try:
        return get_peft_model(model, config)
    except ValueError as exc:  # what check_targets can't foresee, in peft's words
        raise AdapterError(
            f"peft refused the LoRA settings ({exc}). Linear layers of the model: "
            f"{_describe(linear_layers(model))}"
        ) from None


def describe(
    model: Any, method: str, lora: Lora | None, counts: dict[str, int] | None = None
) -> dict[str, Any]:
    """What the record says about the method: trainable share, adapter size, quantization.

    `counts` is `num_parameters(model)`, when the caller has it already.
    """
    if counts is None:
        counts = num_parameters(model)
    described: dict[str, Any] = {
        "name": method,
        "trainable_parameters": counts["trainable"],
        "total_parameters": counts["total"],
        "trainable_share": counts["trainable"] / counts["total"] if counts["total"] else None,
        "adapter_bytes": None,
        "lora": None,
        "quantization": None,
    }
    if method in ADAPTER_METHODS:
        config = model.peft_config["default"]
        described["lora"] = {
            **(lora or Lora()).recipe(method),
            "target_modules": sorted(config.target_modules)
            if not isinstance(config.target_modules, str)
            else config.target_modules,
            "modules_to_save": sorted(config.modules_to_save or []),
        }
        described["adapter_bytes"] = adapter_bytes(model)
    quantization = getattr(getattr(model, "config", None), "quantization_config", None)
    if quantization is not None:
        described["quantization"] = (
            quantization.to_dict() if hasattr(quantization, "to_dict") else dict(quantization)
        )
    return described


def num_parameters(model: Any) -> dict[str, int]:
    """Parameter counts; 4-bit weights count as the values they hold, not their packed bytes."""
    named = [(n, p, _values(p)) for n, p in model.named_parameters()]
    total = sum(v for _, _, v in named)
    embedding = sum(v for n, _, v in named if "embed" in n)
    trainable = sum(v for _, p, v in named if p.requires_grad)
    trainable_embedding = sum(v for n, p, v in named if p.requires_grad and "embed" in n)
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


def adapter_bytes(model: Any) -> int:
    """The adapter's size on disk, as `save_pretrained` writes it (LoRA weights and the head)."""
    with tempfile.TemporaryDirectory(prefix="ftbench-adapter-") as directory:
        model.save_pretrained(directory)
        return sum(p.stat().st_size for p in Path(directory).rglob("*.safetensors"))


def _describe(layers: Counter[str]) -> str:
    if not layers:
        return "none found"
    return ", ".join(f"{name} ({count})" for name, count in sorted(layers.items()))
