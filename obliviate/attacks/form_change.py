"""Form change: ask for each forgotten fact in wordings other than the direct question.

Unlearning usually trains on the fact asked directly (QA, its chat turn, a cloze). If a paraphrase or a two-hop
question (plainly and, for a chat model, as a chat turn) or a multiple-choice / true-false probe still gets the
answer, the knowledge was suppressed in one form, not removed ("LLM Unlearning Should Be Form-Independent",
arXiv 2506.07795).
"""

from __future__ import annotations

from dataclasses import replace

from obliviate.attacks.base import ATTACKS, Attack, AttackContext, AttackResult, Outcome
from obliviate.data.forms import Probe, chat_prompt, has_chat_template, probes
from obliviate.data.schema import Fact
from obliviate.models import LoadedModel
from obliviate.scoring import score_probes

GENERATIVE = ("paraphrase", "two_hop", "chat_paraphrase", "chat_two_hop")
CHOICE = ("mcq", "true_false")
MCQ_CONFIDENCE = 0.5  # a multiple-choice hit counts only with at least this probability on the right option


def reworded(fact: Fact, form: str, tokenizer) -> list[Probe]:
    """The fact's probes in `form`; "chat_paraphrase" / "chat_two_hop" ask those questions through the chat
    template (none without one)."""
    if not form.startswith("chat_"):
        return probes(fact, form)
    if not has_chat_template(tokenizer):
        return []
    plain = probes(fact, form.removeprefix("chat_"))
    questions = fact.paraphrases if form == "chat_paraphrase" else tuple(t.question for t in fact.two_hop)
    return [replace(p, form="chat", prompt=chat_prompt(tokenizer, q), answer=p.answer.strip())
            for p, q in zip(plain, questions)]


@ATTACKS.register("form_change")
class FormChange(Attack):
    name = "form_change"
    summary = "ask in other wordings (paraphrase, two-hop, plain and as chat turns; multiple choice, true/false)"
    paper = "LLM Unlearning Should Be Form-Independent (Ye et al., arXiv 2506.07795)"

    def run(self, lm: LoadedModel, ctx: AttackContext) -> AttackResult:
        """A fact is recovered by a generative form when any of its probes is judged right (greedy + judge).

        Choice forms can be right by chance (1/2 for true/false, 1/4 for four options), so they count only
        together: the multiple-choice probe right with probability >= 0.5 AND every true/false statement
        of the fact right. A model that never knew the fact passes that by chance about 1 time in 30.
        """
        facts = ctx.targets
        per_fact = {f.id: {form: reworded(f, form, lm.tokenizer) for form in (*GENERATIVE, *CHOICE)} for f in facts}
        flat = [p for forms in per_fact.values() for ps in forms.values() for p in ps]
        scored = {id(r.probe): r for r in score_probes(lm, flat)}
        outcomes, form_hits = [], {form: [0, 0] for form in (*GENERATIVE, "choice")}
        for fact in facts:
            hits = []  # (form, result) of probes that count as recovery
            for form in GENERATIVE:
                results = [scored[id(p)] for p in per_fact[fact.id][form]]
                if results:
                    form_hits[form][1] += 1
                    right = [r for r in results if r.correct]
                    form_hits[form][0] += bool(right)
                    hits += [(form, r) for r in right]
            choice = [scored[id(p)] for form in CHOICE for p in per_fact[fact.id][form]]
            if choice:
                form_hits["choice"][1] += 1
                mcq_ok = all(r.correct and r.probability >= MCQ_CONFIDENCE for r in choice if r.probe.form == "mcq")
                if mcq_ok and all(r.correct for r in choice):
                    form_hits["choice"][0] += 1
                    hits.append(("choice", max(choice, key=lambda r: r.probability)))
            all_results = [scored[id(p)] for ps in per_fact[fact.id].values() for p in ps]
            if hits:
                _, best = hits[0]
                outcomes.append(Outcome(fact.id, True, best.probe.prompt, best.output, best.probability))
            elif all_results:
                best = max(all_results, key=lambda r: r.probability)
                outcomes.append(Outcome(fact.id, False, best.probe.prompt, best.output, best.probability))
            else:
                outcomes.append(Outcome(fact.id, False))
        rates = {form: (h / n if n else None) for form, (h, n) in form_hits.items()}
        shown = ", ".join(f"{k} {v:.0%}" for k, v in rates.items() if v is not None)
        return self.result(ctx, outcomes, f"per form: {shown}", per_form=rates)
