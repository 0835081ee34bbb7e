"""Per-form forgetting: accuracy, answer probability and ROUGE-L for every split and every form.

Asking the same fact as a cloze, a multiple choice or a true/false question often brings it back after
unlearning on QA alone; this metric shows that form by form. Range [0, 1] for every number. On the forget
split lower is better; on retain / neighbours / general higher is better. Cost: one greedy generation per
generative probe, one scoring pass per choice probe (shared with other metrics through the card cache).
"""

from __future__ import annotations

from obliviate.metrics.base import METRICS, EvalContext, Metric
from obliviate.models import LoadedModel
from obliviate.scoring import ProbeResult

CARD_SPLITS = ("forget", "retain", "neighbours", "general")


def summarise(results: list[ProbeResult]) -> dict[str, float] | None:
    """Mean accuracy / probability / ROUGE-L of scored probes (None for no probes)."""
    if not results:
        return None
    n = len(results)
    return {
        "accuracy": sum(r.correct for r in results) / n,
        "probability": sum(r.probability for r in results) / n,
        "rouge_l": sum(r.rouge_l for r in results) / n,
        "n": n,
    }


def form_scores(lm: LoadedModel, ctx: EvalContext, split: str) -> dict[str, dict[str, float]]:
    """{form: summary} for one split; forms the split's facts lack are left out."""
    out = {}
    for form in ctx.config.forms:
        summary = summarise(ctx.probe_results(lm, split, form))
        if summary is not None:
            out[form] = summary
    return out


@METRICS.register("forms")
class PerForm(Metric):
    summary = "accuracy, answer probability and ROUGE-L per form (QA, cloze, MCQ, T/F, paraphrase, two-hop) per split"
    section = "forgetting"
    higher_is_better = None  # lower on forget, higher elsewhere: the card reads the split
    cost = "one generation per generative probe + one scoring pass per choice probe"

    def compute(self, lm, ctx):
        return {split: form_scores(lm, ctx, split) for split in CARD_SPLITS if ctx.task.split(split)}
