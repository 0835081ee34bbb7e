"""LAU (latent adversarial unlearning): AdvGA and AdvNPO, unlearning under a worst-case residual perturbation.

Yuan et al. 2025, Towards Robust Knowledge Unlearning (AAAI 2025, arXiv:2408.10682) §4, spec tag [V]:
    max_θ E_{D_f}[ min_{‖δ‖≤ε} L(π_θ with δ added at block ℓ; y) ]
Per batch: (1) K PGD steps on δ (per token, L2 ball of radius ε) that *restore* the forget answers, i.e.
minimise their CE with the weights fixed; (2) one optimiser step of the unlearning loss with δ* in place:
GA (AdvGA) or NPO against the cached reference log-probs (AdvNPO); plus the retain CE ("GDR" variant).
Deviations: ε is relative to the mean residual norm at block ℓ (the paper states it in absolute units for
Llama-3-8B, in the appendix we could not read), and the PGD step is a normalised gradient step of 2.5·ε/K.
The perturbation machinery (`latent_attack`) is shared with targeted LAT (lat.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from obliviate.errors import ConfigError
from obliviate.hooks import add_vector, n_layers, run_until
from obliviate.methods.base import METHODS, Method, MethodConfig, npo_loss, sequence_logprob, target_nll
from obliviate.scoring import EncodedPairs
from obliviate.train import process_sum


def attack_layer(model: torch.nn.Module, layer: int, depth_fraction: float) -> int:
    """`layer` if given (>= 0), else the block at `depth_fraction` of the depth."""
    n = n_layers(model)
    return layer % n if layer >= 0 else min(n - 1, round(n * depth_fraction))


def latent_attack(model: torch.nn.Module, pairs: EncodedPairs, layer: int, eps_rel: float, steps: int,
                  objective: Callable[[EncodedPairs], torch.Tensor] | None = None) -> torch.Tensor:
    """PGD on a per-token residual perturbation δ (B, T, H) at block `layer` that minimises `objective`.

    The default objective is the CE of the pairs' targets (i.e. the attack brings the answers back).
    Each token's δ stays within ε = eps_rel × the mean residual norm there (over every data-parallel process's
    batch, so that N processes attack as one). Weights get no gradients.
    """
    objective = objective or (lambda p: target_nll(model, p))
    hook = f"resid.{layer}"
    mask = pairs.attention_mask.bool()
    with torch.no_grad():
        h = run_until(model, hook, input_ids=pairs.input_ids, attention_mask=pairs.attention_mask)
        norms = h.norm(dim=-1)[mask].float()
        eps = eps_rel * process_sum(norms.sum()) / process_sum(torch.tensor(float(norms.numel()), device=h.device))
    delta = torch.zeros_like(h)
    for _ in range(steps):
        delta.requires_grad_(True)
        with add_vector(model, hook, delta, mask=mask):
            (grad,) = torch.autograd.grad(objective(pairs), delta)
        with torch.no_grad():
            step = grad / grad.norm(dim=-1, keepdim=True).clamp(min=1e-12)
            delta = delta - 2.5 * eps / steps * step
            delta = delta * (eps / delta.norm(dim=-1, keepdim=True).clamp(min=1e-12)).clamp(max=1.0)
    return delta.detach() * mask.unsqueeze(-1)


@dataclass
class LAUConfig(MethodConfig):
    layer: int = -1  # block whose output is perturbed; -1 = 1/8 of the depth (paper: layer 4 of 32)
    eps: float = 0.5  # radius of each token's perturbation, relative to the mean residual norm there
    adv_steps: int = 4  # PGD steps per batch (paper: 6; even 0, a zero δ, helps)
    retain_weight: float = 1.0  # retain CE ("GDR"); 0 disables it
    beta: float = 0.1  # AdvNPO only

    def __post_init__(self) -> None:
        if self.eps < 0 or self.adv_steps < 0 or self.beta <= 0:
            raise ConfigError(f"lau needs eps >= 0, adv_steps >= 0, beta > 0; got {self}")


class _LatentAdversarial(Method):
    Config = LAUConfig
    needs_retain = True
    default_steps = 20

    def forget_loss(self, ctx, batch) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def loss(self, ctx, batch):
        c = self.config
        layer = attack_layer(ctx.model, c.layer, 1 / 8)
        delta = latent_attack(ctx.model, batch.forget, layer, c.eps, c.adv_steps) if c.adv_steps else None
        if delta is None:
            loss, logs = self.forget_loss(ctx, batch)
        else:
            with add_vector(ctx.model, f"resid.{layer}", delta, mask=batch.forget.attention_mask.bool()):
                loss, logs = self.forget_loss(ctx, batch)
        if c.retain_weight and batch.retain is not None:
            retain = target_nll(ctx.model, batch.retain)
            loss = loss + c.retain_weight * retain
            logs["retain_nll"] = retain.item()
        return loss, logs


@METHODS.register("advga")
class AdvGA(_LatentAdversarial):
    summary = "gradient ascent under a PGD residual perturbation that restores the answers (+ retain CE)"
    paper = "Yuan et al. 2025, Towards Robust Knowledge Unlearning (LAU: AdvGA), arXiv:2408.10682"
    default_lr = 1e-4  # tuned on taught SmolLM2 (20 steps): forget QA 0.75 -> 0.08, retain 0.85 -> 0.92

    def forget_loss(self, ctx, batch):
        nll = target_nll(ctx.model, batch.forget)
        return -nll, {"forget_nll_adv": nll.item()}


@METHODS.register("advnpo")
class AdvNPO(_LatentAdversarial):
    summary = "NPO under a PGD residual perturbation that restores the answers (+ retain CE)"
    paper = "Yuan et al. 2025, Towards Robust Knowledge Unlearning (LAU: AdvNPO), arXiv:2408.10682"
    needs_reference_logprobs = True
    default_lr = 5e-5  # tuned on taught SmolLM2 (20 steps): forget QA 0.75 -> 0.33, retain 0.85 -> 0.92

    def forget_loss(self, ctx, batch):
        log_ratio = sequence_logprob(ctx.model, batch.forget) - batch.forget_ref_logprob
        loss = npo_loss(log_ratio, self.config.beta)
        return loss, {"npo_adv": loss.item(), "log_ratio_adv": log_ratio.mean().item()}
