"""Directional ablation (orthogonalization): project the "forget material" direction out of the residual stream.

Łucki et al. (arXiv 2409.18025) found that the unlearned behaviour of RMU and similar methods lives largely in a
few directions of the residual stream, and that removing them, as Arditi et al. remove the refusal direction
(arXiv 2406.11717), brings the knowledge back. Here, in the model under attack only (no original, no answers):
for every block ℓ, r_ℓ = mean state at the last prompt token over the targets' direct questions − the same mean
over as many retain (else neighbour) questions in the same forms; during generation every block's output h
becomes h − (h · r̂_ℓ) r̂_ℓ at every position (the last block is left alone: its state feeds the final norm).
Then the targets are asked directly (QA, chat, cloze) and judged as the card judges. The same procedure on the
control (holdout facts, or the exact-unlearning reference) tells knowledge from what the ablation itself makes
the model say. Deviation: the paper takes the direction from forget-domain vs benign text; we use the questions.
"""

from __future__ import annotations

import torch

from obliviate.attacks.base import ATTACKS, Attack, AttackContext, AttackResult, judge_groups
from obliviate.data.forms import direct_probes
from obliviate.hooks import HookFn, hooks, n_layers
from obliviate.models import LoadedModel
from obliviate.scoring import hidden_states


def _projection(unit: torch.Tensor) -> HookFn:
    def remove(act: torch.Tensor, _name: str) -> torch.Tensor:
        u = unit.to(act.device, act.dtype)
        return act - (act @ u).unsqueeze(-1) * u
    return remove


@ATTACKS.register("directional_ablation")
class DirectionalAblation(Attack):
    name = "directional_ablation"
    summary = "project the forget-vs-retain direction out of every block's output, then ask directly again"
    paper = "An Adversarial Perspective on Machine Unlearning for AI Safety (Łucki et al., arXiv 2409.18025)"

    def run(self, lm: LoadedModel, ctx: AttackContext) -> AttackResult:
        groups = [direct_probes(f, lm.tokenizer) for f in ctx.targets]
        taken = {f.id for f in ctx.targets}
        contrast = [f for f in (ctx.task.retain or ctx.task.neighbours) if f.id not in taken][: len(ctx.targets)]
        if not contrast or not ctx.targets:
            return self.result(ctx, [], "nothing to contrast: the task has no retain or neighbour facts")
        layers = list(range(1, n_layers(lm.model)))  # hidden state i = output of block i - 1
        forget = hidden_states(lm, [p.prompt for g in groups for p in g], layers).mean(0)  # (L - 1, H)
        other = hidden_states(lm, [p.prompt for f in contrast for p in direct_probes(f, lm.tokenizer)], layers).mean(0)
        diff = forget - other
        units = diff / diff.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        with hooks(lm.model, *((f"resid.{i - 1}", _projection(units[k])) for k, i in enumerate(layers))):
            outcomes = judge_groups(lm, ctx.targets, groups)
        return self.result(ctx, outcomes, f"ablated one direction in each of {len(layers)} blocks, contrasted with "
                           f"{len(contrast)} retain facts", direction_norms=[round(float(x), 3) for x in diff.norm(dim=-1)],
                           contrast=[f.id for f in contrast])
