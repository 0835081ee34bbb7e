"""CATNIP: token-level NPO whose reference is the model's own detached "reverse policy" 1 − p.

Yang et al. 2026 (arXiv:2602.02824). Spec tag [S]+[R] in research/methods.md: the per-token form below is our
reconstruction from reviewer descriptions, not checked against the authors' code (none is public).
Per forget target token with p_t = π_θ(y_t | x, y_<t) and r_t = sg(1 − p_t):
    ℓ_t = (2/β)·log(1 + (p_t / r_t)^β) = (2/β)·softplus(β·(log p_t − log r_t)),
pooled over all forget tokens of the batch (a token mean, not a mean of sequence means). Its gradient is
2σ(β·logit p_t)·∇log p_t: the push on a token is proportional to the model's confidence in it (2p_t at β=1),
so tokens already unlikely get almost none, which is what keeps it from collapsing like GA. No retain data.
`detach_reverse=False` is the un-stopped variant (weight unbounded as p → 1; reported unstable).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.errors import ConfigError
from obliviate.methods.base import METHODS, Method, MethodConfig
from obliviate.scoring import token_logprobs
from obliviate.train import process_mean


def catnip_token_loss(logp: torch.Tensor, beta: float, detach_reverse: bool = True) -> torch.Tensor:
    """ℓ_t for each token log-prob (any shape), numerically stable near p = 1."""
    log_reverse = torch.log1p(-logp.exp().clamp(max=1 - 1e-6))  # log(1 − p)
    if detach_reverse:
        log_reverse = log_reverse.detach()
    return (2.0 / beta) * torch.nn.functional.softplus(beta * (logp - log_reverse))


@dataclass
class CATNIPConfig(MethodConfig):
    beta: float = 1.0  # at β=1 the unlearning weight of a token is exactly 2·p_t
    detach_reverse: bool = True  # stop-gradient on the reverse-policy reference (the stable default)

    def __post_init__(self) -> None:
        if self.beta <= 0:
            raise ConfigError(f"catnip beta must be > 0, got {self.beta}")


@METHODS.register("catnip")
class CATNIP(Method):
    summary = "token-level NPO against the model's own detached 1−p (confidence-weighted GA, no retain data)"
    paper = "Yang et al. 2026, CATNIP: Calibrated and Tokenized Negative Preference Alignment, arXiv:2602.02824"
    Config = CATNIPConfig
    default_steps = 20
    default_lr = 2.5e-6  # no retain term, so gentle (taught SmolLM2: forget QA 0.75 -> 0.17, retain 0.85 -> 0.82)

    def loss(self, ctx, batch):
        mask = batch.forget.target_mask[:, 1:]
        logp = token_logprobs(ctx.model, batch.forget)[mask]  # (N_tokens,)
        loss = process_mean(catnip_token_loss(logp, self.config.beta, self.config.detach_reverse).sum(), logp.numel())
        return loss, {"catnip": loss.item(), "mean_token_p": logp.exp().mean().item()}
