"""WPN-style unlearning: an N-pair contrastive loss on position-weighted pooled representations.

Chen et al. 2024, Machine Unlearning via Weighted Positional N-pair Learning (ECAI 2024, arXiv:2408.09459).
Spec tag [S] for the pooling and the N-pair form, [R] for the wiring; this is "WPN-style (reconstructed)":
  e(span) = Σ_t t·h_t / Σ_t t over the span's positions of the last hidden layer (SGPT position weights);
  anchor a_i = e(prompt of x_i); positive p_i = e(refusal after x_i); negatives = e(answer after x_j) for
  every forget row j of the batch (its own answer and the in-batch ones);
  L = mean_i log(1 + Σ_j exp((cos(a_i, n_j) − cos(a_i, p_i)) / τ)) + λ·CE(retain).
The retain CE is our addition (the paper reports utility but our sources do not say how it is kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.errors import ConfigError
from obliviate.methods._common import refusal_pairs, tokenizer_of
from obliviate.methods.base import METHODS, Method, MethodConfig, target_nll
from obliviate.scoring import EncodedPairs


def pooled(model: torch.nn.Module, pairs: EncodedPairs, span: str) -> torch.Tensor:
    """Position-weighted mean of the last hidden layer over the prompt or the target span: (B, H)."""
    out = model(input_ids=pairs.input_ids, attention_mask=pairs.attention_mask, output_hidden_states=True)
    h = out.hidden_states[-1].float()  # (B, T, H)
    if span == "prompt":
        mask = pairs.attention_mask.bool() & ~pairs.target_mask
    else:  # positions that predict target tokens: the last prompt token .. the second-last target token
        mask = torch.zeros_like(pairs.target_mask)
        mask[:, :-1] = pairs.target_mask[:, 1:]
    w = torch.arange(1, h.shape[1] + 1, device=h.device, dtype=h.dtype) * mask  # (B, T)
    return (h * w.unsqueeze(-1)).sum(1) / w.sum(1, keepdim=True).clamp(min=1)


@dataclass
class WPNConfig(MethodConfig):
    temperature: float = 0.1  # τ on cosine similarities
    retain_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ConfigError(f"wpn temperature must be > 0, got {self.temperature}")


@METHODS.register("wpn")
class WPN(Method):
    summary = "N-pair contrastive loss: forget prompts' pooled states toward refusals, away from answers [R]"
    paper = "Chen et al. 2024, Machine Unlearning via Weighted Positional N-pair Learning (WPN), arXiv:2408.09459"
    Config = WPNConfig
    needs_retain = True
    single_process = "each anchor's negatives are the other answers of its batch, which another process does not see"
    default_steps = 20
    default_lr = 2e-5

    def loss(self, ctx, batch):
        c, f = self.config, batch.forget
        anchor = pooled(ctx.model, f, "prompt")  # (B, H)
        negative = pooled(ctx.model, f, "target")  # (B, H)
        positive = pooled(ctx.model, refusal_pairs(tokenizer_of(ctx), f), "target")  # (B, H)
        cos = torch.nn.functional.cosine_similarity
        s_pos = cos(anchor, positive)  # (B,)
        s_neg = cos(anchor.unsqueeze(1), negative.unsqueeze(0), dim=-1)  # (B, B): anchor i vs answer j
        loss = torch.log1p(((s_neg - s_pos.unsqueeze(1)) / c.temperature).exp().sum(1)).mean()
        logs = {"npair": loss.item(), "cos_pos": s_pos.mean().item(), "cos_neg": s_neg.diagonal().mean().item()}
        if c.retain_weight and batch.retain is not None:
            retain = target_nll(ctx.model, batch.retain)
            loss = loss + c.retain_weight * retain
            logs["retain_nll"] = retain.item()
        return loss, logs
