"""SimNPO: NPO without a reference model — length-normalised log-prob with a reward margin.

Fan et al. 2024 (arXiv:2410.07163) Eq. 4: -(2/β) log σ(-β/|y| · log π(y|x) - γ), plus a retain CE term.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.errors import ConfigError
from obliviate.methods.base import METHODS, Method, MethodConfig, sequence_logprob, target_lengths, target_nll


@dataclass
class SimNPOConfig(MethodConfig):
    beta: float = 2.5  # inverse temperature on the length-normalised log-prob
    gamma: float = 0.0  # reward margin
    retain_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.beta <= 0:
            raise ConfigError(f"simnpo beta must be > 0, got {self.beta}")


@METHODS.register("simnpo")
class SimNPO(Method):
    summary = "reference-free NPO: length-normalised log-prob with a margin (+ retain CE)"
    paper = "Fan et al. 2024, Simplicity Prevails: Rethinking NPO for LLM Unlearning, arXiv:2410.07163"
    Config = SimNPOConfig
    needs_retain = True
    default_steps = 20
    default_lr = 2e-5

    def loss(self, ctx, batch):
        c = self.config
        mean_lp = sequence_logprob(ctx.model, batch.forget) / target_lengths(batch.forget)  # (B,)
        loss = -(2.0 / c.beta) * torch.nn.functional.logsigmoid(-c.beta * mean_lp - c.gamma).mean()
        logs = {"simnpo": loss.item(), "mean_logprob": mean_lp.mean().item()}
        if c.retain_weight and batch.retain is not None:
            retain = target_nll(ctx.model, batch.retain)
            loss = loss + c.retain_weight * retain
            logs["retain_nll"] = retain.item()
        return loss, logs
