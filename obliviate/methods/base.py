"""What a method is: a config dataclass plus either a loss for train.py or an `apply` for training-free edits.

A method file defines one class, decorated with `@METHODS.register("name")`, and touches nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

import torch

from obliviate.data.schema import Task
from obliviate.errors import ConfigError
from obliviate.models import LoadedModel
from obliviate.registry import Registry
from obliviate.scoring import EncodedPairs, token_logprobs
from obliviate.train import TrainBatch, TrainContext


@dataclass
class MethodConfig:
    """Base of every method's hyperparameters (a method without any uses it as is)."""


class Method:
    """Base class: subclasses set the class attributes and implement `loss` (gradient) or `apply` (edit)."""

    summary: ClassVar[str] = ""  # one line for `obliviate methods`
    paper: ClassVar[str] = ""  # title and arXiv id, shown in reports
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    needs_retain: ClassVar[bool] = False
    # The facts of the paired "retain" stream: "retain", "neighbours" (look-alikes; retain when a task has none)
    # or "neighbours+retain".
    keep_split: ClassVar[str] = "retain"
    needs_reference_logprobs: ClassVar[bool] = False
    needs_reference_model: ClassVar[bool] = False
    training_free: ClassVar[bool] = False
    # Default step budget and learning rate on the default model (tuned on builtin:people).
    default_steps: ClassVar[int] = 30
    default_lr: ClassVar[float] = 1e-5

    def __init__(self, config: MethodConfig | None = None, **overrides) -> None:
        config = config or self.Config()
        known = {f.name for f in fields(config)}
        for key, value in overrides.items():
            if key not in known:
                raise ConfigError(f"{type(self).__name__} has no setting {key!r}; settings: {sorted(known) or 'none'}")
            setattr(config, key, type(getattr(config, key))(value))
        if hasattr(config, "__post_init__"):
            config.__post_init__()
        self.config = config

    def loss(self, ctx: TrainContext, batch: TrainBatch) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError(f"{type(self).__name__} is training-free; call apply()")

    def apply(self, lm: LoadedModel, task: Task) -> LoadedModel:
        raise NotImplementedError(f"{type(self).__name__} is a gradient method; run it through obliviate.unlearn")


METHODS: Registry[type[Method]] = Registry("method")


# Shared pieces of the losses (one implementation each, used by every method that needs them).

def target_nll(model: torch.nn.Module, pairs: EncodedPairs) -> torch.Tensor:
    """Mean cross-entropy over target tokens (the usual LM loss restricted to answers): scalar."""
    lp = token_logprobs(model, pairs)  # (B, T-1)
    return -lp.sum() / pairs.target_mask[:, 1:].sum().clamp(min=1)


def sequence_logprob(model: torch.nn.Module, pairs: EncodedPairs) -> torch.Tensor:
    """Summed target log-prob per example: (B,)."""
    return token_logprobs(model, pairs).sum(-1)


def target_lengths(pairs: EncodedPairs) -> torch.Tensor:
    """Number of target tokens per example: (B,)."""
    return pairs.target_mask[:, 1:].sum(-1).clamp(min=1)


def npo_loss(log_ratio: torch.Tensor, beta: float) -> torch.Tensor:
    """NPO (Zhang et al. 2024, arXiv:2404.05868, Eq. 3): (2/β) · mean log(1 + (π/π_ref)^β) = -(2/β) logσ(-β·r)."""
    return -(2.0 / beta) * torch.nn.functional.logsigmoid(-beta * log_ratio).mean()


def retain_kl(ctx: TrainContext, pairs: EncodedPairs) -> torch.Tensor:
    """KL(reference ‖ current) on retain target tokens, averaged over those tokens: scalar."""
    assert ctx.reference_logits is not None, "method must set needs_reference_model"
    logits = ctx.model(input_ids=pairs.input_ids, attention_mask=pairs.attention_mask).logits[:, :-1]
    ref = ctx.reference_logits(pairs)[:, :-1]
    mask = pairs.target_mask[:, 1:]
    kl = torch.nn.functional.kl_div(
        logits[mask].float().log_softmax(-1), ref[mask].float().log_softmax(-1), log_target=True, reduction="batchmean"
    )
    return kl
