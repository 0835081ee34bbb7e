"""NPO: negative preference optimisation — a bounded, adaptive version of gradient ascent.

Follows Zhang et al. 2024 (arXiv:2404.05868) Eq. 3 with the optional retain CE term of their NPO+RT variant.
The reference log-probs are the model's before unlearning, computed once by train.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from obliviate.errors import ConfigError
from obliviate.methods.base import METHODS, Method, MethodConfig, npo_loss, sequence_logprob, target_nll


@dataclass
class NPOConfig(MethodConfig):
    beta: float = 0.1  # inverse temperature; smaller behaves more like gradient ascent
    retain_weight: float = 1.0  # 0 disables the retain CE term (plain NPO)

    def __post_init__(self) -> None:
        if self.beta <= 0:
            raise ConfigError(f"npo beta must be > 0, got {self.beta}")


@METHODS.register("npo")
class NPO(Method):
    summary = "negative preference optimisation against the original model (+ retain CE)"
    paper = "Zhang et al. 2024, Negative Preference Optimization, arXiv:2404.05868"
    Config = NPOConfig
    needs_retain = True
    needs_reference_logprobs = True
    default_steps = 20
    default_lr = 2e-5

    def loss(self, ctx, batch):
        log_ratio = sequence_logprob(ctx.model, batch.forget) - batch.forget_ref_logprob  # (B,)
        loss = npo_loss(log_ratio, self.config.beta)
        logs = {"npo": loss.item(), "log_ratio": log_ratio.mean().item()}
        if self.config.retain_weight and batch.retain is not None:
            retain = target_nll(ctx.model, batch.retain)
            loss = loss + self.config.retain_weight * retain
            logs["retain_nll"] = retain.item()
        return loss, logs
