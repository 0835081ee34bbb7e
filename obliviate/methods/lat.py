"""Targeted LAT: train refusals / away-from-answer behaviour under a residual attack that elicits the answer.

Sheshadri et al. 2024, Targeted Latent Adversarial Training Improves Robustness to Persistent Harmful
Behaviors in LLMs (arXiv:2407.15549); spec tag [V] (aengusl/latent-adversarial-training, WMDP/WHP notebooks).
Per batch: PGD finds δ at block ℓ (per token, ‖δ_t‖ ≤ ε) that makes the forget answers likely ("toward" the
undesired text); then, with δ in place, the model minimises
    CE(refusal | x) + away(answer | x) + c_sft·CE(retain),   away = −mean log(1 − p_t)
Deviations: δ sits on the prompt positions only (the repo also perturbs completion positions) so that the
same δ applies to the answer and refusal continuations of a prompt; the adversary has no "away from
refusal" term; ε is relative to the residual norm (see lau.py); refusals are the shared template list.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.errors import ConfigError
from obliviate.hooks import add_vector
from obliviate.methods._common import refusal_pairs, tokenizer_of
from obliviate.methods.base import METHODS, Method, MethodConfig, target_nll
from obliviate.methods.lau import attack_layer, latent_attack
from obliviate.scoring import EncodedPairs, token_logprobs
from obliviate.train import process_mean


def away_loss(model: torch.nn.Module, pairs: EncodedPairs) -> torch.Tensor:
    """−mean log(1 − p_t) over target tokens: pushes each answer token's probability to 0, bounded below by 0."""
    mask = pairs.target_mask[:, 1:]
    p = token_logprobs(model, pairs)[mask].exp().clamp(max=1 - 1e-6)
    return -process_mean(torch.log1p(-p).sum(), p.numel())


@dataclass
class LATConfig(MethodConfig):
    layer: int = -1  # attacked block; -1 = a quarter of the depth (repo: 7 of 32 for Zephyr)
    eps: float = 0.5  # per-token radius relative to the residual norm there
    adv_steps: int = 4  # PGD steps (repo: 16)
    away_weight: float = 1.0
    sft_weight: float = 1.0  # c_sft: CE on the retain batch

    def __post_init__(self) -> None:
        if self.eps < 0 or self.adv_steps < 0 or min(self.away_weight, self.sft_weight) < 0:
            raise ConfigError(f"lat needs eps, adv_steps and weights >= 0, got {self}")


@METHODS.register("lat")
class TargetedLAT(Method):
    summary = "refusal CE + away-loss on answers under a PGD residual attack that elicits them (+ retain CE)"
    paper = "Sheshadri et al. 2024, Targeted Latent Adversarial Training, arXiv:2407.15549"
    Config = LATConfig
    needs_retain = True
    default_steps = 20
    default_lr = 2e-5

    def loss(self, ctx, batch):
        c, f = self.config, batch.forget
        layer = attack_layer(ctx.model, c.layer, 1 / 4)
        prompt = f.attention_mask.bool() & ~f.target_mask  # (B, T) attack positions
        idk = refusal_pairs(tokenizer_of(ctx), f)
        if c.adv_steps:
            delta = latent_attack(ctx.model, f, layer, c.eps, c.adv_steps) * prompt.unsqueeze(-1)
        else:
            delta = torch.zeros((*f.input_ids.shape, 1), device=f.input_ids.device)
        hook = f"resid.{layer}"

        def fit(d: torch.Tensor, width: int) -> torch.Tensor:  # δ for another continuation of the same prompts
            out = d.new_zeros((d.shape[0], width, d.shape[-1]))
            n = min(width, d.shape[1])
            out[:, :n] = d[:, :n]
            return out

        with add_vector(ctx.model, hook, fit(delta, idk.input_ids.shape[1])):
            toward = target_nll(ctx.model, idk)
        with add_vector(ctx.model, hook, delta):
            away = away_loss(ctx.model, f)
        loss = toward + c.away_weight * away
        logs = {"refusal_nll_adv": toward.item(), "away_adv": away.item()}
        if c.sft_weight and batch.retain is not None:
            sft = target_nll(ctx.model, batch.retain)
            loss = loss + c.sft_weight * sft
            logs["retain_nll"] = sft.item()
        return loss, logs
