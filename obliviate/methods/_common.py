"""Pieces shared by several method files (not a method; the leading underscore keeps it out of the registry).

- `tokenizer_of(ctx)`: methods that train on *other* targets (refusals, reasoning traces) must tokenise them.
- `with_targets(pairs, targets)` / `build_pairs`: the same prompts with new targets, or any ids as a batch.
- `pairs_logprob(target_logits, pairs)`: summed target log-prob per row from logits the caller already has (a
  reference's); `greedy_known(target_logits, pairs)`: whether greedy decoding still gives each row's answer.
- `REFUSALS` and `refusal_for(prompt_ids)`: "I don't know"-style answers (TOFU's IdkPO recipe, shortened).
"""

from __future__ import annotations

import zlib

import torch

from obliviate.errors import ConfigError
from obliviate.scoring import EncodedPairs, on_targets, pairs_from_ids, selective_log_softmax, target_labels
from obliviate.train import TrainContext

REFUSALS = (
    " I don't know.",
    " I'm not sure.",
    " I have no information about that.",
    " I can't answer that.",
    " That is not something I know.",
    " I don't have that information.",
    " Sorry, I don't know.",
    " I am not able to answer that.",
)


def tokenizer_of(ctx: TrainContext):
    """The tokenizer of the model being trained (run_training puts it in the context)."""
    if ctx.tokenizer is None:
        raise ConfigError("this method needs the tokenizer; run it through obliviate.unlearn / run_training")
    return ctx.tokenizer


def prompt_ids(pairs: EncodedPairs) -> list[list[int]]:
    """The prompt token ids of each row (real tokens before the target)."""
    keep = pairs.attention_mask.bool() & ~pairs.target_mask
    return [row[k].tolist() for row, k in zip(pairs.input_ids, keep)]


def target_ids(pairs: EncodedPairs) -> list[list[int]]:
    """The target token ids of each row."""
    return [row[m].tolist() for row, m in zip(pairs.input_ids, pairs.target_mask)]


def build_pairs(prompts: list[list[int]], targets: list[list[int]], pad_id: int, device) -> EncodedPairs:
    """Right-padded prompt+target batch from token ids, on `device`."""
    return pairs_from_ids(prompts, targets, pad_id).to(device)


def with_targets(pairs: EncodedPairs, targets: list[list[int]], pad_id: int) -> EncodedPairs:
    """Right-padded prompt+target batch: the prompts of `pairs` followed by new target ids."""
    return build_pairs(prompt_ids(pairs), targets, pad_id, pairs.input_ids.device)


def pairs_logprob(logits: torch.Tensor, pairs: EncodedPairs) -> torch.Tensor:
    """Summed target log-prob per row from the logits at the target positions (N_target_tokens, V): (B,)."""
    return on_targets(pairs, selective_log_softmax(logits.float(), target_labels(pairs))).sum(-1)


def greedy_known(logits: torch.Tensor, pairs: EncodedPairs) -> torch.Tensor:
    """(B,) bool: every target token is the argmax of its position's logits (N_target_tokens, V), i.e. greedy
    decoding still gives the row's answer."""
    missed = (logits.argmax(-1) != target_labels(pairs)).float()
    return on_targets(pairs, missed).sum(-1) == 0


def refusal_for(prompt: list[int], refusals: tuple[str, ...] = REFUSALS) -> str:
    """A refusal picked deterministically from the prompt (so each question keeps one refusal across steps)."""
    return refusals[zlib.crc32(str(prompt).encode()) % len(refusals)]


def refusal_pairs(tokenizer, pairs: EncodedPairs, refusals: tuple[str, ...] = REFUSALS) -> EncodedPairs:
    """`pairs` with each target replaced by its refusal."""
    targets = [tokenizer(refusal_for(p, refusals), add_special_tokens=False)["input_ids"] for p in prompt_ids(pairs)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return with_targets(pairs, targets, pad)
