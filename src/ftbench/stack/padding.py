"""Padding strategies: how a batch is padded, how it is sampled, and what the padding costs.

    from ftbench.stack.padding import get_strategy
    strategy = get_strategy("bucketed")
    collator = strategy.collator(tokenizer)
    extra_training_args = strategy.training_arguments()

| name       | tokenize time       | collator                                   | sampler        |
| static     | pad to max_length   | default_data_collator                      | random         |
| dynamic    | no padding          | DataCollatorWithPadding                    | random         |
| bucketed   | no padding          | DataCollatorWithPadding                    | group_by_length|
| dynamic-x8 | no padding          | DataCollatorWithPadding(pad_to_multiple_of=8) | random      |

The TRL tasks tokenize in their trainers, so their strategies are the trainers' own settings:

| name         | what TRL does                                                          |
| padded       | each batch padded to its longest row (the trainers' default collator)  |
| packed       | SFT: sequences packed into rows of max_length (`packing=True`, BFD)    |
| padding-free | SFT: rows concatenated into one, told apart by position ids            |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ftbench.core.errors import ConfigError, MissingAttentionMaskError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class PaddingStrategy:
    name: str
    pad_to_max_length: bool = False
    pad_to_multiple_of: int | None = None
    group_by_length: bool = False
    trl: dict[str, Any] | None = None  # a TRL task's config settings; None: not a TRL strategy

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Any:
        from transformers import DataCollatorWithPadding, default_data_collator

        if self.pad_to_max_length:
            return default_data_collator
        return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=self.pad_to_multiple_of)

    def training_arguments(self) -> dict[str, Any]:
        # transformers 5 spells length-grouped batching as a sampling strategy.
        return {"train_sampling_strategy": "group_by_length"} if self.group_by_length else {}


STRATEGIES = {
    s.name: s
    for s in (
        PaddingStrategy("static", pad_to_max_length=True),
        PaddingStrategy("dynamic"),
        PaddingStrategy("bucketed", group_by_length=True),
        PaddingStrategy("dynamic-x8", pad_to_multiple_of=8),  # tensor cores like multiples of 8
        PaddingStrategy("padded", trl={}),
        PaddingStrategy("packed", trl={"packing": True}),
        PaddingStrategy("padding-free", trl={"padding_free": True}),
    )
}
MRPC_STRATEGIES = ("static", "dynamic", "bucketed", "dynamic-x8")


def get_strategy(name: str) -> PaddingStrategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ConfigError(
            f"unknown padding strategy {name!r}; choose from {', '.join(STRATEGIES)}"
        ) from None


class PaddingCounter:
    """Counts real and padded tokens in the batches the model actually sees in training.

    A forward pre-hook reads `attention_mask` after the collator, so prefetching data loaders
    and collator internals can't skew the count. Sums stay on the device until read, so counting
    adds no host-device synchronisation to a step.

    A padded batch without an attention mask stops training: the model would attend to the
    padding, so its accuracy and speed would describe another computation. A library upgrade
    that drops the mask can raise accuracy on well-bucketed batches, so the gates can't be
    relied on to see it.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        pad_token_id: int | None = None,
        *,
        rows_per_sample: int = 1,
        pad_is_eos: bool = False,
    ) -> None:
        self.samples = 0
        self.padded_tokens = 0
        self.pad_token_id = pad_token_id
        # DPO and reward models put a pair's chosen and rejected rows in one batch: 2 rows a sample.
        self.rows_per_sample = rows_per_sample
        # Causal LMs often pad with their eos token, which also ends real text: only a trailing
        # run of it beyond one token can be padding.
        self.pad_is_eos = pad_is_eos
        self._real: Any = 0
        # Per training batch: samples, padded length, and the sum and sum of squares of its
        # real lengths (device tensors until read), for the cost curve's per-batch predictions.
        self._batches: list[tuple[int, int, Any, Any]] = []
        self._handle = model.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module: Any, args: tuple, kwargs: dict) -> None:
        import torch

        # Evaluation, and a reference model's no-grad pass through the same weights (DPO with an
        # adapter), are not training samples.
        if not module.training or not torch.is_grad_enabled():
            return
        mask = kwargs.get("attention_mask")
        ids = kwargs.get("input_ids")
        if mask is None and ids is None:
            return
        shape = (mask if mask is not None else ids).shape
        packed = mask is None and kwargs.get("position_ids") is not None  # padding-free rows
        if mask is None and ids is not None and self.pad_token_id is not None and not packed:
            padding = self._padding_without_mask(ids)  # syncs, but only without a mask
            if padding:
                raise MissingAttentionMaskError(
                    f"a training batch of {shape[0]} x {shape[1]} tokens reached the model with "
                    f"{padding} padding tokens and no attention_mask, so the model attends to "
                    "padding: the collator or the model's inputs lost the mask"
                )
        rows, length = int(shape[0]), int(shape[1])
        self.samples += rows // self.rows_per_sample
        self.padded_tokens += rows * length
        if mask is None:
            real, squares = rows * length, rows * length * length
        else:
            lengths = mask.sum(dim=-1)
            real, squares = lengths.sum(), (lengths * lengths).sum()
        self._real = self._real + real
        self._batches.append((rows, length, real, squares))

    def _padding_without_mask(self, ids: Any) -> int:
        if not self.pad_is_eos:
            return int((ids == self.pad_token_id).sum())
        # Length of each row's trailing run of pad tokens, less the one that may be a real eos.
        is_pad = (ids == self.pad_token_id).int().flip(-1)
        trailing = is_pad.cumprod(-1).sum(-1)
        return int((trailing - 1).clamp(min=0).sum())

    @property
    def real_tokens(self) -> int:
        return int(self._real)

    def snapshot(self) -> tuple[int, int, int]:
        """(samples, real tokens, padded tokens) so far; reading real tokens syncs the device."""
        return self.samples, self.real_tokens, self.padded_tokens

    @property
    def batch_count(self) -> int:
        return len(self._batches)

    def batches(self, start: int = 0, end: int | None = None) -> list[list[int]]:
        """[samples, padded length, real tokens, sum of squared real lengths] per batch seen.

        Reading syncs the device, so read after the timed window.
        """
        return [[b, n, int(r), int(s)] for b, n, r, s in self._batches[start:end]]

    def remove(self) -> None:
        self._handle.remove()
