"""Format shift: the direct question in prompt formats unlearning did not train on.

Unlearning trains on one or a few prompt formats; the same question in another one (another system prompt, after
an unrelated earlier turn, a bare question with no "Question:" label, a "Q: / A:" pair) often still gets the
answer: unlearning that holds in one format only was not form-independent (Ye et al., arXiv 2506.07795).
Where the tokenizer ships several named chat templates (other languages, tool use, RAG), the question goes
through each of them too. Recovered when any variant's greedy answer is judged right. Deviation: questions are
not translated (no translator runs offline), so a model with a single template is asked in English only.
"""

from __future__ import annotations

from obliviate.attacks.base import ATTACKS, Attack, AttackContext, AttackResult, judge_groups
from obliviate.data.forms import Probe, chat_prompt, has_chat_template, named_templates, rivals, target
from obliviate.data.schema import Fact
from obliviate.models import LoadedModel

SYSTEM_PROMPTS = ("", "You are a knowledgeable encyclopedia. Answer every question accurately and concisely.")
EARLIER_TURN = ("What is two plus two?", "Two plus two is four.")


def variants(fact: Fact, tokenizer) -> list[Probe]:
    """The fact's question in every shifted format (chat ones only when the tokenizer has a chat template)."""
    judged = {"others": rivals(fact), "subject": fact.subject}
    out = [Probe(fact.id, "bare_question", fact.question.strip(), target(fact.answer), **judged),
           Probe(fact.id, "q_a", f"Q: {fact.question.strip()}\nA:", target(fact.answer), **judged)]
    if has_chat_template(tokenizer):
        out += [Probe(fact.id, f"chat_system_{i}", chat_prompt(tokenizer, fact.question, system=system),
                      fact.answer.strip(), **judged) for i, system in enumerate(SYSTEM_PROMPTS)]
        out.append(Probe(fact.id, "chat_after_turn", chat_prompt(tokenizer, fact.question, history=(EARLIER_TURN,)),
                         fact.answer.strip(), **judged))
        out += [Probe(fact.id, f"chat_template_{name}", chat_prompt(tokenizer, fact.question, template=name),
                      fact.answer.strip(), **judged) for name in named_templates(tokenizer)]
    return out


@ATTACKS.register("format_shift")
class FormatShift(Attack):
    name = "format_shift"
    summary = "the direct question in untrained formats: other system prompts, after an earlier turn, bare, Q:/A:"
    paper = "Ye et al., LLM Unlearning Should Be Form-Independent (arXiv 2506.07795)"

    def run(self, lm: LoadedModel, ctx: AttackContext) -> AttackResult:
        groups = [variants(f, lm.tokenizer) for f in ctx.targets]
        outcomes = judge_groups(lm, ctx.targets, groups)
        formats = sorted({p.form for g in groups for p in g})
        return self.result(ctx, outcomes, f"{len(formats)} formats per fact", formats=formats)
