"""Membership inference: can an attacker tell forget facts (trained on) from holdout facts (never trained)?

Every attack gives each QA pair a membership score (higher = "was trained on"), computed on the answer tokens
given the question, the part the model was trained to produce. The scores follow MUSE's and Min-K %'s code:

- `loss`: mean token log-likelihood of the answer (LOSS, Yeom et al. 2018).
- `zlib`: mean token log-likelihood divided by the answer's zlib-compressed length in bytes, discounting answers
  that are easy because they are simple text (Carlini et al. 2021).
- `min_k`: mean of the k % lowest token log-likelihoods (Min-K % Prob, Shi et al. 2024) with MUSE's k = 40 %:
  members have fewer surprising tokens. k % of the tokens is rounded down as in the reference code, but at least
  one token is kept (the reference code averages an empty slice, NaN, for answers under 3 tokens).
- `min_k_pp`: Min-K %++ (Zhang et al. 2024): each token's log-prob standardised by the mean and spread of
  log-probs under the model's own next-token distribution, then the k % lowest averaged.

`auc` is the ROC AUC of forget (label 1) vs holdout (label 0) with these scores, in [0, 1], each with a
stratified bootstrap interval (`auc_ci`): 1 = members perfectly identifiable (still memorised), 0.5 =
indistinguishable, below 0.5 = forget facts now look *less* familiar than never-seen ones (over-unlearning,
itself a detectable trace). The target is the exact-unlearning reference's AUC, not 0.5.

With `reference=`, `privleak` is MUSE's PrivLeak in percent: (AUC_model - AUC_ref) / AUC_ref x 100, with MUSE's
orientation of the AUC (forget labelled 0 against these member-high scores, i.e. 1 - `auc`). So it reads like
MUSE's tables: 0 is ideal, near -100 under-unlearned (the original model), positive over-unlearned. Its
interval resamples forget and holdout facts, scoring both models on the same draw (paired).

Needs a holdout split. Cost: one teacher-forced pass over forget + holdout QA pairs per model (the full
vocabulary distribution is read once per answer token for Min-K %++).
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import torch

from obliviate.data.forms import qa_prompt, target
from obliviate.metrics.base import METRICS, EvalContext, Metric
from obliviate.models import LoadedModel
from obliviate.scoring import answer_token_stats
from obliviate.stats import bootstrap_auc, stratified_bootstrap

ATTACKS = ("loss", "zlib", "min_k", "min_k_pp")
MIN_K = 0.4  # MUSE's k for PrivLeak


def _lowest_mean(values: torch.Tensor, k: float) -> float:
    n = max(1, math.floor(k * values.numel()))
    return float(values.sort().values[:n].mean())


def attack_scores(stats: torch.Tensor, text: str, k: float = MIN_K) -> dict[str, float]:
    """Membership scores of one answer from its (n_tokens, 3) [log p, mu, sigma] rows (higher = member)."""
    lp, mu, sigma = stats[:, 0], stats[:, 1], stats[:, 2]
    return {
        "loss": float(lp.mean()),
        "zlib": float(lp.mean()) / len(zlib.compress(text.encode("utf-8"))),
        "min_k": _lowest_mean(lp, k),
        "min_k_pp": _lowest_mean((lp - mu) / sigma.clamp_min(1e-6), k),
    }


def auc(member: list[float], nonmember: list[float]) -> float | None:
    """ROC AUC of members (label 1) against non-members (label 0) for scores where higher means member: the
    share of (member, non-member) pairs ranked right, ties counting half (Mann-Whitney; equal to sklearn's
    roc_auc_score, and ~75x faster (measured) on the few hundred scores a card has, which the bootstrap calls 2000 times)."""
    if not member or not nonmember:
        return None
    m, n = np.asarray(member, dtype=np.float64)[:, None], np.asarray(nonmember, dtype=np.float64)[None, :]
    return float((m > n).mean() + 0.5 * (m == n).mean())


def privleak(auc_model: float, auc_reference: float) -> float:
    """MUSE's PrivLeak in percent from obliviate-oriented AUCs (members high): MUSE's AUC is 1 - ours; the
    denominator gets open-unlearning's 1e-10 so a reference AUC of 1 (ours) stays finite."""
    muse_model, muse_reference = 1.0 - auc_model, 1.0 - auc_reference
    return (muse_model - muse_reference) / (muse_reference + 1e-10) * 100.0


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


def _paired_privleak(forget: list[tuple[float, float]], holdout: list[tuple[float, float]]) -> float:
    """PrivLeak of (model, reference) score pairs on the same facts."""
    return privleak(auc([m for m, _ in forget], [m for m, _ in holdout]),
                    auc([r for _, r in forget], [r for _, r in holdout]))


@METRICS.register("mia")
class MembershipInference(Metric):
    summary = ("membership-inference AUC forget vs holdout (LOSS, zlib, Min-K%, Min-K%++) and MUSE's PrivLeak "
               "vs the reference")
    section = "privacy"
    higher_is_better = None  # the target is the reference's AUC; see privleak
    version = "2"
    cost = "one teacher-forced pass over forget + holdout QA pairs per model"

    def applies(self, ctx):
        return bool(ctx.facts("forget")) and bool(ctx.facts("holdout"))

    def compute(self, lm, ctx):
        member, nonmember = split_scores(lm, ctx, "forget"), split_scores(lm, ctx, "holdout")
        aucs = {a: bootstrap_auc(member[a], nonmember[a]) for a in ATTACKS}
        out: dict = {"auc": {a: e.value for a, e in aucs.items()},
                     "auc_ci": {a: [e.lo, e.hi] for a, e in aucs.items()},
                     "n_forget": len(member["loss"]), "n_holdout": len(nonmember["loss"])}
        if ctx.reference is not None:
            ref_member, ref_nonmember = split_scores(ctx.reference, ctx, "forget"), split_scores(ctx.reference, ctx, "holdout")
            out["reference_auc"] = {a: auc(ref_member[a], ref_nonmember[a]) for a in ATTACKS}
            leaks = {a: stratified_bootstrap(list(zip(member[a], ref_member[a])),
                                             list(zip(nonmember[a], ref_nonmember[a])), _paired_privleak)
                     for a in ATTACKS}
            out["privleak"] = {a: e.value for a, e in leaks.items()}
            out["privleak_ci"] = {a: [e.lo, e.hi] for a, e in leaks.items()}
        return out
