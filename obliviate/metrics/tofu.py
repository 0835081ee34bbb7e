"""TOFU's three numbers: truth ratio, forget quality and model utility (Maini et al. 2024, arXiv:2401.06121),
computed as open-unlearning computes them; docs/metrics.md lists where obliviate differs and why.

Every probability is length-normalised: P(a | q) = exp(mean token log-prob of a after q's QA prompt).

- `truth_ratio` (section forgetting): per fact R = P(perturbed) / P(paraphrased), where P(perturbed) is the
  geometric mean over the perturbed answers (exp of their mean log-probs' mean), so R in (0, inf). R << 1: the
  model prefers the right answer over plausible wrong ones. Aggregated as open-unlearning does: on forget
  `score` = mean min(R, 1/R) in (0, 1] (1 = cannot tell right from wrong, higher = more forgotten); on
  retain-like splits `score` = mean max(0, 1 - R) in [0, 1] (higher = knows more). Both with a bootstrap
  interval over facts; `median` is the raw R's median. Facts without a paraphrased answer and perturbed answers
  are skipped. Cost: one teacher-forced pass over 2 + k answers per fact.
- `forget_quality` (section privacy): two-sample Kolmogorov-Smirnov test between the per-fact forget truth
  ratios R of the model and of the exact-unlearning reference. p in [0, 1], higher is better: a high p means
  the two distributions cannot be told apart. Needs `reference=`. With a few dozen facts the test has little
  power: read p < 0.05 as "distinguishable", not the converse as proof.
- `model_utility` (section keeping): harmonic mean over retain and general of (answer probability, ROUGE-L
  recall of the greedy answer, truth-ratio score), each in [0, 1], higher is better. On retain the probability
  is P(answer | q); on general (TOFU's world facts / real authors) it is normalised over the options,
  P(answer) / (P(answer) + sum P(perturbed)). A harmonic mean is dragged down by any one weak component, which
  is the point. The interval resamples facts within each split.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from scipy.stats import ks_2samp

from obliviate.data.forms import qa_prompt, target
from obliviate.data.schema import Fact
from obliviate.metrics.base import METRICS, EvalContext, Metric
from obliviate.models import LoadedModel
from obliviate.scoring import sequence_logprob
from obliviate.stats import Estimate, bootstrap_ci, stratified_bootstrap

RETAIN_LIKE = ("retain", "neighbours", "general")
UTILITY_SPLITS = ("retain", "general")
NORMALISED_SPLITS = ("general",)  # TOFU normalises the probability over the options outside retain


@dataclass(frozen=True)
class AnswerScores:
    """Mean token log-probs of one fact's answers after its QA prompt."""

    answer: float
    paraphrased: float | None  # None: the fact has no paraphrased answer or no perturbed answers
    perturbed: tuple[float, ...]

    @property
    def log_truth_ratio(self) -> float | None:
        """log R = log of the geometric-mean perturbed probability - log P(paraphrased)."""
        if self.paraphrased is None:
            return None
        return statistics.fmean(self.perturbed) - self.paraphrased

    @property
    def normalised_probability(self) -> float:
        """P(answer) / (P(answer) + sum P(perturbed)); P(answer) when there are no perturbed answers."""
        return 1.0 / (1.0 + sum(math.exp(p - self.answer) for p in self.perturbed))


def truth_ratio_answers(fact: Fact) -> tuple[str, list[str]] | None:
    """(paraphrased answer, perturbed answers) as the data gives them, or None when the fact lacks them.
    The builtin tasks word their perturbed answers like the paraphrase ("the city of Quistal"), as TOFU does."""
    para = fact.paraphrased_answer.strip()
    perturbed = [p.strip() for p in fact.perturbed_answers if p.strip()]
    return (para, perturbed) if para and perturbed else None


def answer_scores(lm: LoadedModel, facts: list[Fact], batch_size: int = 16) -> list[AnswerScores]:
    """One AnswerScores per fact, from one batched teacher-forced pass."""
    prompts, targets, spans = [], [], []
    for fact in facts:
        tr = truth_ratio_answers(fact)
        texts = [fact.answer, *((tr[0], *tr[1]) if tr else [p for p in fact.perturbed_answers if p.strip()])]
        start = len(targets)
        prompts += [qa_prompt(fact.question)] * len(texts)
        targets += [target(t) for t in texts]
        spans.append((start, len(targets), tr is not None))
    if not targets:
        return []
    lp = sequence_logprob(lm, prompts, targets, batch_size, normalise=True).tolist()
    out = []
    for start, end, has_tr in spans:
        if has_tr:
            out.append(AnswerScores(lp[start], lp[start + 1], tuple(lp[start + 2 : end])))
        else:
            out.append(AnswerScores(lp[start], None, tuple(lp[start + 1 : end])))
    return out


def log_truth_ratios(lm: LoadedModel, facts: list[Fact], batch_size: int = 16) -> list[float]:
    """log R per fact that has the TOFU answers (others skipped)."""
    return [s.log_truth_ratio for s in answer_scores(lm, facts, batch_size) if s.log_truth_ratio is not None]


def split_answer_scores(lm: LoadedModel, ctx: EvalContext, split: str) -> list[AnswerScores]:
    """AnswerScores per fact of a split (cached per model for the whole card)."""
    key = ("tofu", id(lm.model), split)
    if key not in ctx.cache:
        ctx.cache[key] = answer_scores(lm, ctx.facts(split), ctx.config.batch_size)
    return ctx.cache[key]


