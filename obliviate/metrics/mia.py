"""Membership inference: can an attacker tell forget facts (trained on) from holdout facts (never trained)?

Every attack gives each QA pair a membership score (higher = "was trained on"), computed on the answer tokens
given the question, the part the model was trained to produce:

- `loss`: mean token log-likelihood of the answer (Yeom et al. 2018).
- `zlib`: total log-likelihood divided by the answer's zlib-compressed length in bytes, discounting answers
  that are easy because they are simple text (Carlini et al. 2021).
- `min_k`: mean of the k % lowest token log-likelihoods (Min-K % Prob, Shi et al. 2024; k = 20 %, at least one
  token): members have fewer surprising tokens.
- `min_k_pp`: Min-K %++ (Zhang et al. 2024): each token's log-prob standardised by the mean and spread of
  log-probs under the model's own next-token distribution, then the k % lowest averaged.

`auc` is the ROC AUC of forget (label 1) vs holdout (label 0), in [0, 1]: 1 = members perfectly
identifiable (still memorised), 0.5 = indistinguishable, below 0.5 = forget facts now look *less* familiar
than never-seen ones (over-unlearning, itself a detectable trace). So there is no single good direction:
the target is the exact-unlearning reference's AUC. With `reference=`, `privleak` = (AUC - AUC_ref) / AUC_ref
(MUSE, Shi et al. 2024): 0 is ideal, > 0 under-unlearned, < 0 over-unlearned.

Needs a holdout split. Cost: one teacher-forced pass over forget + holdout QA pairs per model (the full
vocabulary distribution is read once per answer token for Min-K %++).
"""

from __future__ import annotations

import math
import zlib

import torch
from sklearn.metrics import roc_auc_score

from obliviate.data.forms import qa_prompt, target
from obliviate.metrics.base import METRICS, EvalContext, Metric
from obliviate.models import LoadedModel
from obliviate.scoring import answer_token_stats

ATTACKS = ("loss", "zlib", "min_k", "min_k_pp")
MIN_K = 0.2


def _lowest_mean(values: torch.Tensor, k: float) -> float:
    n = max(1, math.ceil(k * values.numel()))
    return float(values.sort().values[:n].mean())


def attack_scores(stats: torch.Tensor, text: str, k: float = MIN_K) -> dict[str, float]:
    """Membership scores of one answer from its (n_tokens, 3) [log p, mu, sigma] rows (higher = member)."""
    lp, mu, sigma = stats[:, 0], stats[:, 1], stats[:, 2]
    return {
        "loss": float(lp.mean()),
        "zlib": float(lp.sum()) / len(zlib.compress(text.encode("utf-8"))),
        "min_k": _lowest_mean(lp, k),
        "min_k_pp": _lowest_mean((lp - mu) / sigma.clamp_min(1e-6), k),
    }


def auc(member: list[float], nonmember: list[float]) -> float | None:
    """ROC AUC of members (label 1) against non-members (label 0) for scores where higher means member."""
    if not member or not nonmember:
        return None
    return float(roc_auc_score([1] * len(member) + [0] * len(nonmember), [*member, *nonmember]))


def split_scores(lm: LoadedModel, ctx: EvalContext, split: str) -> dict[str, list[float]]:
    """{attack: score per fact} for a split's QA pairs (cached per model for the whole card)."""
    key = ("mia", id(lm.model), split)
    if key not in ctx.cache:
        facts = ctx.facts(split)
        answers = [target(f.answer) for f in facts]
        stats = answer_token_stats(lm, [qa_prompt(f.question) for f in facts], answers, ctx.config.batch_size)
        rows = [attack_scores(s, a.strip()) for s, a in zip(stats, answers)]
        ctx.cache[key] = {a: [r[a] for r in rows] for a in ATTACKS}
    return ctx.cache[key]


def attack_aucs(lm: LoadedModel, ctx: EvalContext) -> dict[str, float | None]:
    member, nonmember = split_scores(lm, ctx, "forget"), split_scores(lm, ctx, "holdout")
    return {a: auc(member[a], nonmember[a]) for a in ATTACKS}


@METRICS.register("mia")
class MembershipInference(Metric):
    summary = "membership-inference AUC forget vs holdout (LOSS, zlib, Min-K%, Min-K%++) and PrivLeak vs reference"
    section = "privacy"
    higher_is_better = None  # the target is the reference's AUC (~0.5); see privleak
    cost = "one teacher-forced pass over forget + holdout QA pairs per model"

    def applies(self, ctx):
        return bool(ctx.facts("forget")) and bool(ctx.facts("holdout"))

    def compute(self, lm, ctx):
        aucs = attack_aucs(lm, ctx)
        out: dict = {"auc": aucs, "n_forget": len(ctx.facts("forget")), "n_holdout": len(ctx.facts("holdout"))}
        if ctx.reference is not None:
            ref = attack_aucs(ctx.reference, ctx)
            out["reference_auc"] = ref
            out["privleak"] = {a: (aucs[a] - ref[a]) / ref[a] if aucs[a] is not None and ref[a] else None
                               for a in ATTACKS}
        return out
