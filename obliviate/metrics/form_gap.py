"""Form gap: how much better the forget facts are remembered in their best form than in the trained form.

Unlearning trained on question/answer pairs often leaves the same knowledge reachable as a cloze, a multiple
choice, a true/false statement or a reworded question (Ye et al. 2025, "LLM Unlearning Should Be
Form-Independent"). `gap` = best form's accuracy - QA accuracy on the forget split, in [-1, 1] (0 when QA is
the best-remembered form); lower is better, and a gap near 0 on a model that still answers QA means nothing.

Choice forms have a chance floor (MCQ 1/options, true/false 1/2) that a model which knows nothing still
scores, so every accuracy is chance-corrected first: (acc - chance) / (1 - chance), floored at 0. Raw
accuracies are reported beside. Cost: none beyond the per-form metric's probes (shared cache).
"""

from __future__ import annotations

from obliviate.metrics.base import METRICS, Metric
from obliviate.scoring import ProbeResult

TRAINED_FORM = "qa"


def corrected_accuracy(results: list[ProbeResult]) -> float:
    """Chance-corrected accuracy (acc - chance) / (1 - chance), floored at 0 after averaging (flooring each
    probe would turn guessing into knowledge): generative probes have chance 0, choice probes 1/len(choices)."""
    total = 0.0
    for r in results:
        chance = 1.0 / len(r.probe.choices) if r.probe.choices else 0.0
        total += (float(r.correct) - chance) / (1.0 - chance)
    return max(0.0, total / len(results))


@METRICS.register("form_gap")
class FormGap(Metric):
    summary = "best-remembered form accuracy minus trained-form (QA) accuracy on forget, chance-corrected"
    section = "forgetting"
    higher_is_better = False
    cost = "none beyond the per-form probes (shared cache)"

    def applies(self, ctx):
        return bool(ctx.facts("forget")) and TRAINED_FORM in ctx.config.forms

    def compute(self, lm, ctx):
        corrected, raw = {}, {}
        for form in ctx.config.forms:
            results = ctx.probe_results(lm, "forget", form)
            if results:
                corrected[form] = corrected_accuracy(results)
                raw[form] = sum(r.correct for r in results) / len(results)
        best = max(corrected, key=corrected.get)
        return {"gap": corrected[best] - corrected[TRAINED_FORM], "best_form": best,
                "qa_accuracy": corrected[TRAINED_FORM], "best_accuracy": corrected[best],
                "corrected": corrected, "raw": raw}
