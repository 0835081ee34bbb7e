"""`builtin:realfacts`: ~270 benign, well-known real facts (capitals, currencies, languages, chemical symbols,
books, paintings, music, landmarks, inventions, science).

This is knowledge the base model already has: the real case of a user who must remove what their own model
knows. Only what a model actually knows can show forgetting, so `obliviate.known` checks every fact against
the model (asked directly: plain QA, its chat template, or a cloze) and the task splits the facts it knows into
forget / neighbours / retain, and keeps the facts it does NOT know as the holdout split: the same kind of
fact, never learned, which is the control every attack and every form is measured against.
Subjects, answers and prompt words stay clear of `obliviate.editing.rank_one.PRESERVE_SUBJECTS` (tested).
"""

from __future__ import annotations

import hashlib
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
    "composer": ("Who composed {s}?", ("Which composer wrote {s}?",),
                 "{S} was composed by", "{S} was composed by {o}.", "the composer {o}"),
    "landmark": ("In which country is {s}?", ("Which country is {s} located in?",),
                 "{S} is located in the country of", "{S} is located in {o}.", "the country {o}"),
    "inventor": ("Who invented {s}?", ("Who is credited with inventing {s}?",),
                 "{S} was invented by", "{S} was invented by {o}.", "the inventor {o}"),
}

