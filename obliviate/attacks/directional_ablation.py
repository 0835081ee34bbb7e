"""Directional ablation (orthogonalization): project the direction unlearning added out of the residual stream.

Łucki et al. (arXiv 2409.18025) found that the unlearned behaviour of RMU and similar methods lives largely in a
few directions of the residual stream, and that removing them, as Arditi et al. remove the refusal direction
(arXiv 2406.11717), brings the knowledge back. Here: at a candidate layer ℓ, r = mean state at the last prompt
token of the targets' direct questions in the unlearned model − the same mean in the original (the shift
unlearning made on these questions; no answers used). r̂ is projected out of every block's output at every
position (h ← h − (h · r̂) r̂, the last block excepted: its state feeds the final norm), and the targets are
asked directly (QA, chat, cloze) and judged as the card judges. The layer is chosen without the targets'
answers: of depths 0.5, 0.75 and 0.25, the one whose ablation keeps the most retain facts answered (measured on
SmolLM2-135M: most single directions, and one direction per layer at every layer, break the model outright,
answering nothing, not even facts it still knew). The same procedure runs on the control (holdout facts, or
the exact-unlearning reference) to tell recovered knowledge from what the ablation itself makes the model say.
Deviation: the paper takes the direction from forget-domain vs benign text in the unlearned model and orthogonalises
the weights; projecting activations is the same operation at inference.
"""

from __future__ import annotations

import torch

from obliviate.attacks.base import ATTACKS, Attack, AttackContext, AttackResult, judge_groups
from obliviate.data.forms import direct_probes
from obliviate.hooks import HookFn, hooks, n_layers
from obliviate.models import LoadedModel
from obliviate.scoring import hidden_states

DEPTHS = (0.5, 0.75, 0.25)  # candidate layers as a share of the depth; ties go to the first
KEEP_FACTS = 20  # retain facts that choose the layer


def _projection(unit: torch.Tensor) -> HookFn:
    def remove(act: torch.Tensor, _name: str) -> torch.Tensor:
        u = unit.to(act.device, act.dtype)
        return act - (act @ u).unsqueeze(-1) * u
    return remove


@ATTACKS.register("directional_ablation")
class DirectionalAblation(Attack):
    name = "directional_ablation"
    summary = "project the direction unlearning added to the forget questions out of the residual stream; ask again"
    paper = "An Adversarial Perspective on Machine Unlearning for AI Safety (Łucki et al., arXiv 2409.18025)"
    needs_original = True

    def run(self, lm: LoadedModel, ctx: AttackContext) -> AttackResult:
        groups = [direct_probes(f, lm.tokenizer) for f in ctx.targets]
        taken = {f.id for f in ctx.targets}
        keep = [f for f in (ctx.task.retain or ctx.task.neighbours) if f.id not in taken][:KEEP_FACTS]
        if not ctx.targets or ctx.original is None:
            return self.result(ctx, [], "nothing to do: no targets or no original model")
        prompts = [p.prompt for g in groups for p in g]
        blocks = n_layers(lm.model)
        candidates = list(dict.fromkeys(max(1, min(blocks - 1, round(d * (blocks - 1)))) for d in DEPTHS))
        layers = sorted(candidates)  # hidden state i = output of block i - 1
        shift = hidden_states(lm, prompts, layers).mean(0) - hidden_states(ctx.original, prompts, layers).mean(0)
        units = {layer: s / s.norm().clamp_min(1e-8) for layer, s in zip(layers, shift)}

        def ablated(layer: int):
            return hooks(lm.model, *((f"resid.{b}", _projection(units[layer])) for b in range(blocks - 1)))

        kept = {}
        for layer in candidates:  # in DEPTHS order
            if kept and self.out_of_time(ctx):
                break
            with ablated(layer):
                kept[layer] = sum(o.recovered for o in judge_groups(
                    lm, keep, [direct_probes(f, lm.tokenizer) for f in keep])) if keep else 0
        chosen = max(kept, key=kept.get)  # dicts keep insertion order: ties go to the earlier depth
        with ablated(chosen):
            outcomes = judge_groups(lm, ctx.targets, groups)
        return self.result(ctx, outcomes, f"ablated the layer-{chosen} shift direction in {blocks - 1} blocks (chosen "
                           f"by {len(keep)} retain facts kept: {kept})", layer=chosen, retain_kept=kept,
                           shift_norm={layer: round(float(s.norm()), 3) for layer, s in zip(layers, shift)})
