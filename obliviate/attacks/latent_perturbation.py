"""Latent perturbation along a linear "I know this" probe direction.

1. Linear probe (the Inside-Out idea, Gekhman et al., arXiv 2503.15299): on the attacked model's residual
   stream at a middle layer (last prompt token), fit logistic regression separating questions it knows (the
   task's retain and neighbour facts) from questions of the same kind it does not know (holdout facts), as many
   of each, none of them a target. Its accuracy is read on held-out folds (with a Wilson interval), and its
   score on the targets says whether the model still represents them as known: suppression rather than erasure.
   Invented names were negatives until 2026-12-07; they let the probe separate familiar subjects from unfamiliar
   ones instead of known facts from unknown ones, so they are gone. On builtin:realfacts both classes are real
   facts about real subjects; on taught people the holdout people were never taught, so there familiarity and
   knowledge still coincide.
2. Perturbation (the inner problem of LAU / targeted LAT, arXiv 2408.10682, 2407.15549, made training-free):
   add the probe's unit direction, scaled to a fraction of the typical residual norm, at that layer on every
   position, and ask the QA questions again. The direction is learned from other facts only, so it cannot
   carry a forget answer in.
"""

from __future__ import annotations

import numpy as np
import torch

from obliviate.attacks.base import ATTACKS, Attack, AttackContext, AttackResult, Outcome, judge_groups
from obliviate.data.forms import direct_probes, qa_prompt
from obliviate.errors import ConfigError
from obliviate.hooks import add_vector, n_layers
from obliviate.models import LoadedModel
from obliviate.scoring import hidden_states
from obliviate.stats import wilson

SCALES = (0.25, 0.5, 1.0)  # perturbation norm as a fraction of the mean residual norm at the layer
MAX_PROBE_FACTS = 60  # per class
MIN_PROBE_FACTS = 4  # per class: fewer cannot give a held-out accuracy


def probe_data(ctx: AttackContext) -> tuple[list[str], list[str]]:
    """(known prompts, unknown prompts), as many of each (at most MAX_PROBE_FACTS): retain and neighbour
    questions vs holdout questions, the targets left out (on the control, the targets are holdout facts)."""
    targets = {f.id for f in ctx.targets}
    known = [qa_prompt(f.question) for f in [*ctx.task.retain, *ctx.task.neighbours] if f.id not in targets]
    unknown = [qa_prompt(f.question) for f in ctx.task.holdout if f.id not in targets]
    n = min(len(known), len(unknown), MAX_PROBE_FACTS)
    return known[:n], unknown[:n]


def fit_probe(x: np.ndarray, y: np.ndarray, seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(x, y)


def heldout_accuracy(x: np.ndarray, y: np.ndarray, seed: int, folds: int = 5) -> tuple[int, int]:
    """(right, n): the probe's predictions on stratified held-out folds, each fold predicted by a probe fitted
    on the others."""
    from sklearn.model_selection import StratifiedKFold

    splits = StratifiedKFold(n_splits=min(folds, int(np.bincount(y).min())), shuffle=True, random_state=seed)
    right = sum(int((fit_probe(x[train], y[train], seed).predict(x[test]) == y[test]).sum())
                for train, test in splits.split(x, y))
    return right, len(y)


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
        if not ctx.targets:
            return self.result(ctx, [], "no targets")
        if len(known) < MIN_PROBE_FACTS:
            raise ConfigError(f"latent_perturbation: {len(known)} known (retain / neighbour) and {len(unknown)} "
                              f"unknown (holdout) questions besides the targets; its probe needs {MIN_PROBE_FACTS} "
                              "of each: add holdout facts to the task")
        acts = hidden_states(lm, [*known, *unknown, *(qa_prompt(f.question) for f in ctx.targets)], [layer + 1])[:, 0]
        x = acts[: len(known) + len(unknown)].numpy()
        y = np.array([1] * len(known) + [0] * len(unknown))
        right, n = heldout_accuracy(x, y, ctx.seed)
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
        lo, hi = wilson(right, n)
        notes = (f"probe at layer {layer} on {len(known)} known + {len(unknown)} unknown questions: held-out accuracy "
                 f"{right / n:.0%} [{lo:.0%}, {hi:.0%}], calls {target_known:.0%} of targets known"
                 f"{'; stopped at the time budget' if stopped else ''}")
        return self.result(ctx, best, notes, layer=layer, probe_facts_per_class=len(known),
                           probe_heldout_accuracy=right / n, probe_heldout_interval=[lo, hi],
                           probe_known_share=target_known, per_scale=per_scale)
