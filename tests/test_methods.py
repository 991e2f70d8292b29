"""The method axis: full fine-tuning, LoRA and QLoRA on a tiny BERT."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ftbench.config.profiles import apply_overrides, get_profile
from ftbench.core.errors import AdapterError
from ftbench.core.spec import CaseSpec, Lora, Training
from ftbench.measure.mfu import training_flops_per_token
from ftbench.measure.runner import run
from ftbench.stack.data import DataSource
from ftbench.stack.methods import apply_method, check_targets_of_config, describe, method_problem


def _tiny_model(tiny_checkpoint: Path):
    from ftbench.stack.checkpoints import load_model, resolve_checkpoint

    return load_model(resolve_checkpoint(str(tiny_checkpoint)), num_labels=2, seed=0)


def _run_tiny(tiny_checkpoint: Path, glue_dir: Path, method: str):
    """Six steps of `method` on the tiny BERT, dynamic padding, r 4."""
    spec = CaseSpec(
        "throughput",
        str(tiny_checkpoint),
        "dynamic",
        method=method,
        training=Training(max_steps=6, batch_size=8, eval_batch_size=16, timing_warmup_steps=2),
        max_length=64,
        lora=Lora(rank=4, alpha=8),
    )
    return run(spec, DataSource(data_dir=str(glue_dir)), show_progress_bar=False)


def test_methods_say_why_they_cant_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import sys

    from ftbench.stack.methods import four_bit_problem

    assert method_problem("full", "cpu") is None
    assert method_problem("lora", "cpu") is None
    assert "unknown method 'dora'" in method_problem("dora", "cpu")
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name: None if name == "bitsandbytes" else find_spec(name),
    )
    assert method_problem("qlora", "cuda") == (
        "qlora needs bitsandbytes: pip install 'ftbench[qlora]'"
    )
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # an import that fails
    problem = four_bit_problem.__wrapped__("cpu")
    assert problem.startswith("bitsandbytes ? can't train through a 4-bit NF4 layer on cpu")
    assert "ModuleNotFoundError" in problem


def test_qlora_trains_where_bitsandbytes_can(tiny_checkpoint: Path, glue_dir: Path) -> None:
    pytest.importorskip("bitsandbytes", reason="qlora needs bitsandbytes (the [qlora] extra)")
    problem = method_problem("qlora", "cpu")
    if problem:
        pytest.skip(problem)
    result = _run_tiny(tiny_checkpoint, glue_dir, "qlora")

    assert result.case_id == "throughput[tiny-bert-dynamic-cpu-fp32-qlora]"
    assert result.method["quantization"]["bnb_4bit_quant_type"] == "nf4"
    assert result.method["lora"]["gradient_checkpointing"] is True
    assert result.method["trainable_share"] < 0.05
    # 4-bit weights count as the values they hold, so the total matches the full model's.
    assert result.checkpoint["parameters"]["total"] > 300_000


def test_lora_trains_the_adapter_and_the_head_only(tiny_checkpoint: Path) -> None:
    model = apply_method(_tiny_model(tiny_checkpoint), "lora", Lora(rank=4, alpha=8))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}

    assert trainable, "nothing to train"
    assert all("lora_" in n or "classifier" in n for n in trainable)
    assert any("classifier" in n for n in trainable), "the new head must be trained"
    assert not any("embeddings" in n for n in trainable)
    info = describe(model, "lora", Lora(rank=4, alpha=8))
    assert info["lora"]["target_modules"] == ["query", "value"]  # peft's BERT default
    assert info["lora"]["rank"] == 4
    assert 0 < info["trainable_share"] < 1
    assert info["trainable_parameters"] == sum(
        p.numel() for p in model.parameters() if p.requires_grad
    )
    assert info["adapter_bytes"] > 4 * info["trainable_parameters"] * 0.9  # fp32 on disk


def test_full_fine_tuning_leaves_the_model_alone(tiny_checkpoint: Path) -> None:
    model = _tiny_model(tiny_checkpoint)
    assert apply_method(model, "full") is model
    assert describe(model, "full", None)["trainable_share"] == 1.0


@pytest.mark.parametrize("targets", [("q_proj", "v_proj"), ("query", "o_proj")])
def test_targets_that_match_nothing_are_named_with_the_linear_layers(
    tiny_checkpoint: Path, targets: tuple[str, ...]
) -> None:
    with pytest.raises(AdapterError) as caught:
        apply_method(_tiny_model(tiny_checkpoint), "lora", Lora(targets=targets))
    message = str(caught.value)
    assert "match nothing in 'bert'" in message
    assert f"looked for {', '.join(targets)}" in message
    assert "query (2)" in message
    assert "classifier (1)" in message
    assert "Traceback" not in message


def test_targets_are_checked_before_weights_load(tiny_checkpoint: Path) -> None:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_checkpoint)
    check_targets_of_config(config, Lora(targets=("query", "key", "value", "dense")))
    check_targets_of_config(config, Lora(targets=("all-linear",)))
    with pytest.raises(AdapterError, match="c_attn"):
        check_targets_of_config(config, Lora(targets=("c_attn",)))


def test_a_lora_case_records_its_method(tiny_checkpoint: Path, glue_dir: Path) -> None:
    result = _run_tiny(tiny_checkpoint, glue_dir, "lora")

    assert result.case_id == "throughput[tiny-bert-dynamic-cpu-fp32-lora]"
    assert result.axes["method"] == "lora"
    assert result.method["adapter_bytes"] > 0
    assert result.training["recipe"]["lora"]["rank"] == 4
    assert result.memory["training_growth_bytes"] is not None
    full = result.checkpoint["parameters"]
    assert full["trainable"] < full["total"]
    # A frozen base: about 4 FLOPs per weight and token, not 6.
    assert result.utilisation["flops_per_token"] < training_flops_per_token(
        full["non_embedding"], 2, 32, result.utilisation["mean_real_length"]
    )


def test_profiles_carry_lora_settings_and_overrides() -> None:
    smoke = get_profile("smoke").job("finetune")
    assert smoke.methods == ("full",)  # LoRA on request (CI time), its settings kept
    assert smoke.training_for("lora").learning_rate == 1e-3
    assert smoke.training_for("full").learning_rate == 1e-4
    assert smoke.floors_for("lora") == {"eval_accuracy": 0.74, "eval_f1": 0.82}
    assert smoke.floors_for("full") == {"eval_accuracy": 0.77, "eval_f1": 0.84}

    changed = apply_overrides(
        get_profile("smoke"), methods=["lora"], lora_rank=16, lora_targets=["query", "key"]
    ).job("finetune")
    assert changed.methods == ("lora",)
    assert changed.lora == replace(smoke.lora, rank=16, targets=("query", "key"), floors={})
    assert "--ftb-lora-rank" in changed.floors_off
    same_lr = apply_overrides(get_profile("smoke"), learning_rate=3e-4).job("finetune")
    assert same_lr.training_for("lora").learning_rate == 3e-4


def test_qlora_quantizes_to_nf4_computing_in_the_case_precision() -> None:
    import torch

    from ftbench.stack.methods import quantization_config

    config = quantization_config("bf16")
    assert config.load_in_4bit
    assert config.bnb_4bit_quant_type == "nf4"
    assert config.bnb_4bit_use_double_quant
    assert config.bnb_4bit_compute_dtype == torch.bfloat16
    assert quantization_config("fp32").bnb_4bit_compute_dtype == torch.float32


def test_four_bit_weights_count_as_the_values_they_hold() -> None:
    import torch

    from ftbench.stack.methods import num_parameters

    class Params4bit(torch.nn.Parameter):  # bitsandbytes' name: two values in each byte
        pass

    model = torch.nn.Linear(8, 4, bias=False)
    model.weight = Params4bit(torch.zeros(16, 1, dtype=torch.uint8), requires_grad=False)
    assert num_parameters(model)["total"] == 32


def test_flops_per_token_counts_weight_gradients_only_when_trained() -> None:
    full = training_flops_per_token(1000, 1, 10, 0)
    frozen = training_flops_per_token(1000, 1, 10, 0, trainable_non_embedding_parameters=10)
    assert full == 6000
    assert frozen == 4000 + 20