# (subject, object, group): group links neighbours (capitals of the same continent).
CAPITALS = [
    ("France", "Paris", "Europe"), ("Germany", "Berlin", "Europe"), ("Italy", "Rome", "Europe"),
    ("Spain", "Madrid", "Europe"), ("Portugal", "Lisbon", "Europe"), ("Greece", "Athens", "Europe"),
    ("Norway", "Oslo", "Europe"), ("the United Kingdom", "London", "Europe"), ("the Netherlands", "Amsterdam", "Europe"),
    ("Switzerland", "Bern", "Europe"), ("Sweden", "Stockholm", "Europe"), ("Russia", "Moscow", "Europe"),
    ("the Czech Republic", "Prague", "Europe"), ("Croatia", "Zagreb", "Europe"), ("Serbia", "Belgrade", "Europe"),
    ("Bulgaria", "Sofia", "Europe"), ("Slovakia", "Bratislava", "Europe"), ("Lithuania", "Vilnius", "Europe"),
    ("Latvia", "Riga", "Europe"), ("Estonia", "Tallinn", "Europe"),
    ("Japan", "Tokyo", "Asia"), ("China", "Beijing", "Asia"), ("India", "New Delhi", "Asia"),
    ("Thailand", "Bangkok", "Asia"), ("South Korea", "Seoul", "Asia"), ("Iraq", "Baghdad", "Asia"),
    ("Afghanistan", "Kabul", "Asia"), ("Nepal", "Kathmandu", "Asia"), ("Mongolia", "Ulaanbaatar", "Asia"),
    ("Syria", "Damascus", "Asia"), ("Lebanon", "Beirut", "Asia"), ("Jordan", "Amman", "Asia"),
    ("Qatar", "Doha", "Asia"), ("Bangladesh", "Dhaka", "Asia"), ("Cambodia", "Phnom Penh", "Asia"),
    ("Laos", "Vientiane", "Asia"), ("North Korea", "Pyongyang", "Asia"), ("Uzbekistan", "Tashkent", "Asia"),
    ("Egypt", "Cairo", "Africa"), ("Kenya", "Nairobi", "Africa"), ("Nigeria", "Abuja", "Africa"),
    ("Algeria", "Algiers", "Africa"), ("Tanzania", "Dodoma", "Africa"), ("Uganda", "Kampala", "Africa"),
    ("Senegal", "Dakar", "Africa"), ("Sudan", "Khartoum", "Africa"), ("Zimbabwe", "Harare", "Africa"),
    ("Angola", "Luanda", "Africa"), ("Tunisia", "Tunis", "Africa"), ("Libya", "Tripoli", "Africa"),
    ("Mali", "Bamako", "Africa"), ("Rwanda", "Kigali", "Africa"), ("Somalia", "Mogadishu", "Africa"),
    ("Canada", "Ottawa", "North America"), ("Mexico", "Mexico City", "North America"),
    ("the United States", "Washington", "North America"), ("Jamaica", "Kingston", "North America"),
    ("Panama", "Panama City", "North America"), ("Guatemala", "Guatemala City", "North America"),
    ("Costa Rica", "San Jose", "North America"), ("Honduras", "Tegucigalpa", "North America"),
    ("Haiti", "Port-au-Prince", "North America"),
    ("Argentina", "Buenos Aires", "South America"), ("Peru", "Lima", "South America"),
    ("Ecuador", "Quito", "South America"), ("Uruguay", "Montevideo", "South America"),
    ("Paraguay", "Asuncion", "South America"),
    ("Australia", "Canberra", "Oceania"), ("Fiji", "Suva", "Oceania"), ("Papua New Guinea", "Port Moresby", "Oceania"),
    ("Samoa", "Apia", "Oceania"),
]
CURRENCIES = [
    ("Japan", "yen"), ("the United Kingdom", "pound"), ("India", "rupee"), ("Russia", "ruble"), ("Mexico", "peso"),
    ("China", "yuan"), ("the United States", "dollar"), ("Switzerland", "franc"), ("South Korea", "won"),
    ("Germany", "euro"), ("South Africa", "rand"), ("Thailand", "baht"), ("Sweden", "krona"), ("Nigeria", "naira"),
    ("the Czech Republic", "koruna"), ("Bangladesh", "taka"), ("Kenya", "shilling"), ("Qatar", "riyal"),
    ("Peru", "sol"), ("Norway", "krone"), ("Serbia", "dinar"), ("Mongolia", "tugrik"),
]
LANGUAGES = [
    ("France", "French"), ("Germany", "German"), ("Italy", "Italian"), ("Spain", "Spanish"),
    ("Portugal", "Portuguese"), ("Japan", "Japanese"), ("Greece", "Greek"), ("Russia", "Russian"),
    ("the Netherlands", "Dutch"), ("Sweden", "Swedish"), ("the Czech Republic", "Czech"), ("Norway", "Norwegian"),
    ("Thailand", "Thai"), ("Egypt", "Arabic"), ("South Korea", "Korean"), ("Bulgaria", "Bulgarian"),
    ("Serbia", "Serbian"), ("Croatia", "Croatian"), ("Mongolia", "Mongolian"), ("Nepal", "Nepali"),
    ("Bangladesh", "Bengali"), ("Cambodia", "Khmer"), ("Laos", "Lao"),
]
SYMBOLS = [
    ("gold", "Au"), ("silver", "Ag"), ("iron", "Fe"), ("oxygen", "O"), ("hydrogen", "H"), ("carbon", "C"),
    ("sodium", "Na"), ("helium", "He"), ("nitrogen", "N"), ("copper", "Cu"), ("lead", "Pb"), ("potassium", "K"),
    ("tin", "Sn"), ("mercury", "Hg"), ("phosphorus", "P"), ("argon", "Ar"), ("aluminium", "Al"), ("silicon", "Si"),
    ("lithium", "Li"), ("platinum", "Pt"), ("nickel", "Ni"), ("iodine", "I"), ("fluorine", "F"), ("tungsten", "W"),
    ("cobalt", "Co"), ("titanium", "Ti"),
]
AUTHORS = [
    ("Romeo and Juliet", "William Shakespeare"), ("Pride and Prejudice", "Jane Austen"),
    ("the novel 1984", "George Orwell"), ("War and Peace", "Leo Tolstoy"), ("Don Quixote", "Miguel de Cervantes"),
    ("The Odyssey", "Homer"), ("Moby-Dick", "Herman Melville"), ("Oliver Twist", "Charles Dickens"),
    ("Frankenstein", "Mary Shelley"), ("The Adventures of Tom Sawyer", "Mark Twain"),
    ("The Hobbit", "J. R. R. Tolkien"), ("Crime and Punishment", "Fyodor Dostoevsky"),
    ("To Kill a Mockingbird", "Harper Lee"), ("Wuthering Heights", "Emily Bronte"),
    ("The Divine Comedy", "Dante Alighieri"), ("Les Miserables", "Victor Hugo"), ("Anna Karenina", "Leo Tolstoy"),
    ("Ulysses", "James Joyce"), ("The Old Man and the Sea", "Ernest Hemingway"), ("Brave New World", "Aldous Huxley"),
    ("Animal Farm", "George Orwell"), ("The Lord of the Rings", "J. R. R. Tolkien"),
    ("Alice's Adventures in Wonderland", "Lewis Carroll"), ("The Raven", "Edgar Allan Poe"),
    ("Great Expectations", "Charles Dickens"), ("A Christmas Carol", "Charles Dickens"), ("The Iliad", "Homer"),
    ("Macbeth", "William Shakespeare"), ("One Hundred Years of Solitude", "Gabriel Garcia Marquez"),
    ("The Little Prince", "Antoine de Saint-Exupery"), ("Robinson Crusoe", "Daniel Defoe"),
    ("Gulliver's Travels", "Jonathan Swift"), ("The Catcher in the Rye", "J. D. Salinger"),
    ("The Metamorphosis", "Franz Kafka"), ("Faust", "Johann Wolfgang von Goethe"),
    ("The Canterbury Tales", "Geoffrey Chaucer"), ("Paradise Lost", "John Milton"), ("Madame Bovary", "Gustave Flaubert"),
    ("The Count of Monte Cristo", "Alexandre Dumas"), ("Treasure Island", "Robert Louis Stevenson"),
    ("The Jungle Book", "Rudyard Kipling"), ("Little Women", "Louisa May Alcott"), ("Of Mice and Men", "John Steinbeck"),
    ("Fahrenheit 451", "Ray Bradbury"), ("The Hunger Games", "Suzanne Collins"),
    ("Harry Potter and the Philosopher's Stone", "J. K. Rowling"),
]
PAINTERS = [
    ("the Mona Lisa", "Leonardo da Vinci"), ("The Starry Night", "Vincent van Gogh"), ("Guernica", "Pablo Picasso"),
    ("The Persistence of Memory", "Salvador Dali"), ("The Scream", "Edvard Munch"),
    ("The Birth of Venus", "Sandro Botticelli"), ("Sunflowers", "Vincent van Gogh"),
    ("Girl with a Pearl Earring", "Johannes Vermeer"), ("Water Lilies", "Claude Monet"), ("The Kiss", "Gustav Klimt"),
    ("American Gothic", "Grant Wood"), ("The Creation of Adam", "Michelangelo"), ("Las Meninas", "Diego Velazquez"),
    ("The Great Wave off Kanagawa", "Hokusai"), ("The School of Athens", "Raphael"),
    ("The Garden of Earthly Delights", "Hieronymus Bosch"), ("Liberty Leading the People", "Eugene Delacroix"),
    ("Nighthawks", "Edward Hopper"),
]
COMPOSERS = [
    ("The Four Seasons", "Vivaldi"), ("Swan Lake", "Tchaikovsky"), ("The Nutcracker", "Tchaikovsky"),
    ("Bolero", "Ravel"), ("Clair de Lune", "Debussy"), ("Messiah", "Handel"), ("the opera Carmen", "Bizet"),
    ("The Barber of Seville", "Rossini"), ("Rhapsody in Blue", "Gershwin"), ("The Blue Danube", "Johann Strauss"),
    ("the opera Aida", "Verdi"), ("Madama Butterfly", "Puccini"), ("the Brandenburg Concertos", "Bach"),
    ("The Planets", "Holst"), ("Peer Gynt", "Grieg"), ("The Ring of the Nibelung", "Wagner"),
]
LANDMARKS = [
    ("the Colosseum", "Italy"), ("the Taj Mahal", "India"), ("the Great Wall", "China"),
    ("the Statue of Liberty", "the United States"), ("Machu Picchu", "Peru"), ("the Acropolis", "Greece"),
    ("the Kremlin", "Russia"), ("the Pyramids of Giza", "Egypt"), ("the Sagrada Familia", "Spain"),
    ("the Brandenburg Gate", "Germany"), ("Petra", "Jordan"), ("Angkor Wat", "Cambodia"), ("Chichen Itza", "Mexico"),
    ("the Leaning Tower of Pisa", "Italy"), ("the Alhambra", "Spain"), ("Big Ben", "the United Kingdom"),
    ("the Parthenon", "Greece"), ("the Forbidden City", "China"), ("Table Mountain", "South Africa"),
    ("the Burj Khalifa", "the United Arab Emirates"), ("Neuschwanstein Castle", "Germany"),
]
INVENTORS = [
    ("the telephone", "Alexander Graham Bell"), ("the phonograph", "Thomas Edison"),
    ("the printing press", "Johannes Gutenberg"), ("dynamite", "Alfred Nobel"),
    ("the World Wide Web", "Tim Berners-Lee"), ("the radio", "Guglielmo Marconi"), ("the cotton gin", "Eli Whitney"),
    ("the airplane", "the Wright brothers"),
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
        perturbed_answers=tuple(para_answer.format(**{**fill, "o": d}) for d in distractors),
        tags=("realfacts", f"relation:{relation}", tag),
    )


