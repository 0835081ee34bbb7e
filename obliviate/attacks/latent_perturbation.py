"""Latent perturbation along a linear "I know this" probe direction.

1. Linear probe (the Inside-Out idea, Gekhman et al., arXiv 2503.15299): on the attacked model's residual
   stream at a middle layer (last prompt token), fit logistic regression separating questions it knows (the
   task's retain and neighbour facts) from questions about nobody it could know (holdout facts, and retain
   questions with the subject swapped for an invented name). Its score on the forget questions says whether
   the model still represents them as known: suppression rather than erasure.
2. Perturbation (the inner problem of LAU / targeted LAT, arXiv 2408.10682, 2407.15549, made training-free):
   add the probe's unit direction, scaled to a fraction of the typical residual norm, at that layer on every
   position, and ask the QA questions again. The direction is learned from other facts only, so it cannot
   carry a forget answer in.
"""

from __future__ import annotations

import numpy as np
import torch

from obliviate.attacks.activation_steering import anonymised, invented_names
from obliviate.attacks.base import ATTACKS, Attack, AttackContext, AttackResult, Outcome, judge_groups
from obliviate.data.forms import direct_probes, qa_prompt
from obliviate.hooks import add_vector, n_layers
from obliviate.models import LoadedModel
from obliviate.scoring import hidden_states

SCALES = (0.25, 0.5, 1.0)  # perturbation norm as a fraction of the mean residual norm at the layer
MAX_PROBE_FACTS = 60  # per class


def probe_data(ctx: AttackContext) -> tuple[list[str], list[str]]:
    """(known prompts, unknown prompts) for the probe; none of them is a forget question."""
    known_facts = [*ctx.task.retain, *ctx.task.neighbours][:MAX_PROBE_FACTS]
    known = [qa_prompt(f.question) for f in known_facts]
    unknown = [qa_prompt(f.question) for f in ctx.task.holdout][: MAX_PROBE_FACTS // 2]
    names = invented_names(ctx.task, 4, ctx.seed + 1)
    for i, f in enumerate(known_facts):
        if len(unknown) >= len(known):
            break
        unknown += [qa_prompt(q) for q in anonymised(f, [names[i % len(names)]])]
    return known, unknown


def fit_probe(x: np.ndarray, y: np.ndarray, seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(x, y)


@ATTACKS.register("latent_perturbation")
class LatentPerturbation(Attack):
    name = "latent_perturbation"
    summary = "linear probe for 'known' at a middle layer; push forget questions along it and ask again"
    paper = "Inside-Out: Hidden Factual Knowledge in LLMs (arXiv 2503.15299); LAU (arXiv 2408.10682)"

    def __init__(self, layer: int | None = None) -> None:
        super().__init__()
        self.layer = layer

    def run(self, lm: LoadedModel, ctx: AttackContext) -> AttackResult:
        """Probe accuracy and its 'known' share on the targets go in `details`; recovery is judged by score_probes."""
        layer = self.layer if self.layer is not None else n_layers(lm.model) // 2
        known, unknown = probe_data(ctx)
        if len(known) < 2 or len(unknown) < 2 or not ctx.targets:
            return self.result(ctx, [Outcome(f.id, False) for f in ctx.targets],
                               f"not enough probe data ({len(known)} known / {len(unknown)} unknown prompts)")
        acts = hidden_states(lm, [*known, *unknown, *(qa_prompt(f.question) for f in ctx.targets)], [layer + 1])[:, 0]
        x = acts[: len(known) + len(unknown)].numpy()
        y = np.array([1] * len(known) + [0] * len(unknown))
        probe = fit_probe(x, y, ctx.seed)
        target_known = float(probe.predict(acts[len(x):].numpy()).mean())
        direction = torch.tensor(probe.coef_[0], dtype=torch.float32)
        direction = direction / direction.norm().clamp_min(1e-8)
        norm = float(acts.norm(dim=-1).mean())
        groups = [direct_probes(f, lm.tokenizer) for f in ctx.targets]
        best: list[Outcome] | None = None
        per_scale = {}
        stopped = False
        for scale in SCALES[: max(1, ctx.budget.samples)]:
            if per_scale and self.out_of_time(ctx):  # the first scale always runs
                stopped = True
                break
            with add_vector(lm.model, f"resid.{layer}", (direction * scale * norm).to(lm.device)):
                outcomes = judge_groups(lm, ctx.targets, groups)
            per_scale[str(scale)] = sum(o.recovered for o in outcomes) / len(outcomes)
            best = outcomes if best is None else [b if b.recovered else o for b, o in zip(best, outcomes)]
        best = best or [Outcome(f.id, False) for f in ctx.targets]
        notes = (f"probe at layer {layer}: train accuracy {probe.score(x, y):.0%}, calls {target_known:.0%} of targets "
                 f"known{'; stopped at the time budget' if stopped else ''}")
        return self.result(ctx, best, notes, layer=layer, probe_train_accuracy=float(probe.score(x, y)),
                           probe_known_share=target_known, per_scale=per_scale)
