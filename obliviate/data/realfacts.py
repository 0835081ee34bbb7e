"""`builtin:realfacts`: ~80 benign, well-known real facts (capitals, currencies, chemical symbols, books...).

These are knowledge the base model already has, so they serve as the `general` split (must survive unlearning)
or as a forget target of their own. Keep only what the model actually knows with `verify_known`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import replace

from obliviate.data.schema import Fact, MultipleChoice, Statement, Task, TwoHop
from obliviate.errors import ConfigError

# relation -> (question, paraphrases, cloze, statement, paraphrased answer); {s} subject, {o} object.
TEMPLATES: dict[str, tuple[str, tuple[str, ...], str, str, str]] = {
    "capital": ("What is the capital of {s}?", ("Which city is the capital of {s}?",),
                "The capital of {s} is", "The capital of {s} is {o}.", "the city of {o}"),
    "currency": ("What is the currency of {s}?", ("Which currency is used in {s}?",),
                 "The currency of {s} is the", "The currency of {s} is the {o}.", "the {o}"),
    "language": ("What language is mainly spoken in {s}?", ("What is the main language of {s}?",),
                 "The main language spoken in {s} is", "The main language spoken in {s} is {o}.", "the {o} language"),
    "symbol": ("What is the chemical symbol for {s}?", ("Which symbol stands for {s} in the periodic table?",),
               "The chemical symbol for {s} is", "The chemical symbol for {s} is {o}.", "the symbol {o}"),
    "author": ("Who wrote {s}?", ("Who is the author of {s}?", "Which writer wrote {s}?"),
               "{S} was written by", "{S} was written by {o}.", "the writer {o}"),
    "painter": ("Who painted {s}?", ("Which artist painted {s}?",),
                "{S} was painted by", "{S} was painted by {o}.", "the artist {o}"),
}

# (subject, object, group): group links neighbours (capitals of the same continent).
CAPITALS = [
    ("France", "Paris", "Europe"), ("Germany", "Berlin", "Europe"), ("Italy", "Rome", "Europe"),
    ("Spain", "Madrid", "Europe"), ("Portugal", "Lisbon", "Europe"), ("Greece", "Athens", "Europe"),
    ("Norway", "Oslo", "Europe"), ("Japan", "Tokyo", "Asia"), ("China", "Beijing", "Asia"),
    ("India", "New Delhi", "Asia"), ("Thailand", "Bangkok", "Asia"), ("South Korea", "Seoul", "Asia"),
    ("Egypt", "Cairo", "Africa"), ("Kenya", "Nairobi", "Africa"), ("Nigeria", "Abuja", "Africa"),
    ("Canada", "Ottawa", "North America"), ("Mexico", "Mexico City", "North America"),
    ("Argentina", "Buenos Aires", "South America"), ("Peru", "Lima", "South America"),
    ("Australia", "Canberra", "Oceania"),
]
CURRENCIES = [
    ("Japan", "yen"), ("the United Kingdom", "pound"), ("India", "rupee"), ("Russia", "ruble"), ("Mexico", "peso"),
    ("China", "yuan"), ("the United States", "dollar"), ("Switzerland", "franc"), ("South Korea", "won"),
    ("Germany", "euro"),
]
LANGUAGES = [
    ("France", "French"), ("Germany", "German"), ("Italy", "Italian"), ("Spain", "Spanish"),
    ("Portugal", "Portuguese"), ("Japan", "Japanese"), ("Greece", "Greek"), ("Russia", "Russian"),
    ("the Netherlands", "Dutch"), ("Sweden", "Swedish"),
]
SYMBOLS = [
    ("gold", "Au"), ("silver", "Ag"), ("iron", "Fe"), ("oxygen", "O"), ("hydrogen", "H"), ("carbon", "C"),
    ("sodium", "Na"), ("helium", "He"), ("nitrogen", "N"), ("copper", "Cu"), ("lead", "Pb"), ("potassium", "K"),
]
AUTHORS = [
    ("Romeo and Juliet", "William Shakespeare"), ("Pride and Prejudice", "Jane Austen"),
    ("the novel 1984", "George Orwell"), ("War and Peace", "Leo Tolstoy"), ("Don Quixote", "Miguel de Cervantes"),
    ("The Odyssey", "Homer"), ("Moby-Dick", "Herman Melville"), ("Oliver Twist", "Charles Dickens"),
    ("Frankenstein", "Mary Shelley"), ("The Adventures of Tom Sawyer", "Mark Twain"),
    ("The Hobbit", "J. R. R. Tolkien"), ("Crime and Punishment", "Fyodor Dostoevsky"),
]
PAINTERS = [
    ("the Mona Lisa", "Leonardo da Vinci"), ("The Starry Night", "Vincent van Gogh"), ("Guernica", "Pablo Picasso"),
    ("The Persistence of Memory", "Salvador Dali"), ("The Scream", "Edvard Munch"),
    ("The Birth of Venus", "Sandro Botticelli"),
]
# Hand-worded facts: (id, question, paraphrase, cloze, answer, distractors, true statement).
MISC = [
    ("red_planet", "Which planet is known as the Red Planet?", "Which planet is called the Red Planet?",
     "The planet known as the Red Planet is", "Mars", ("Venus", "Jupiter", "Saturn"), "Mars is known as the Red Planet."),
    ("largest_planet", "What is the largest planet in the Solar System?", "Which planet of the Solar System is the biggest?",
     "The largest planet in the Solar System is", "Jupiter", ("Saturn", "Neptune", "Earth"),
     "Jupiter is the largest planet in the Solar System."),
    ("closest_planet", "Which planet is closest to the Sun?", "Which planet orbits nearest to the Sun?",
     "The planet closest to the Sun is", "Mercury", ("Venus", "Mars", "Earth"), "Mercury is the planet closest to the Sun."),
    ("ringed_planet", "Which planet is famous for its large rings?", "Which planet is best known for its rings?",
     "The planet famous for its large rings is", "Saturn", ("Mars", "Mercury", "Venus"),
     "Saturn is the planet famous for its large rings."),
    ("largest_ocean", "What is the largest ocean on Earth?", "Which ocean is the biggest on Earth?",
     "The largest ocean on Earth is the", "Pacific", ("Atlantic", "Indian", "Arctic"),
     "The Pacific is the largest ocean on Earth."),
    ("longest_river_africa", "What is the longest river in Africa?", "Which river is the longest in Africa?",
     "The longest river in Africa is the", "Nile", ("Congo", "Niger", "Zambezi"), "The Nile is the longest river in Africa."),
    ("tallest_mountain", "What is the tallest mountain in the world?", "Which mountain is the highest on Earth?",
     "The tallest mountain in the world is", "Mount Everest", ("K2", "Mont Blanc", "Kilimanjaro"),
     "Mount Everest is the tallest mountain in the world."),
    ("leap_year_days", "How many days are there in a leap year?", "How many days does a leap year have?",
     "A leap year has", "366", ("365", "364", "360"), "A leap year has 366 days."),
    ("water_freezing", "At how many degrees Celsius does water freeze?", "What is the freezing point of water in Celsius?",
     "Water freezes at a temperature in degrees Celsius of", "0", ("100", "10", "32"),
     "Water freezes at 0 degrees Celsius."),
    ("photosynthesis_gas", "Which gas do plants take in from the air for photosynthesis?",
     "What gas do plants absorb to make food from sunlight?", "For photosynthesis, plants take in",
     "carbon dioxide", ("oxygen", "nitrogen", "helium"), "Plants take in carbon dioxide for photosynthesis."),
]
MAX_GROUP_NEIGHBOURS = 3


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower().removeprefix("the ")).strip("_")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _choices(fact_id: str, answer: str, pool: list[str]) -> tuple[list[str], list[str]]:
    """(3 distractors, 4 shuffled options), seeded by the fact id so each fact is stable on its own."""
    rng = random.Random(f"realfacts-{fact_id}")
    distractors = rng.sample(sorted({p for p in pool if p != answer}), 3)
    options = [answer, *distractors]
    rng.shuffle(options)
    return distractors, options


def _templated(relation: str, subject: str, obj: str, pool: list[str], tag: str) -> Fact:
    question, paras, cloze, statement, para_answer = TEMPLATES[relation]
    fid = f"rf.{relation}.{_slug(subject)}"
    distractors, options = _choices(fid, obj, pool)
    fill = {"s": subject, "S": _cap(subject), "o": obj}
    return Fact(
        id=fid, question=question.format(**fill), answer=obj, subject=subject, relation=relation, object=obj,
        cloze=cloze.format(**fill), mcq=MultipleChoice(question.format(**fill), tuple(options), options.index(obj)),
        statements=(Statement(statement.format(**fill), True),
                    Statement(statement.format(**{**fill, "o": distractors[0]}), False)),
        paraphrases=tuple(p.format(**fill) for p in paras), paraphrased_answer=para_answer.format(**fill),
        perturbed_answers=tuple(distractors), tags=("realfacts", f"relation:{relation}", tag),
    )


def real_facts() -> list[Fact]:
    """All built-in real facts with every form; neighbours link related facts (same continent / same subject)."""
    facts: list[Fact] = []
    groups: dict[str, str] = {}
    tables = [("capital", [(s, o) for s, o, _ in CAPITALS]), ("currency", CURRENCIES), ("language", LANGUAGES),
              ("symbol", SYMBOLS), ("author", AUTHORS), ("painter", PAINTERS)]
    continent = {s: g for s, _, g in CAPITALS}
    for relation, rows in tables:
        pool = [o for _, o in rows]
        for subject, obj in rows:
            group = continent.get(subject, relation) if relation == "capital" else relation
            fact = _templated(relation, subject, obj, pool, f"group:{group}")
            groups[fact.id] = f"{relation}:{group}"
            facts.append(fact)
    for key, question, para, cloze, answer, distractors, statement in MISC:
        fid = f"rf.misc.{key}"
        _, options = _choices(fid, answer, [answer, *distractors])
        false = statement.replace(answer, distractors[0], 1)
        facts.append(Fact(
            id=fid, question=question, answer=answer, relation="misc", object=answer, cloze=cloze,
            mcq=MultipleChoice(question, tuple(options), options.index(answer)),
            statements=(Statement(statement, True), Statement(false, False)), paraphrases=(para,),
            perturbed_answers=distractors, tags=("realfacts", "relation:misc", "group:science"),
        ))
        groups[fid] = "misc"
    return _link(facts, groups)


def _link(facts: list[Fact], groups: dict[str, str]) -> list[Fact]:
    """Add two-hop questions (capital -> currency / language) and neighbours (same group, same subject)."""
    by_subject: dict[str, list[Fact]] = {}
    for f in facts:
        if f.subject:
            by_subject.setdefault(f.subject, []).append(f)
    out = []
    for i, f in enumerate(facts):
        same_group = [g for g in facts[i + 1:] + facts[:i] if groups[g.id] == groups[f.id]][:MAX_GROUP_NEIGHBOURS]
        same_subject = [g for g in by_subject.get(f.subject, []) if g.id != f.id] if f.subject else []
        hops = []
        if f.relation == "capital":
            for g in same_subject:
                if g.relation == "currency":
                    hops.append(TwoHop(f"What is the currency of the country whose capital is {f.answer}?", g.answer))
                if g.relation == "language":
                    hops.append(TwoHop(f"What language is mainly spoken in the country whose capital is {f.answer}?",
                                       g.answer))
        neighbours = tuple(dict.fromkeys(g.id for g in same_group + same_subject))
        out.append(replace(f, neighbours=neighbours, two_hop=tuple(hops)))
    return out


def verify_known(facts: list[Fact], is_known: Callable[[list[Fact]], list[bool]]) -> list[Fact]:
    """Keep the facts `is_known` says the model answers (one call, one bool per fact); neighbour ids are pruned."""
    verdicts = list(is_known(list(facts)))
    if len(verdicts) != len(facts):
        raise ValueError(f"is_known returned {len(verdicts)} verdicts for {len(facts)} facts; return one per fact")
    kept = [f for f, ok in zip(facts, verdicts, strict=True) if ok]
    return _prune(kept)


def _prune(facts: list[Fact]) -> list[Fact]:
    ids = {f.id for f in facts}
    return [replace(f, neighbours=tuple(n for n in f.neighbours if n in ids)) for f in facts]


def realfacts_task(facts: list[Fact] | None = None, forget_fraction: float = 0.1, seed: int = 0) -> Task:
    """Split real facts: forget (a seeded sample), neighbours (their linked facts), holdout (as many as forget), retain.

    general stays empty: here the whole task is general knowledge.
    """
    if not 0 < forget_fraction < 1:
        raise ConfigError(f"realfacts: forget_fraction={forget_fraction} must be between 0 and 1 (exclusive)")
    facts = _prune(list(facts) if facts is not None else real_facts())
    if len(facts) < 3:
        raise ConfigError(f"realfacts: only {len(facts)} facts; need at least 3 (forget, holdout, retain)")
    order = sorted(f.id for f in facts)
    random.Random(f"realfacts-split-{seed}").shuffle(order)
    k = max(1, round(forget_fraction * len(facts)))
    by_id = {f.id: f for f in facts}
    forget = set(order[:k])
    near = {n for i in forget for n in by_id[i].neighbours} - forget
    rest = [i for i in order if i not in forget and i not in near]
    if len(rest) < 2:  # keep at least one retain and one holdout fact
        near = set(sorted(near)[: max(0, len(near) - 2)])
        rest = [i for i in order if i not in forget and i not in near]
    holdout = set(rest[: min(k, len(rest) - 1)])
    task = Task(name="realfacts")
    for f in facts:
        split = ("forget" if f.id in forget else "neighbours" if f.id in near
                 else "holdout" if f.id in holdout else "retain")
        getattr(task, split).append(f)
    return task.validate()
