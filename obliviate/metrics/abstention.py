"""What the model says instead, on questions about forgotten facts (section forgetting, descriptive).

Each greedy answer to a forget question (QA and paraphrase forms) is put in exactly one bucket, checked in
this order: `correct` (the judge accepts it), `refusal` (declines / "I don't know"), `gibberish` (not
language), `wrong` (a fluent, confident wrong answer: a hallucination). Each is a share in [0, 1] and the four
sum to 1. There is no single good direction: a user who wants safe forgetting prefers refusals to
hallucinations, one who wants "like never trained" compares with `holdout` (facts never taught), which is
also reported when the task has it. Cost: none beyond the per-form probes (shared cache); holdout probes add
one pass over those facts.
"""

from __future__ import annotations

from obliviate.metrics.base import METRICS, Metric
from obliviate.scoring import ProbeResult
from obliviate.text import is_gibberish, is_refusal

BUCKETS = ("correct", "refusal", "gibberish", "wrong")
FORMS = ("qa", "paraphrase")
SPLITS = ("forget", "holdout")


def bucket(result: ProbeResult) -> str:
    if result.correct:
        return "correct"
    if is_refusal(result.output):
        return "refusal"
    if is_gibberish(result.output):
        return "gibberish"
    return "wrong"


def distribution(results: list[ProbeResult]) -> dict[str, float]:
    labels = [bucket(r) for r in results]
    return {**{b: labels.count(b) / len(labels) for b in BUCKETS}, "n": len(labels)}


@METRICS.register("abstention")
class Abstention(Metric):
    summary = "on forget questions: share of correct / refusal / gibberish / wrong-but-confident answers"
    section = "forgetting"
    higher_is_better = None
    cost = "none beyond the per-form probes (holdout QA probes when the task has a holdout split)"

    def applies(self, ctx):
        return bool(ctx.facts("forget"))

    def compute(self, lm, ctx):
        out = {}
        for split in SPLITS:
            row = {}
            for form in FORMS:
                if form not in ctx.config.forms or (split == "holdout" and form != "qa"):
                    continue
                results = ctx.probe_results(lm, split, form)
                if results:
                    row[form] = distribution(results)
            if row:
                out[split] = row
        return out
