"""Render a Fact in each form as Probes: the exact prompt text the model sees and what counts as right.

This is the one place that decides prompt wording, so teaching, unlearning, evaluation and attacks all ask
the same question the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from obliviate.data.schema import Fact

FORMS = ("qa", "cloze", "mcq", "true_false", "paraphrase", "two_hop")
GENERATIVE_FORMS = ("qa", "cloze", "paraphrase", "two_hop")  # judged on greedy generations
CHOICE_FORMS = ("mcq", "true_false")  # judged by comparing the log-probability of each choice
OPTION_LETTERS = "ABCDEFGH"


@dataclass(frozen=True)
class Probe:
    """One question to the model.

    Generative probes: `prompt` + `answer` (the target continuation, with its leading space).
    Choice probes: `prompt` + each of `choices`; `correct` indexes the right one.
    """

    fact_id: str
    form: str
    prompt: str
    answer: str
    choices: tuple[str, ...] = ()
    correct: int = -1


def qa_prompt(question: str) -> str:
    """The prompt format used for every question (teaching included)."""
    return f"Question: {question}\nAnswer:"


def target(answer: str) -> str:
    """Answers follow the prompt after one space."""
    return " " + answer.strip()


def probes(fact: Fact, form: str) -> list[Probe]:
    """All probes of `fact` in `form` (an empty list when the fact lacks that form)."""
    if form == "qa":
        return [Probe(fact.id, form, qa_prompt(fact.question), target(fact.answer))]
    if form == "paraphrase":
        return [Probe(fact.id, form, qa_prompt(q), target(fact.answer)) for q in fact.paraphrases]
    if form == "cloze":
        return [Probe(fact.id, form, fact.cloze.rstrip(), target(fact.answer))] if fact.cloze else []
    if form == "two_hop":
        return [Probe(fact.id, form, qa_prompt(t.question), target(t.answer)) for t in fact.two_hop]
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


def all_probes(facts: list[Fact], forms: tuple[str, ...] = FORMS) -> dict[str, list[Probe]]:
    """Probes of every fact, grouped by form."""
    return {form: [p for f in facts for p in probes(f, form)] for form in forms}
