"""RMU (Representation Misdirection for Unlearning): scramble the forget activations at one middle layer.

Li et al. 2024, The WMDP Benchmark (arXiv:2403.03218), §5; values checked against the LAT repo's RMU [V].
At layer ℓ, with u a fixed random unit vector (uniform entries, normalised) and h_ℓ the block-ℓ output:
    L = mean ‖h_ℓ^θ(x_f) − c·u‖² + α · mean ‖h_ℓ^θ(x_r) − h_ℓ^θ₀(x_r)‖²      (mean over tokens and dims)
Only the MLPs of blocks ℓ−2..ℓ are trained; the forward pass stops at block ℓ (`hooks.run_until`).
Deviations, each because our data are short QA pairs rather than documents:
  - c is relative to the frozen model's activation norm (`steering_coef` × mean ‖h_ℓ‖ on the first forget
    batch); the paper's absolute c = 6.5 fits Zephyr-7B's scale only.
  - forget positions are those that predict answer tokens (the last prompt token through the second-last
    answer token), not every token: the shared "Question:" prefix would otherwise be pushed to c·u and pinned
    to h_ℓ^θ₀ at once. Retain positions are every real token.
  - h_ℓ^θ₀ comes from the same network with the original MLP weights swapped in (no second model copy).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.errors import ConfigError
from obliviate.hooks import block_path, n_layers, run_until
from obliviate.methods.base import METHODS, Method, MethodConfig
from obliviate.train import process_mean


@dataclass
class RMUConfig(MethodConfig):
    layer: int = -1  # block whose output is steered; -1 = about a quarter of the depth (WMDP: 7 of 32)
    n_trained: int = 3  # train the MLPs of blocks layer-n_trained+1 .. layer
    steering_coef: float = 4.0  # c as a multiple of the frozen model's mean activation norm at the layer
    alpha: float = 100.0  # retain weight (paper: 1200 at Zephyr's scale)
    seed: int = 0  # seed of the random direction u

    def __post_init__(self) -> None:
        if self.n_trained < 1 or self.steering_coef <= 0 or self.alpha < 0:
            raise ConfigError(f"rmu needs n_trained >= 1, steering_coef > 0, alpha >= 0; got {self}")


@METHODS.register("rmu")
class RMU(Method):
    summary = "push forget activations at a middle layer to a scaled random direction, pin retain ones (MLPs only)"
    paper = "Li et al. 2024, The WMDP Benchmark: Measuring and Reducing Malicious Use With Unlearning, arXiv:2403.03218"
    Config = RMUConfig
    needs_retain = True
    default_steps = 20  # tuned on taught SmolLM2, people small forget10: forget QA 0.75 -> 0.33, retain 0.85 -> 0.79
    default_lr = 1e-3

    def setup(self, ctx, first) -> None:
        """Pick the layer and the trained MLPs, keep their original weights, and fix c·u from the first batch."""
        c, model = self.config, ctx.unwrapped
        n = n_layers(model)
        layer = c.layer % n if c.layer >= 0 else max(0, round(n * 7 / 32))
        mlps = tuple(block_path(model, i, "mlp") + "." for i in range(max(0, layer - c.n_trained + 1), layer + 1))
        original = {k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad and k.startswith(mlps)}
        f = first.forget
        with torch.no_grad():
            h = run_until(model, f"resid.{layer}", input_ids=f.input_ids, attention_mask=f.attention_mask)
            norm = h.norm(dim=-1)[f.attention_mask.bool()].float().mean()
        u = torch.rand(h.shape[-1], generator=torch.Generator().manual_seed(c.seed))
        target = (c.steering_coef * norm.cpu() * u / u.norm()).to(h.device)
        self.load_state_dict({"layer": layer, "original": original, "target": target})

    def state_dict(self) -> dict:
        return {"layer": self._layer, "original": self._original, "target": self._target}

    def load_state_dict(self, state: dict) -> None:
        self._layer, self._original, self._target = state["layer"], state["original"], state["target"]

    def trainable(self, name: str) -> bool:
        return name in self._original

    def loss(self, ctx, batch):
        hook = f"resid.{self._layer}"
        f = batch.forget
        pred = torch.zeros_like(f.target_mask)
        pred[:, :-1] = f.target_mask[:, 1:]  # positions whose next token is an answer token
        r = batch.retain if self.config.alpha else None
        if r is not None:
            h_0 = _run_with(ctx.unwrapped, self._original, hook, r)  # before any graph exists, so swapping is safe
        h_f = run_until(ctx.model, hook, input_ids=f.input_ids, attention_mask=f.attention_mask)  # (B, T, H)
        forget = process_mean((h_f[pred].float() - self._target).pow(2).sum(), pred.sum() * h_f.shape[-1])
        loss, logs = forget, {"forget_mse": forget.item()}
        if r is not None:
            h_r = run_until(ctx.model, hook, input_ids=r.input_ids, attention_mask=r.attention_mask)
            keep = r.attention_mask.bool()
            retain = process_mean((h_r[keep].float() - h_0[keep].float()).pow(2).sum(), keep.sum() * h_r.shape[-1])
            loss = loss + self.config.alpha * retain
            logs["retain_mse"] = retain.item()
        return loss, logs


def _run_with(model, params: dict, hook: str, pairs) -> torch.Tensor:
    """Activation at `hook` with `params` swapped in for the current values (the frozen model's view)."""
    current = dict(model.named_parameters())
    saved = {k: current[k].detach().clone() for k in params}
    try:
        with torch.no_grad():
            for k, v in params.items():
                current[k].copy_(v)
            return run_until(model, hook, input_ids=pairs.input_ids, attention_mask=pairs.attention_mask)
    finally:
        with torch.no_grad():
            for k, v in saved.items():
                current[k].copy_(v)
