"""Per-form forgetting: accuracy, answer probability, ROUGE-L and what the model said, per split and form.

Asking the same fact as a cloze, a multiple choice, a true/false question or through the chat template often
brings it back after unlearning on QA alone; this metric shows that form by form. Every number is a mean over
facts (a fact with several probes in a form, e.g. two paraphrases, counts once, by the mean of its probes) and
carries a 95 % interval (`<name>_ci`: Wilson for accuracies, bootstrap over facts otherwise) and its `n`
(facts; `n_probes`). `outcomes` splits the answers of generative forms into right / wrong / refusal /
gibberish / empty (obliviate.judge.classify); choice forms also report lm-eval's length-normalised
`accuracy_norm`. `facts` keeps each fact's score so two models can be compared fact by fact.

The `holdout` split (facts the model never learned) is the control: its accuracy in a form is what guessing
gets there (for choice forms that is measured chance, not 1/k). On the forget split each form reports
`above_holdout` (forget - holdout accuracy, independent samples) and, with `reference=`, `above_reference`
(this model - the exact-unlearning reference on the same facts, paired). A form has forgotten when these
intervals contain 0; on forget lower is better, on retain / neighbours / general higher is better. Cost: one
greedy generation per generative probe, one scoring pass per choice probe (shared with other metrics through
the card cache); the reference's forget probes when a reference is given.
"""

from __future__ import annotations

from collections import Counter

from obliviate.judge import OUTCOMES
from obliviate.metrics.base import METRICS, EvalContext, Metric
from obliviate.models import LoadedModel
from obliviate.progress import phase
from obliviate.scoring import ProbeResult
from obliviate.stats import difference, mean_ci

CARD_SPLITS = ("forget", "retain", "neighbours", "general", "holdout")
CONTROL_SPLIT = "holdout"


def per_fact(results: list[ProbeResult], score=lambda r: float(r.correct)) -> dict[str, float]:
    """{fact id: mean score of its probes}, in first-seen order."""
    groups: dict[str, list[float]] = {}
    for r in results:
        groups.setdefault(r.probe.fact_id, []).append(score(r))
    return {fid: sum(v) / len(v) for fid, v in groups.items()}


def _with_ci(name: str, values: list[float]) -> dict[str, float | list[float]]:
    est = mean_ci(values)
    return {name: est.value, f"{name}_ci": [est.lo, est.hi]}


def summarise(results: list[ProbeResult]) -> dict | None:
    """Per-fact means with intervals, outcome shares and per-fact accuracies of scored probes (None for none)."""
    if not results:
        return None
    accuracy = per_fact(results)
    out: dict = {**_with_ci("accuracy", list(accuracy.values())),
                 **_with_ci("probability", list(per_fact(results, lambda r: r.probability).values())),
                 **_with_ci("rouge_l", list(per_fact(results, lambda r: r.rouge_l).values())),
                 "n": len(accuracy), "n_probes": len(results)}
    if results[0].probe.choices:
        norm = per_fact(results, lambda r: float(bool(r.correct_norm)))
        out.update(_with_ci("accuracy_norm", list(norm.values())))
    counts = Counter(r.outcome for r in results)
    out["outcomes"] = {o: counts[o] / len(results) for o in OUTCOMES if not results[0].probe.choices or
                       o in ("right", "wrong")}
    out["facts"] = accuracy
    return out


def form_scores(lm: LoadedModel, ctx: EvalContext, split: str) -> dict[str, dict]:
    """{form: summary} for one split; forms the split's facts lack (or the model cannot take) are left out."""
    out = {}
    for form in ctx.config.forms:
        summary = summarise(ctx.probe_results(lm, split, form))
        if summary is not None:
            out[form] = summary
    return out


def controls(lm: LoadedModel, ctx: EvalContext, forget: dict[str, dict]) -> None:
    """Add `above_holdout` and `above_reference` (difference estimates) to each forget form's summary."""
    for form, row in forget.items():
        mine = list(row["facts"].values())
        holdout = per_fact(ctx.probe_results(lm, CONTROL_SPLIT, form)) if ctx.facts(CONTROL_SPLIT) else {}
        if holdout:
            row["above_holdout"] = difference(mine, list(holdout.values())).to_dict()
        if ctx.reference is not None and ctx.reference is not lm:
            ref = per_fact(ctx.probe_results(ctx.reference, "forget", form))
            shared = [fid for fid in row["facts"] if fid in ref]
            if shared:
                row["above_reference"] = difference([row["facts"][f] for f in shared], [ref[f] for f in shared],
                                                    paired=True).to_dict()


@METRICS.register("forms")
class PerForm(Metric):
    summary = ("accuracy, probability, ROUGE-L and outcomes per form (QA, chat, cloze, MCQ, T/F, paraphrase, "
               "two-hop) per split, with 95 % intervals and the holdout / reference control")
    section = "forgetting"
    higher_is_better = None  # lower on forget, higher elsewhere: the card reads the split
    version = "2"
    cost = "one generation per generative probe + one scoring pass per choice probe"

    def compute(self, lm, ctx):
        splits = [split for split in CARD_SPLITS if ctx.facts(split)]
        with phase("forms", total=len(splits)) as step:
            out = {}
            for split in splits:
                out[split] = form_scores(lm, ctx, split)
                step(split)
        if "forget" in out:
            controls(lm, ctx, out["forget"])
        return out