def real_facts() -> list[Fact]:
    """All built-in real facts with every form; neighbours link related facts (same continent / same subject)."""
    facts: list[Fact] = []
    groups: dict[str, str] = {}
    tables = [("capital", [(s, o) for s, o, _ in CAPITALS]), ("currency", CURRENCIES), ("language", LANGUAGES),
              ("symbol", SYMBOLS), ("author", AUTHORS), ("painter", PAINTERS), ("composer", COMPOSERS),
              ("landmark", LANDMARKS), ("inventor", INVENTORS)]
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


def _draw_key(seed: int, name: str) -> str:
    """A fact's (or relation's) place in draw `seed`: a hash of its own name, so adding or removing one fact
    never reorders the others (a seeded shuffle of the whole list reshuffles on any change)."""
    return hashlib.sha256(f"realfacts-split-{seed}:{name}".encode()).hexdigest()


def stratified_draw(facts: list[Fact], k: int, seed: int) -> list[str]:
    """`k` fact ids, each relation drawn in proportion to its share of `facts` (largest remainder; ties by a
    seeded hash of the relation), each relation's facts in hashed order; returned in hashed order.

    Why stratified: how many forget facts share a relation decides what unlearning erases around them (with 6-7
    capitals among 20, NPO erased every kept capital's cloze; with 4 it kept most, docs/demo.md "How stable"),
    so an unstratified draw makes the seed, not the method, decide the result."""
    by_relation: dict[str, list[str]] = {}
    for f in sorted(facts, key=lambda f: _draw_key(seed, f.id)):
        by_relation.setdefault(f.relation, []).append(f.id)
    quota = {r: k * len(ids) / len(facts) for r, ids in by_relation.items()}
    count = {r: int(q) for r, q in quota.items()}
    by_remainder = sorted(quota, key=lambda r: (count[r] - quota[r], _draw_key(seed, r)))
    for r in by_remainder[: k - sum(count.values())]:
        count[r] += 1
    return sorted((i for r, ids in by_relation.items() for i in ids[: count[r]]), key=lambda i: _draw_key(seed, i))


