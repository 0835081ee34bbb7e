"""Form gap: how much better the forget facts are remembered in their best form than in the trained form.

Unlearning trained on question/answer pairs often leaves the same knowledge reachable as a cloze, a multiple
choice, a true/false statement, a reworded question or a chat turn (Ye et al. 2025, "LLM Unlearning Should Be
Form-Independent"). `gap` = best form's corrected accuracy - QA's corrected accuracy on the forget split, in
[-1, 1] (0 when QA is the best-remembered form); lower is better, and a gap near 0 on a model that still
answers QA means nothing.

Every form has a floor that a model which knows nothing still scores (guessing a familiar name, picking the
familiar option). The floor is measured, not assumed: the same model's accuracy on the task's holdout facts
(never learned) in that form. Accuracy is corrected as (acc - floor) / (1 - floor), floored at 0 after
averaging over facts (flooring each fact would turn guessing into knowledge). Without a holdout split the
floor is 1/len(choices) for choice forms and 0 for generative ones, and `floor_source` says so. `gap_ci` is a
paired bootstrap over facts of the two forms' corrected scores. Cost: none beyond the per-form probes (shared
cache) and the holdout probes.
"""

from __future__ import annotations

from obliviate.metrics.base import METRICS, EvalContext, Metric
from obliviate.metrics.forms import CONTROL_SPLIT, per_fact
from obliviate.models import LoadedModel
from obliviate.stats import paired_bootstrap_difference

TRAINED_FORM = "qa"


def floor(lm: LoadedModel, ctx: EvalContext, form: str) -> tuple[float, str]:
    """(accuracy a model that never learned the facts gets in `form`, where that number comes from)."""
    control = ctx.probe_results(lm, CONTROL_SPLIT, form) if ctx.facts(CONTROL_SPLIT) else []
    if control:
        scores = per_fact(control)
        return sum(scores.values()) / len(scores), "holdout"
    forget = ctx.probe_results(lm, "forget", form)
    choices = forget[0].probe.choices if forget else ()
    return (1.0 / len(choices) if choices else 0.0), "assumed (no holdout split)"


@METRICS.register("form_gap")
class FormGap(Metric):
    summary = "best-remembered form minus trained-form (QA) accuracy on forget, corrected by the measured floor"
    section = "forgetting"
    higher_is_better = False
    version = "2"
    cost = "none beyond the per-form and holdout probes (shared cache)"

    def applies(self, ctx):
        return bool(ctx.facts("forget")) and TRAINED_FORM in ctx.config.forms

    def compute(self, lm, ctx):
        corrected, raw, floors, per_form = {}, {}, {}, {}
        source = ""
        for form in ctx.config.forms:
            results = ctx.probe_results(lm, "forget", form)
            if not results:
                continue
            base, source = floor(lm, ctx, form)
            scores = per_fact(results)
            scale = max(1e-9, 1.0 - base)
            per_form[form] = {fid: (v - base) / scale for fid, v in scores.items()}
            corrected[form] = max(0.0, sum(per_form[form].values()) / len(scores))
            raw[form] = sum(scores.values()) / len(scores)
            floors[form] = base
        best = max(corrected, key=corrected.get)
        shared = [fid for fid in per_form[TRAINED_FORM] if fid in per_form[best]]
        gap_ci = paired_bootstrap_difference([per_form[best][f] for f in shared],
                                             [per_form[TRAINED_FORM][f] for f in shared])
        return {"gap": corrected[best] - corrected[TRAINED_FORM], "gap_ci": [gap_ci.lo, gap_ci.hi],
                "best_form": best, "qa_accuracy": corrected[TRAINED_FORM], "best_accuracy": corrected[best],
                "corrected": corrected, "raw": raw, "floor": floors, "floor_source": source, "n": len(shared)}
