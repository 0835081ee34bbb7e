"""Render a Fact in each form as Probes: the exact prompt text the model sees and what counts as right.

This is the one place that decides prompt wording, so teaching, unlearning, evaluation and attacks all ask
the same question the same way. Every form but `chat` is plain text (`Question: …\nAnswer:`); `chat` asks the
question as one user turn through the model's own chat template, the way users query an instruct model, and
needs the tokenizer (a tokenizer without a chat template has no chat probes).
"""

from __future__ import annotations

from dataclasses import dataclass

from obliviate.data.schema import Fact
from obliviate.judge import normalise

FORMS = ("qa", "chat", "cloze", "mcq", "true_false", "paraphrase", "two_hop")
GENERATIVE_FORMS = ("qa", "chat", "cloze", "paraphrase", "two_hop")  # judged on greedy generations
CHOICE_FORMS = ("mcq", "true_false")  # judged by comparing the log-probability of each choice
DIRECT_FORMS = ("qa", "chat", "cloze")  # the fact asked directly: what "the model knows it" and "still answers" mean
OPTION_LETTERS = "ABCDEFGH"


@dataclass(frozen=True)
class Probe:
    """One question to the model.

    Generative probes: `prompt` + `answer` (the target continuation, with its leading space); `others` are the
    fact's other candidate answers, which the strict judge does not let an output name before or beside it, and
    `subject` is what the question is about (an answer that only occurs inside it does not count).
    Choice probes: `prompt` + each of `choices`; `correct` indexes the right one.
    """

    fact_id: str
    form: str
    prompt: str
    answer: str
    choices: tuple[str, ...] = ()
    correct: int = -1
    others: tuple[str, ...] = ()
    subject: str = ""


def qa_prompt(question: str) -> str:
    """The prompt format used for every question (teaching included)."""
    return f"Question: {question}\nAnswer:"


def target(answer: str) -> str:
    """Answers follow the prompt after one space."""
    return " " + answer.strip()


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def chat_prompt(tokenizer, question: str, history: tuple[tuple[str, str], ...] = (), system: str | None = None,
                template: str | None = None) -> str:
    """`question` as a user turn through the tokenizer's chat template (`template`: one of its named templates,
    None: its default), after earlier (question, reply) turns and an optional `system` message (None: the
    template's own default), ending where the reply starts."""
    turns = [m for q, a in history for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})]
    if system is not None:
        turns.insert(0, {"role": "system", "content": system})
    return tokenizer.apply_chat_template([*turns, {"role": "user", "content": question}], tokenize=False,
                                         add_generation_prompt=True, chat_template=template)


def named_templates(tokenizer) -> list[str]:
    """The tokenizer's named chat templates other than its default (some models ship several: tool use, RAG,
    other languages)."""
    templates = getattr(tokenizer, "chat_template", None)
    return sorted(name for name in templates if name != "default") if isinstance(templates, dict) else []


def rivals(fact: Fact) -> tuple[str, ...]:
    """The fact's other candidate answers: its multiple-choice options and short perturbed answers."""
    pool = [*(fact.mcq.options if fact.mcq else ()), *(p for p in fact.perturbed_answers if len(p.split()) <= 4)]
    right = normalise(fact.answer)
    return tuple(dict.fromkeys(o for o in pool if normalise(o) and normalise(o) != right))


def probes(fact: Fact, form: str, tokenizer=None) -> list[Probe]:
    """All probes of `fact` in `form` (an empty list when the fact lacks that form, or for `chat` when the
    tokenizer has no chat template). `tokenizer` is needed by the chat form only."""
    judged = {"others": rivals(fact), "subject": fact.subject}
    if form == "qa":
        return [Probe(fact.id, form, qa_prompt(fact.question), target(fact.answer), **judged)]
    if form == "chat":
        if tokenizer is None:
            raise ValueError("the chat form needs the model's tokenizer: probes(fact, 'chat', tokenizer)")
        if not has_chat_template(tokenizer):
            return []
        return [Probe(fact.id, form, chat_prompt(tokenizer, fact.question), fact.answer.strip(), **judged)]
    if form == "paraphrase":
        return [Probe(fact.id, form, qa_prompt(q), target(fact.answer), **judged) for q in fact.paraphrases]
    if form == "cloze":
        return [Probe(fact.id, form, fact.cloze.rstrip(), target(fact.answer), **judged)] if fact.cloze else []
    if form == "two_hop":
        return [Probe(fact.id, form, qa_prompt(t.question), target(t.answer), subject=fact.subject)
                for t in fact.two_hop]
    if form == "mcq":
        if fact.mcq is None:
            return []
        m = fact.mcq
        listed = "\n".join(f"{OPTION_LETTERS[i]}. {opt}" for i, opt in enumerate(m.options))
        # Options are scored as continuations (lm-eval style), which small models handle far better than letters.
        return [
            Probe(
                fact.id, form, f"Question: {m.question}\n{listed}\nAnswer:",
                target(m.options[m.answer_index]), tuple(target(o) for o in m.options), m.answer_index,
            )
        ]
    if form == "true_false":
        return [
            Probe(
                fact.id, form, f"True or false: {s.text}\nAnswer:",
                " True" if s.is_true else " False", (" True", " False"), 0 if s.is_true else 1,
            )
            for s in fact.statements
        ]
    raise ValueError(f"unknown form {form!r}; forms are {FORMS}")


def direct_forms(tokenizer) -> tuple[str, ...]:
    """The DIRECT_FORMS a model with this tokenizer can be asked in (no chat form without a chat template)."""
    return tuple(f for f in DIRECT_FORMS if f != "chat" or has_chat_template(tokenizer))


def direct_probes(fact: Fact, tokenizer) -> list[Probe]:
    """The fact asked directly: plain QA, the chat turn (when the tokenizer has a template) and the cloze."""
    return [p for form in direct_forms(tokenizer) for p in probes(fact, form, tokenizer)]


def all_probes(facts: list[Fact], forms: tuple[str, ...] = FORMS, tokenizer=None) -> dict[str, list[Probe]]:
    """Probes of every fact, grouped by form (the chat form only with a `tokenizer`)."""
    forms = tuple(f for f in forms if f != "chat" or tokenizer is not None)
    return {form: [p for f in facts for p in probes(f, form, tokenizer)] for form in forms}
