"""KLUE: attribute the forget answers to MLP neurons, then unlearn (NPO) through those neurons only.

Yang et al. 2025, FaithUn: Toward Faithful Forgetting in Language Models (EMNLP 2025, arXiv:2502.19207).
Spec tag [S] for the idea, [R] for the formulas (no code is public), so this is our reconstruction:
  1. attribution of neuron i of block ℓ (the `down_proj` input a_i): A_i = Σ_t a_i,t · ∂log π(y|x)/∂a_i,t over
     answer-predicting positions, averaged over the first forget batch; the same on the first retain batch
     is subtracted (λ·A_i(retain): the "superficial knowledge" regulariser, keeping answer-format neurons);
  2. keep the top `neuron_fraction` of all neurons by A_i − λ·A_i(retain);
  3. NPO on the forget rows the model still answers (greedy match, "unforgotten" samples only), with the
     gradient reaching only the chosen columns of `down_proj` (W_eff = sg(W) + M ⊙ (W − sg(W))), plus retain CE.
Deviation: attribution uses the first batch (8 forget + 8 retain examples by default), not the whole split.
The choice is made once per run on the starting weights and saved in checkpoints, so a resumed run keeps it.
Under LoRA it is refused: adapters cannot be restricted to chosen columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.func import functional_call

from obliviate.errors import ConfigError
from obliviate.hooks import capture, mlp_out, n_layers
from obliviate.methods._common import greedy_known, pairs_logprob
from obliviate.methods.base import METHODS, Method, MethodConfig, npo_rows
from obliviate.scoring import EncodedPairs, target_logits
from obliviate.train import process_mean


def neuron_attribution(model: torch.nn.Module, pairs: EncodedPairs) -> torch.Tensor:
    """Gradient × activation of every `down_proj` input neuron for the pairs' answers: (n_layers, d_ff)."""
    names = [f"mlp_in.{i}" for i in range(n_layers(model))]
    with capture(model, *names, detach=False) as acts:
        logp = pairs_logprob(target_logits(model, pairs), pairs).sum()
    grads = torch.autograd.grad(logp, [acts[n] for n in names])
    pred = torch.zeros_like(pairs.target_mask)
    pred[:, :-1] = pairs.target_mask[:, 1:]  # positions whose next token is an answer token
    return torch.stack([(acts[n].detach() * g)[pred].sum(0) / len(pairs) for n, g in zip(names, grads)])


@dataclass
class KLUEConfig(MethodConfig):
    neuron_fraction: float = 0.01  # share of all MLP neurons that may change
    retain_penalty: float = 1.0  # λ: subtract the retain attribution
    beta: float = 0.1  # NPO inverse temperature
    retain_weight: float = 1.0  # retain CE (0 = none)

    def __post_init__(self) -> None:
        if not 0 < self.neuron_fraction <= 1 or self.beta <= 0:
            raise ConfigError(f"klue needs 0 < neuron_fraction <= 1 and beta > 0; got {self}")


@METHODS.register("klue")
class KLUE(Method):
    summary = "NPO through the MLP neurons attributed to the forget answers only (gradient x activation) [R]"
    paper = "Yang et al. 2025, FaithUn: Toward Faithful Forgetting in Language Models (KLUE), arXiv:2502.19207"
    Config = KLUEConfig
    needs_retain = True
    needs_reference_logprobs = True
    default_steps = 20
    default_lr = 1e-3  # only ~1 % of the MLP columns move, so steps can be large

    def setup(self, ctx, first) -> None:
        """Attribute the first batch's answers to neurons and keep the top ones (once, on the starting weights)."""
        if ctx.config.lora:
            raise ConfigError("klue trains chosen columns of the MLP output weights, which LoRA adapters cannot be "
                              "restricted to; run klue without lora")
        c, model = self.config, ctx.unwrapped
        score = neuron_attribution(model, first.forget)
        if first.retain is not None and c.retain_penalty:
            score = score - c.retain_penalty * neuron_attribution(model, first.retain)
        k = max(1, int(c.neuron_fraction * score.numel()))
        chosen = torch.zeros(score.numel(), dtype=torch.bool, device=score.device)
        chosen[score.flatten().topk(k).indices] = True
        chosen = chosen.view_as(score)  # (n_layers, d_ff)
        masks = {}
        for layer in chosen.any(1).nonzero().flatten().tolist():
            name, transposed = mlp_out(model, layer)
            column = chosen[layer].float()
            masks[name] = column[:, None] if transposed else column[None, :]  # over the weight's d_ff axis
        self._masks = masks

    def state_dict(self) -> dict:
        return {"masks": self._masks}

    def load_state_dict(self, state: dict) -> None:
        self._masks = state["masks"]

    def trainable(self, name: str) -> bool:
        return name in self._masks

    def _logprob(self, ctx, pairs) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed target log-prob per row with gradients reaching only the chosen columns, and whether greedy
        decoding still gives each row's answer."""
        params = dict(ctx.unwrapped.named_parameters())
        outer = {id(p): n for n, p in ctx.model.named_parameters()}  # the same tensors under a DDP wrapper's names
        masked = {outer[id(params[n])]: params[n].detach() + m * (params[n] - params[n].detach())
                  for n, m in self._masks.items()}
        logits = target_logits(lambda **inputs: functional_call(ctx.model, masked, (), inputs, strict=False), pairs,
                               head=ctx.unwrapped.get_output_embeddings())
        return pairs_logprob(logits, pairs), greedy_known(logits, pairs)

    def loss(self, ctx, batch):
        c = self.config
        lp, known = self._logprob(ctx, batch.forget)
        ratio = lp - batch.forget_ref_logprob
        per_row = npo_rows(ratio, c.beta)
        forget = process_mean((per_row * known).sum(), known.sum())  # still-known rows only
        loss, logs = forget, {"npo": forget.item(), "known_rows": known.float().mean().item()}
        if c.retain_weight and batch.retain is not None:
            r = batch.retain
            retain = -process_mean(self._logprob(ctx, r)[0].sum(), r.target_mask[:, 1:].sum())
            loss = loss + c.retain_weight * retain
            logs["retain_nll"] = retain.item()
        return loss, logs