def truth_ratios(lm: LoadedModel, ctx: EvalContext, split: str) -> list[float]:
    """R per fact of a split that has the TOFU answers."""
    return [math.exp(min(s.log_truth_ratio, 50.0)) for s in split_answer_scores(lm, ctx, split)
            if s.log_truth_ratio is not None]


def forget_score(ratio: float) -> float:
    """open-unlearning's forget aggregation ("closer to 1 is better"): min(R, 1/R)."""
    return min(ratio, 1.0 / ratio)


def retain_score(ratio: float) -> float:
    """TOFU's retain-side score ("true is better"): max(0, 1 - R)."""
    return max(0.0, 1.0 - ratio)


def harmonic_mean(values: list[float]) -> float:
    """Harmonic mean of non-negative values (0 if any is 0)."""
    if any(v <= 0 for v in values):
        return 0.0
    return len(values) / sum(1.0 / v for v in values)


def ks_reading(p: float) -> str:
    if p >= 0.05:
        return "indistinguishable from the reference at the 5% level: looks like a model that never saw the forget set"
    if p >= 0.01:
        return "borderline: the forget truth ratios differ somewhat from the reference's"
    return "distinguishable from the reference: forgetting is incomplete or overdone (compare the truth ratios)"


def _row(est: Estimate, name: str) -> dict:
    return {name: est.value, f"{name}_ci": [est.lo, est.hi]}


@METRICS.register("truth_ratio")
class TruthRatio(Metric):
    summary = ("TOFU truth ratio R = P(perturbed)/P(paraphrased): forget mean min(R, 1/R) (1 = forgotten), "
               "elsewhere mean max(0, 1-R)")
    section = "forgetting"
    higher_is_better = None  # forget: score closer to 1 is more forgotten; retain-like: higher keeps more
    version = "2"
    cost = "one teacher-forced pass over the answer, paraphrased and perturbed answers of each fact"

    def applies(self, ctx):
        return any(truth_ratio_answers(f) for f in ctx.facts("forget"))

    def compute(self, lm, ctx):
        out = {}
        for split in ("forget", *RETAIN_LIKE):
            ratios = truth_ratios(lm, ctx, split)
            if not ratios:
                continue
            score = forget_score if split == "forget" else retain_score
            out[split] = {**_row(bootstrap_ci([score(r) for r in ratios]), "score"),
                          "median": statistics.median(ratios), "n": len(ratios)}
        return out


@METRICS.register("forget_quality")
class ForgetQuality(Metric):
    summary = "TOFU forget quality: KS-test p-value of forget truth ratios vs the exact-unlearning reference"
    section = "privacy"
    higher_is_better = True
    cost = "truth-ratio pass on the model and the reference (cached)"

    def applies(self, ctx):
        return ctx.reference is not None and any(truth_ratio_answers(f) for f in ctx.facts("forget"))

    def compute(self, lm, ctx):
        mine, ref = truth_ratios(lm, ctx, "forget"), truth_ratios(ctx.reference, ctx, "forget")
        test = ks_2samp(mine, ref)
        p = float(test.pvalue)
        return {"p_value": p, "log10_p": math.log10(max(p, 1e-300)), "ks_statistic": float(test.statistic),
                "n": len(mine), "reading": ks_reading(p)}


def _utility_rows(lm: LoadedModel, ctx: EvalContext, split: str) -> list[tuple[float, float, float | None]]:
    """Per fact of a split: (probability, ROUGE-L recall, truth-ratio score or None)."""
    rouge = {r.probe.fact_id: r.rouge_l for r in ctx.probe_results(lm, split, "qa")}
    rows = []
    for fact, s in zip(ctx.facts(split), split_answer_scores(lm, ctx, split)):
        if fact.id not in rouge:
            continue
        prob = s.normalised_probability if split in NORMALISED_SPLITS else math.exp(s.answer)
        tr = None if s.log_truth_ratio is None else retain_score(math.exp(min(s.log_truth_ratio, 50.0)))
        rows.append((prob, rouge[fact.id], tr))
    return rows


def _components(rows: list[tuple[float, float, float | None]]) -> dict[str, float]:
    out = {"probability": statistics.fmean(r[0] for r in rows), "rouge_l": statistics.fmean(r[1] for r in rows)}
    ratios = [r[2] for r in rows if r[2] is not None]
    if ratios:
        out["truth_ratio"] = statistics.fmean(ratios)
    return out


def utility(by_split: list[list[tuple[float, float, float | None]]]) -> float:
    """Harmonic mean of every component of every split."""
    return harmonic_mean([v for rows in by_split for v in _components(rows).values()])


@METRICS.register("model_utility")
class ModelUtility(Metric):
    summary = ("TOFU model utility: harmonic mean of answer probability, ROUGE-L recall and truth-ratio score on "
               "retain + general")
    section = "keeping"
    higher_is_better = True
    version = "2"
    cost = "QA probes of retain/general (shared with forms) + one teacher-forced pass over their answers"

    def applies(self, ctx):
        return any(ctx.facts(s) for s in UTILITY_SPLITS)

    def compute(self, lm, ctx):
        by_split = {split: rows for split in UTILITY_SPLITS if (rows := _utility_rows(lm, ctx, split))}
        splits = list(by_split.values())
        if len(splits) == 1:  # resample the one split's facts
            est = bootstrap_ci(splits[0], lambda rows: utility([rows]))
        else:
            est = stratified_bootstrap(splits[0], splits[1], lambda a, b: utility([a, b]))
        return {**_row(est, "utility"), "n": sum(len(rows) for rows in splits),
                "components": {split: _components(rows) for split, rows in by_split.items()}}
