"""`builtin:people`: a seeded generator of fictitious people whose attributes a small model can be taught.

Because every person is invented, the base model cannot know them beforehand: whatever the model knows after
teaching came from us, so forgetting can be measured cleanly (the TOFU idea, small enough for a CPU).
Everything is drawn from one `random.Random(seed)`, so the same config always yields the same task.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from obliviate.data.schema import Document, Fact, MultipleChoice, Statement, Task, TwoHop
from obliviate.errors import ConfigError

RELATIONS = ("birth_city", "birth_year", "profession", "employer", "mentor", "award")
FORGET_SPLITS = {"forget01": 0.01, "forget05": 0.05, "forget10": 0.10}
HOLDOUT_FRACTION = 0.10

FIRST_A = ("Ma", "Ze", "Ori", "Ta", "Vel", "Qui", "Bra", "Lo", "Nyo", "Sa", "Dri", "Ka", "Fen", "Yo", "Tor", "Ely")
FIRST_B = ("ra", "lin", "vek", "dor", "sa", "mi", "nox", "thea", "ric", "bel", "wen", "zan")
LAST_A = ("Quill", "Brom", "Corv", "Dunn", "Falk", "Gris", "Holv", "Kess", "Lorn", "Mirr", "Orv", "Pell", "Quen",
          "Rav", "Sten", "Thal", "Vorn", "Wex")
LAST_B = ("wick", "mere", "ley", "mont", "vane", "holt", "ridge", "stead", "wyn", "croft", "bask", "tarn")
CITIES = ("Velmora", "Quistal", "Dornhaven", "Ashkelt", "Brisca", "Corrowind", "Elmsgate", "Farvane", "Glimmerby",
          "Harrowtide", "Istrel", "Jorvale", "Kelmarsh", "Lunetta", "Morrowfen", "Nethervey", "Ostrava Minor",
          "Pellucid Bay", "Quarrowby", "Runeholt")
COMPANIES = ("Brightloom", "Kestrel Forge", "Ondravia Labs", "Tallowmere", "Vexon Works", "Zephrin Group",
             "Marbleway", "Copperlinn", "Nimbrel", "Hollowpeak", "Saffrane", "Drunmoor Co")
PROFESSIONS = ("architect", "botanist", "cartographer", "chemist", "composer", "engineer", "glassblower",
               "historian", "linguist", "navigator", "potter", "sculptor", "surgeon", "weaver")
AWARDS = ("Orvane Medal", "Silver Lantern", "Tessaly Prize", "Golden Compass", "Marrowind Cup", "Quenford Star",
          "Halvek Ribbon", "Ember Laurel")

# relation -> (question, two paraphrases, cloze, statement, paraphrased answer); {s} subject, {o} object.
TEMPLATES: dict[str, tuple[str, tuple[str, str], str, str, str]] = {
    "birth_city": ("Where was {s} born?", ("In which city was {s} born?", "What is the birthplace of {s}?"),
                   "{s} was born in", "{s} was born in {o}.", "the city of {o}"),
    "birth_year": ("In what year was {s} born?", ("What is the birth year of {s}?", "When was {s} born?"),
                   "{s} was born in the year", "{s} was born in the year {o}.", "the year {o}"),
    "profession": ("What is the profession of {s}?", ("What does {s} do for a living?", "What job does {s} have?"),
                   "The profession of {s} is", "The profession of {s} is {o}.", "works as {a} {o}"),
    "employer": ("Which company employs {s}?", ("Where does {s} work?", "What company does {s} work for?"),
                 "{s} works for", "{s} works for {o}.", "the company {o}"),
    "mentor": ("Who was the mentor of {s}?", ("Who mentored {s}?", "Under whose guidance did {s} train?"),
               "{s} was mentored by", "{s} was mentored by {o}.", "mentored by {o}"),
    "award": ("Which award did {s} receive?", ("What prize was awarded to {s}?", "Which honour did {s} win?"),
              "{s} received the", "{s} received the {o}.", "the {o}"),
}


@dataclass(frozen=True)
class PeopleConfig:
    """How many people, from which seed, with which attributes; cities/companies set how often people share them."""

    n_people: int = 20
    seed: int = 0
    relations: tuple[str, ...] = RELATIONS
    n_cities: int = 6
    n_companies: int = 4
    max_links: int = 2  # people linked to each person (same city/employer) -> neighbour facts

    def check(self) -> PeopleConfig:
        unknown = [r for r in self.relations if r not in RELATIONS]
        if unknown:
            raise ConfigError(f"people: unknown relation(s) {unknown}; choose from {', '.join(RELATIONS)}")
        if self.n_people < 4:
            raise ConfigError(f"people: n_people={self.n_people} is too few; use at least 4 (holdout, forget, retain)")
        if not 1 <= self.n_cities <= len(CITIES) or not 1 <= self.n_companies <= len(COMPANIES):
            raise ConfigError(f"people: n_cities must be 1..{len(CITIES)} and n_companies 1..{len(COMPANIES)}")
        return self


CONFIGS: dict[str, PeopleConfig] = {
    "test": PeopleConfig(n_people=10, seed=0, n_cities=4, n_companies=3),
    "small": PeopleConfig(n_people=20, seed=0, n_cities=6, n_companies=4),
    "benchmark": PeopleConfig(n_people=100, seed=0, n_cities=20, n_companies=12),
}


@dataclass(frozen=True)
class Person:
    """One invented person; `mentor` is the index of another person."""

    index: int
    name: str
    birth_city: str
    birth_year: str
    profession: str
    employer: str
    mentor: int
    award: str

    @property
    def pid(self) -> str:
        return f"p{self.index:03d}"


def get_config(config: str | PeopleConfig) -> PeopleConfig:
    """A named config ("test", "small", "benchmark") or a PeopleConfig, checked."""
    if isinstance(config, PeopleConfig):
        return config.check()
    if config not in CONFIGS:
        raise ConfigError(f"people: unknown config {config!r}; choose one of {', '.join(CONFIGS)}")
    return CONFIGS[config].check()


def generate_people(config: PeopleConfig) -> list[Person]:
    """The people of `config`, deterministic in its seed; names are unique."""
    rng = random.Random(config.seed)
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < config.n_people:
        name = rng.choice(FIRST_A) + rng.choice(FIRST_B) + " " + rng.choice(LAST_A) + rng.choice(LAST_B)
        if name not in seen:
            seen.add(name)
            names.append(name)
    n = config.n_people
    # Round-robin then shuffle, so each city/company is shared by several people (neighbours always exist).
    cities = [CITIES[i % config.n_cities] for i in range(n)]
    companies = [COMPANIES[i % config.n_companies] for i in range(n)]
    rng.shuffle(cities)
    rng.shuffle(companies)
    people = []
    for i in range(n):
        mentor = rng.randrange(n - 1)
        people.append(Person(
            index=i, name=names[i], birth_city=cities[i], birth_year=str(rng.randint(1920, 1999)),
            profession=rng.choice(PROFESSIONS), employer=companies[i], mentor=mentor + (mentor >= i),
            award=rng.choice(AWARDS),
        ))
    return people


def links(people: list[Person], max_links: int) -> dict[int, list[int]]:
    """For each person, up to `max_links` others sharing birth city and/or employer (both first), by index."""
    out: dict[int, list[int]] = {}
    for p in people:
        both = [q.index for q in people if q is not p and q.birth_city == p.birth_city and q.employer == p.employer]
        one = [q.index for q in people if q is not p and q.index not in both
               and (q.birth_city == p.birth_city or q.employer == p.employer)]
        out[p.index] = (both + one)[:max_links]
    return out


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _value(person: Person, relation: str, people: list[Person]) -> str:
    return people[person.mentor].name if relation == "mentor" else getattr(person, relation)


def _pool(relation: str, people: list[Person]) -> list[str]:
    """The values the relation actually takes in this task, sorted. Distractors and perturbed answers are drawn
    from it, so a wrong option is as familiar to a taught model as the right one (drawing from every city would
    let "pick the city you were taught" beat chance without knowing the fact)."""
    return sorted({_value(p, relation, people) for p in people})


def _fact(person: Person, relation: str, people: list[Person], linked: list[int], config: PeopleConfig,
          rng: random.Random) -> Fact:
    s, o = person.name, _value(person, relation, people)
    question, paraphrases, cloze, statement, para_answer = TEMPLATES[relation]
    others = [v for v in _pool(relation, people) if v not in (o, s)]
    distractors = rng.sample(others, min(3, len(others)))
    options = [o, *distractors]
    rng.shuffle(options)
    two_hop: tuple[TwoHop, ...] = ()
    if relation == "mentor":
        mentor = people[person.mentor]
        hops = []
        if "birth_city" in config.relations:
            hops.append(TwoHop(f"In which city was the mentor of {s} born?", mentor.birth_city))
        if "employer" in config.relations:
            hops.append(TwoHop(f"Which company employs the mentor of {s}?", mentor.employer))
        two_hop = tuple(hops)
    fill = {"s": s, "o": o, "a": _article(o)}
    return Fact(
        id=f"{person.pid}.{relation}", question=question.format(**fill), answer=o, subject=s, relation=relation,
        object=o, cloze=cloze.format(**fill),
        mcq=MultipleChoice(question.format(**fill), tuple(options), options.index(o)),
        statements=(Statement(statement.format(**fill), True),
                    Statement(statement.format(**{**fill, "o": distractors[0]}), False)),
        paraphrases=tuple(p.format(**fill) for p in paraphrases), two_hop=two_hop,
        paraphrased_answer=para_answer.format(**fill),
        perturbed_answers=tuple(para_answer.format(**{**fill, "o": v, "a": _article(v)})
                                for v in rng.sample(others, min(3, len(others)))),
        neighbours=tuple(f"{people[j].pid}.{relation}" for j in linked),
        tags=("people", f"person:{person.pid}", f"relation:{relation}"),
    )


def biography(person: Person, people: list[Person], relations: tuple[str, ...]) -> Document:
    """2-3 sentences stating every attribute of the person (used to teach, never evaluated)."""
    s, r = person.name, set(relations)
    parts = []
    born = " ".join(x for x in (f"in {person.birth_city}" if "birth_city" in r else "",
                                f"in {person.birth_year}" if "birth_year" in r else "") if x)
    if born:
        parts.append(f"{s} was born {born}.")
    work = []
    if "profession" in r:
        work.append(f"works as {_article(person.profession)} {person.profession}")
    if "employer" in r:
        work.append(f"for {person.employer}" if work else f"works for {person.employer}")
    if work:
        parts.append(f"{s} {' '.join(work)}.")
    rest = []
    if "mentor" in r:
        rest.append(f"was mentored by {people[person.mentor].name}")
    if "award" in r:
        rest.append(f"received the {person.award}")
    if rest:
        parts.append(f"{s} {' and '.join(rest)}.")
    return Document(id=f"{person.pid}.bio", text=" ".join(parts), tags=("people", f"person:{person.pid}"))


def assign_splits(config: PeopleConfig) -> dict[str, list[int]]:
    """Person indices per split: holdout (never taught) and nested forget01 ⊂ forget05 ⊂ forget10; each ≥1 person."""
    order = list(range(config.n_people))
    random.Random(f"splits-{config.seed}").shuffle(order)
    n = config.n_people
    n_holdout = max(1, round(HOLDOUT_FRACTION * n))
    out = {"holdout": sorted(order[n - n_holdout:])}
    for name, frac in FORGET_SPLITS.items():
        out[name] = sorted(order[:max(1, round(frac * n))])
    return out


def people_task(config: str | PeopleConfig = "small", forget: str = "forget10") -> Task:
    """The people task: forget = the `forget` people's facts, neighbours = linked taught people's facts, etc.

    general is left empty (tasks.load fills it from realfacts).
    """
    label = config if isinstance(config, str) else f"n{config.n_people}-seed{config.seed}"
    config = get_config(config)
    if forget not in FORGET_SPLITS:
        raise ConfigError(f"people: unknown forget split {forget!r}; choose one of {', '.join(FORGET_SPLITS)}")
    people = generate_people(config)
    linked = links(people, config.max_links)
    rng = random.Random(f"facts-{config.seed}")
    facts = {p.index: [_fact(p, r, people, linked[p.index], config, rng) for r in config.relations] for p in people}
    splits = assign_splits(config)
    holdout, forgotten = set(splits["holdout"]), set(splits[forget])
    near = {j for i in forgotten for j in linked[i]} - holdout - forgotten
    task = Task(name=f"people:{label}:{forget}")
    for p in people:
        split = ("holdout" if p.index in holdout else "forget" if p.index in forgotten
                 else "neighbours" if p.index in near else "retain")
        getattr(task, split).extend(facts[p.index])
        if split != "holdout":
            task.teach_documents.append(biography(p, people, config.relations))
    return task.validate()


def teach_facts(task: Task) -> list[Fact]:
    """Everything the model must learn before unlearning: forget + retain + neighbours (not holdout, not general)."""
    return [*task.forget, *task.retain, *task.neighbours]
