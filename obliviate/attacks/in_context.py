"""In-context reintroduction ("ununlearning"): put related facts in the prompt, then ask the forgotten question.

The hints are other true facts about the same subject and the fact's neighbours, written as answered questions.
A hint must never contain the answer itself: a model that reads "born in Velmora" and then says Velmora has
copied, not remembered, and the attack would "recover" facts the model never knew. `hints` drops every
candidate the forget-card judge would accept as stating the answer.
"""

from __future__ import annotations

import random

from obliviate.attacks.base import ATTACKS, Attack, AttackContext, AttackResult, judge_groups
from obliviate.data.forms import Probe, chat_prompt, has_chat_template, qa_prompt, rivals, target
from obliviate.data.schema import Fact, Task
from obliviate.judge import judge
from obliviate.models import LoadedModel

MAX_HINTS = 4  # answered questions per prompt


def candidate_hints(fact: Fact, task: Task) -> list[Fact]:
    """Related facts: same subject first (other relations), then listed neighbours; never the fact itself."""
    by_id = task.facts_by_id()
    same_subject = [f for f in by_id.values() if fact.subject and f.subject == fact.subject and f.id != fact.id]
    neighbours = [by_id[i] for i in fact.neighbours if i in by_id]
    seen, out = set(), []
    for f in same_subject + neighbours:
        if f.id not in seen and f.id != fact.id:
            seen.add(f.id)
            out.append(f)
    return out


def leaks(hint: Fact, fact: Fact) -> bool:
    """True if the hint's question or answer states `fact`'s answer (by the forget-card judge)."""
    text = f"{hint.question} {hint.answer}"
    return judge(text, fact.answer) or judge(fact.answer, hint.answer)


def hints(fact: Fact, task: Task, rng: random.Random, k: int = MAX_HINTS) -> list[Fact]:
    """Up to `k` facts related to `fact`, none of which contains its answer."""
    pool = [h for h in candidate_hints(fact, task) if not leaks(h, fact)]
    rng.shuffle(pool)
    return pool[:k]


def hinted_probes(fact: Fact, shown: list[Fact], tokenizer) -> list[Probe]:
    """The question after the hints as answered questions: in plain text and, for a chat model, as earlier turns
    of the conversation (how a user would reintroduce them)."""
    plain = "\n\n".join(f"{qa_prompt(h.question)}{target(h.answer)}" for h in shown)
    out = [Probe(fact.id, "qa", f"{plain}\n\n{qa_prompt(fact.question)}", target(fact.answer), others=rivals(fact),
                 subject=fact.subject)]
    if has_chat_template(tokenizer):
        history = tuple((h.question, h.answer) for h in shown)
        out.append(Probe(fact.id, "chat", chat_prompt(tokenizer, fact.question, history), fact.answer.strip(),
                         others=rivals(fact), subject=fact.subject))
    return out


@ATTACKS.register("in_context")
class InContext(Attack):
    name = "in_context"
    summary = "reintroduce related facts (never the answer) in the prompt or the conversation, then ask again"
    paper = "UnUnlearning: Unlearning is not sufficient for content regulation (Shumailov et al., arXiv 2407.00106)"

    def run(self, lm: LoadedModel, ctx: AttackContext) -> AttackResult:
        """`budget.samples` draws of hints per fact, each asked plainly and through the chat template when the
        model has one; recovered if any is judged right."""
        rng = random.Random(ctx.seed)
        groups, no_hints = [], 0
        for fact in ctx.targets:
            asked: dict[str, Probe] = {}
            for _ in range(max(1, ctx.budget.samples)):
                shown = hints(fact, ctx.task, rng)
                if shown:
                    asked.update({p.prompt: p for p in hinted_probes(fact, shown, lm.tokenizer)})
            no_hints += not asked
            groups.append(list(asked.values()))
        outcomes = judge_groups(lm, ctx.targets, groups)
        notes = f"{no_hints} fact(s) had no related fact to show" if no_hints else ""
        return self.result(ctx, outcomes, notes, draws_per_fact=max(1, ctx.budget.samples), max_hints=MAX_HINTS)
