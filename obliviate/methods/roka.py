"""ROKA-style "neural healing": forget with NPO while strengthening neighbours, never pulling against them.

Shin et al. 2026, Robust Knowledge Unlearning against Adversaries (arXiv:2603.00436). Spec tag [R]: no code
or equations were available, so this is our design from the abstract (research/methods.md §10):
    g = proj(∇NPO(D_f) ⟂ ∇CE(N)) + η·∇CE(N)
the forget gradient loses its component that conflicts with the neighbour gradient (only when they
conflict, PCGrad-style), and the neighbours' CE is descended at the same time ("healing").
N is a batch drawn from the task's neighbour and retain facts together.
The returned scalar has the real loss as its value and g as its gradient (a surrogate), so the training
loop's clipping, accumulation and collapse check work unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.errors import ConfigError
from obliviate.methods.base import METHODS, Method, MethodConfig, npo_loss, sequence_logprob, target_nll


@dataclass
class ROKAConfig(MethodConfig):
    beta: float = 0.1  # NPO inverse temperature
    heal_weight: float = 1.0  # η: weight of the neighbour CE

    def __post_init__(self) -> None:
        if self.beta <= 0 or self.heal_weight < 0:
            raise ConfigError(f"roka needs beta > 0 and heal_weight >= 0, got {self}")


@METHODS.register("roka")
class ROKA(Method):
    summary = "NPO with its gradient projected off conflicts with neighbour CE, plus neighbour CE (healing) [R]"
    paper = "Shin et al. 2026, Robust Knowledge Unlearning against Adversaries (ROKA), arXiv:2603.00436"
    Config = ROKAConfig
    needs_retain = True
    keep_split = "neighbours+retain"  # neighbours alone: they heal to 1.00 while retain falls to 0.47
    single_process = "it projects each process's own forget gradient, and a projection of a sum is not a sum of projections"
    needs_reference_logprobs = True
    default_steps = 20
    default_lr = 2e-5

    def loss(self, ctx, batch):
        c = self.config
        params = [p for p in ctx.model.parameters() if p.requires_grad]
        log_ratio = sequence_logprob(ctx.model, batch.forget) - batch.forget_ref_logprob
        forget = npo_loss(log_ratio, c.beta)
        heal = target_nll(ctx.model, batch.retain)
        g_f = torch.autograd.grad(forget, params, allow_unused=True)
        g_n = torch.autograd.grad(heal, params, allow_unused=True)
        g_f = [torch.zeros_like(p) if g is None else g for p, g in zip(params, g_f)]
        g_n = [torch.zeros_like(p) if g is None else g for p, g in zip(params, g_n)]
        dot = sum((a * b).sum() for a, b in zip(g_f, g_n))
        norm2 = sum((b * b).sum() for b in g_n).clamp(min=1e-12)
        scale = (dot / norm2).clamp(max=0.0)  # only remove the conflicting part
        surrogate = sum(((p - p.detach()) * (a - scale * b + c.heal_weight * b)).sum()
                        for p, a, b in zip(params, g_f, g_n))
        value = (forget + c.heal_weight * heal).detach()
        logs = {"npo": forget.item(), "heal_nll": heal.item(), "conflict": float(dot < 0)}
        return surrogate + value, logs