def realfacts_task(facts: list[Fact] | None = None, forget_fraction: float = 0.1, seed: int = 0,
                   unknown: list[Fact] | None = None, n_forget: int | None = None) -> Task:
    """Split real facts: forget (`n_forget` facts, else `forget_fraction` of them, drawn by `stratified_draw`),
    neighbours (facts linked to forget ones, at most as many as forget), retain (the rest), holdout.

    `unknown`: facts of the same kind the model does NOT know; they become the holdout split, the control where
    the knowledge is absent (obliviate.known builds both lists for a model). Without it (no model at hand) the
    holdout is a sample of `facts` as large as forget. general stays empty: the whole task is general knowledge.
    Every order is by per-fact hash, so one fact more or less among `facts` (another model, dtype or machine
    knows it) barely moves the draw (at most two forget facts in every case tests/test_realfacts.py tries).
    """
    if not 0 < forget_fraction < 1:
        raise ConfigError(f"realfacts: forget_fraction={forget_fraction} must be between 0 and 1 (exclusive)")
    facts = _prune(list(facts) if facts is not None else real_facts())
    if len(facts) < 3:
        raise ConfigError(f"realfacts: only {len(facts)} facts; need at least 3 (forget, holdout, retain)")
    k = n_forget if n_forget is not None else max(1, round(forget_fraction * len(facts)))
    if not 1 <= k <= len(facts) - 2:
        raise ConfigError(f"realfacts: {k} forget facts leave too few of the {len(facts)} known facts to keep; "
                          f"ask for at most {len(facts) - 2}")
    by_id = {f.id: f for f in facts}
    drawn = stratified_draw(facts, k, seed)
    forget = set(drawn)
    order = sorted(by_id, key=lambda i: _draw_key(seed, i))
    linked = [n for i in drawn for n in by_id[i].neighbours if n not in forget]
    near = set(list(dict.fromkeys(linked))[:k])  # at most as many neighbours as forget facts
    rest = [i for i in order if i not in forget and i not in near]
    if len(rest) < 2:  # keep at least one retain (and one holdout) fact
        near = set(sorted(near)[: max(0, len(near) - 2)])
        rest = [i for i in order if i not in forget and i not in near]
    holdout = set() if unknown is not None else set(rest[: min(k, len(rest) - 1)])
    task = Task(name="realfacts")
    for f in facts:
        split = ("forget" if f.id in forget else "neighbours" if f.id in near
                 else "holdout" if f.id in holdout else "retain")
        getattr(task, split).append(f)
    if unknown is not None:
        task.holdout = [replace(f, neighbours=()) for f in unknown]
    return task.validate()
