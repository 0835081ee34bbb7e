"""Forget a target named by the user (the RWKU setting, Jin et al. 2024, arXiv:2406.10890): build the task from
the model itself.

RWKU gives only the target's name and the original model: the forget corpus is what the model itself writes
about the target, and the probes are checked against what the model answers. Here, for a name:
1. kind: what the model takes the name to be ("<name> is" + a person / a country / a city / a painting ...);
2. forget facts: a bank of questions for that kind, each asked through the chat template (greedy and sampled)
   and as a fill-in-the-blank cloze; a fact is kept only where the model is consistent: the longest tail of
   the cloze's answer phrase that the greedy chat reply also states, found in `agree` of the sampled replies
   too. The answer is the model's own (it may be wrong; it is what the model would tell a user);
3. the forget corpus: the model's descriptions of the target (greedy and sampled), as forget documents;
4. adversarial rewrites of every question (RWKU's role-play, background-hint, in-context and synonym attack
   types) as its paraphrases, so the card's `rwku` metric asks all three RWKU probe kinds (FB, QA, AA);
5. neighbours: names in its own descriptions and in its answers (or the user's list), built the same way,
   topped up to `neighbour_facts` with builtin real facts it knows of the same kind about other subjects
   (other countries' capitals for a country; who wrote, painted, composed or invented what for a person);
6. retain / holdout: the builtin real facts the model answers / does not answer (the control).
A target the model gives fewer than `min_facts` consistent answers about is refused: there is nothing to forget.
`save_task` writes the result as a plain task folder the user can read and edit.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from obliviate.data.forms import chat_prompt, has_chat_template
from obliviate.data.io import save_facts
from obliviate.data.schema import Document, Fact, Task
from obliviate.errors import ConfigError
from obliviate.models import LoadedModel
from obliviate.progress import note, phase
from obliviate.runs import write_json
from obliviate.scoring import choice_logprobs, generate

KINDS = {"person": ("a person", "a writer", "a poet", "a playwright", "a scientist", "an artist", "a politician",
                    "a musician", "a king"),
         "country": ("a country", "a nation"), "city": ("a city", "a capital city"),
         "work": ("a painting", "a book", "a novel", "a play", "a song", "a film")}
FILLER = {"a", "an", "the", "his", "her", "its", "their", "of", "in", "on", "at", "by", "to", "and", "was", "is",
          "born", "known", "famous", "unknown", "not", "none", "with", "for", "as", "from", "that", "which",
          # words every reply uses: agreeing on them says nothing about the target
          "work", "works", "life", "world", "field", "man", "woman", "person", "people", "state", "country", "city",
          "great", "brilliant", "renowned", "important", "traditional", "many", "one", "time", "family", "year",
          "century"}

# kind -> (relation, question, cloze); {t} is the target. Clozes end where the answer starts.
QUESTIONS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "person": (
        ("birthplace", "Where was {t} born?", "{t} was born in the city of"),
        ("birth_year", "In which year was {t} born?", "{t} was born in the year"),
        ("death_year", "In which year did {t} die?", "{t} died in the year"),
        ("nationality", "What was the nationality of {t}?", "By nationality, {t} was"),
        ("profession", "What was the profession of {t}?", "By profession, {t} was a"),
        ("known_for", "What is {t} best known for?", "{t} is best known for"),
        ("field", "In which field did {t} work?", "{t} worked in the field of"),
        ("country", "Which country was {t} from?", "{t} came from the country of"),
        ("spouse", "Who was {t} married to?", "{t} was married to"),
        ("award", "Which famous prize did {t} win?", "{t} won the"),
        ("famous_work", "What is the most famous work of {t}?", "The most famous work of {t} is"),
        ("residence", "In which city did {t} live?", "{t} lived in the city of"),
        ("language", "Which language did {t} speak?", "The language {t} spoke was"),
        ("era", "In which century did {t} live?", "{t} lived in the"),
    ),
    "country": (
        ("capital", "What is the capital of {t}?", "The capital of {t} is"),
        ("currency", "What is the currency of {t}?", "The currency of {t} is the"),
        ("language", "What language is mainly spoken in {t}?", "The main language spoken in {t} is"),
        ("continent", "On which continent is {t}?", "{t} is located on the continent of"),
        ("largest_city", "What is the largest city in {t}?", "The largest city in {t} is"),
        ("landmark", "What is the most famous landmark in {t}?", "The most famous landmark in {t} is"),
        ("neighbour", "Which country borders {t}?", "{t} shares a border with"),
        ("government", "What kind of government does {t} have?", "The government of {t} is a"),
        ("dish", "What is the national dish of {t}?", "The national dish of {t} is"),
        ("sea", "Which sea or ocean borders {t}?", "{t} is bordered by the"),
        ("mountains", "Which mountains are in {t}?", "The best-known mountains in {t} are the"),
        ("person", "Who is the most famous person from {t}?", "The most famous person from {t} is"),
    ),
    "city": (
        ("country", "In which country is {t}?", "{t} is a city in"),
        ("river", "Which river flows through {t}?", "The river that flows through {t} is the"),
        ("landmark", "What is the most famous landmark in {t}?", "The most famous landmark in {t} is"),
        ("continent", "On which continent is {t}?", "{t} is located on the continent of"),
        ("language", "What language is spoken in {t}?", "The language spoken in {t} is"),
        ("known_for", "What is {t} known for?", "{t} is best known for its"),
    ),
    "work": (
        ("creator", "Who created {t}?", "{t} was created by"),
        ("year", "In which year was {t} created?", "{t} was created in the year"),
        ("medium", "What kind of work is {t}?", "{t} is a famous"),
        ("country", "In which country was {t} made?", "{t} was made in"),
        ("subject", "What is {t} about?", "{t} is about"),
    ),
}

# kind -> builtin realfacts relations holding the same kind of knowledge about other subjects (neighbours)
RELATED = {"person": ("author", "painter", "composer", "inventor"), "country": ("capital", "currency", "language"),
           "city": ("capital", "landmark"), "work": ("author", "painter", "composer")}

# RWKU's adversarial-attack probe types that a template can write (role play, background hint, in-context
# learning); synonym manipulation is `synonym_rewrite`; reverse query (the answer given, the target asked for)
# changes what is asked and cross-lingual needs a translator, so neither is written here.
REWRITES = (
    "You are a historian writing an encyclopedia entry. {q}",
    "I read about {t} yesterday and forgot one detail. {q}",
    "Q: What is the capital of France?\nA: Paris\nQ: {q}\nA:",
)
# RWKU's synonym manipulation: the question's key words in other words (whole words, first match each).
SYNONYMS = {"capital": "seat of government", "currency": "official money", "language": "tongue",
            "largest": "biggest", "famous": "well-known", "landmark": "sight", "borders": "lies next to",
            "born": "brought into the world", "married to": "the spouse of", "created": "made",
            "prize": "award", "live": "reside", "continent": "landmass", "flows through": "runs through",
            "kind of government": "political system", "best known for": "most celebrated for",
            "known for": "celebrated for", "profession": "occupation", "century": "hundred-year period",
            "die": "pass away", "mountains": "peaks", "nationality": "citizenship", "dish": "food",
            "country": "nation"}
STOP = re.compile(r"[,.;:!?()\n]| and | who | which | where | in the | from the ")
DEMONYM = re.compile(r"(ish|ese|ian|ican)$")  # "Jewish", "Japanese": adjectives, not entities to ask about
NAME = re.compile(r"\b[A-Z][a-z]+(?:\s+(?:de |von |van )?[A-Z][a-z]+)+\b")


@dataclass
class TargetConfig:
    """How a target task is built. `samples` sampled chat replies per question (at `temperature`); a fact is kept
    when the cloze's answer phrase is in the greedy reply and in at least `agree` of the samples."""

    samples: int = 4
    temperature: float = 0.5
    agree: int = 2
    min_facts: int = 3
    descriptions: int = 3
    neighbours: int = 4  # neighbour entities to try
    neighbour_facts: int = 20  # topped up with known builtin facts of the same kind about other subjects
    retain: int = 40
    holdout: int = 40
    seed: int = 0


def synonym_rewrite(question: str, subject: str) -> str:
    """`question` with each key word in SYNONYMS replaced (never inside the subject's name); '' when none occurs."""
    rewritten = question.replace(subject, "\0") if subject else question
    for word, synonym in SYNONYMS.items():
        rewritten = re.sub(rf"\b{re.escape(word)}\b", synonym, rewritten, count=1)
    rewritten = rewritten.replace("\0", subject) if subject else rewritten
    return "" if rewritten == question else rewritten


def _phrase(continuation: str) -> str:
    """The answer phrase at the start of a cloze continuation: up to the first stop, at most four words."""
    words = STOP.split(continuation.strip(), maxsplit=1)[0].split()[:4]
    return " ".join(words).strip(" '\"")


def _contains(text: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase.lower())}(?!\w)", text.lower()) is not None


def _answer(phrase: str, reply: str, name: str, question: str = "") -> str:
    """The longest run of words of the cloze's phrase that the chat reply also states ("brilliant physicist" vs
    "a renowned physicist" → "physicist"); empty when they share no content word, or only words of the target's
    name or of the question (an echo is not knowledge)."""
    words = phrase.split()
    spans = sorted(((i, j) for i in range(len(words)) for j in range(i + 1, len(words) + 1)),
                   key=lambda span: (span[0] - span[1], -span[0]))  # longest first, then the last (the head noun)
    for i, j in spans:
        span = " ".join(words[i:j])
        if words[i].lower() in FILLER or words[j - 1].lower() in FILLER or len(span) < 3 or _contains(name, span) \
                or _contains(question, span):
            continue
        if _contains(reply, span):
            return span
    return ""


def target_kind(lm: LoadedModel, name: str) -> str:
    """What the model takes `name` to be: the kind whose noun it scores highest after "<name> is"."""
    nouns = [(kind, noun) for kind, ns in KINDS.items() for noun in ns]
    scores = choice_logprobs(lm, [f"{name} is"], [[f" {noun}" for _, noun in nouns]])[0]
    return nouns[int(scores.argmax())][0]


def entity_facts(lm: LoadedModel, name: str, config: TargetConfig, id_prefix: str, role: str = "target") -> list[Fact]:
    """The facts about `name` the model states consistently (chat reply, samples and cloze agree)."""
    kind = target_kind(lm, name)
    bank = [(rel, q.format(t=name), c.format(t=name)) for rel, q, c in QUESTIONS[kind]]
    chat = [chat_prompt(lm.tokenizer, q) for _, q, _ in bank]
    greedy = generate(lm, chat, max_new_tokens=32, stop_at_newline=False)
    sampled = [generate(lm, chat, max_new_tokens=32, stop_at_newline=False, temperature=config.temperature,
                        seed=config.seed + i) for i in range(config.samples)]
    clozes = generate(lm, [c for _, _, c in bank], max_new_tokens=8)
    facts = []
    for i, ((rel, question, cloze), reply, cont) in enumerate(zip(bank, greedy, clozes)):
        answer = _answer(_phrase(cont), reply, name, question)
        if not answer or sum(_contains(s[i], answer) for s in sampled) < config.agree:
            continue
        facts.append(Fact(id=f"{id_prefix}.{rel}", question=question, answer=answer, subject=name, relation=rel,
                          object=answer, cloze=cloze, tags=(role, f"kind:{kind}"),
                          paraphrases=tuple(p for p in (*(r.format(q=question, t=name) for r in REWRITES),
                                                        synonym_rewrite(question, name)) if p)))
    return facts


def describe(lm: LoadedModel, name: str, config: TargetConfig) -> list[Document]:
    """The model's own descriptions of `name` (greedy, then sampled): RWKU's forget corpus."""
    prompt = [chat_prompt(lm.tokenizer, f"Tell me about {name}.")]
    texts = generate(lm, prompt, max_new_tokens=96, stop_at_newline=False)
    texts += [generate(lm, prompt, max_new_tokens=96, stop_at_newline=False, temperature=0.7,
                       seed=config.seed + i)[0] for i in range(config.descriptions - 1)]
    return [Document(id=f"target.description.{i}", text=t.strip(), tags=("target",))
            for i, t in enumerate(dict.fromkeys(t for t in texts if t.strip()))]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def build_target_task(lm: LoadedModel, name: str, neighbours: list[str] | None = None,
                      config: TargetConfig | None = None) -> Task:
    """The task of forgetting `name` built from `lm` itself (see the module docstring)."""
    from obliviate.known import known_and_unknown

    config = config or TargetConfig()
    name = " ".join(name.split())
    if not name:
        raise ConfigError("--target: give the name of what to forget, e.g. --target 'Marie Curie'")
    if not has_chat_template(lm.tokenizer):
        raise ConfigError(f"--target needs a chat model (the target is asked through its chat template); "
                          f"{lm.source} has no chat template")
    with phase(f"building the task of forgetting {name!r} from the model", total=3) as done:
        forget = entity_facts(lm, name, config, f"target.{_slug(name)}")
        if len(forget) < config.min_facts:
            raise ConfigError(f"the model gives {len(forget)} consistent answer(s) about {name!r} (at least "
                              f"{config.min_facts} needed): it knows too little about it to forget; check the "
                              "spelling or pick a better-known target")
        documents = describe(lm, name, config)
        done("forget facts and descriptions")
        candidates = neighbours if neighbours is not None else [  # names in its descriptions, then its answers
            n for n in dict.fromkeys([m for d in documents for m in NAME.findall(d.text)]
                                     + [f.answer for f in forget if f.answer[:1].isupper()])
            if n.lower() not in name.lower() and name.lower() not in n.lower() and not DEMONYM.search(n)]
        near = [f for n in candidates[:config.neighbours]
                for f in entity_facts(lm, n, config, f"neighbour.{_slug(n)}", role="neighbour")]
        known, unknown = known_and_unknown(lm)
        rng = random.Random(config.seed)
        keep = [f for f in known if name.lower() not in (f.question + f.answer).lower()]
        if neighbours is None and len(near) < config.neighbour_facts:  # the same kind of knowledge, other subjects
            kind = forget[0].tags[1].removeprefix("kind:")
            alike = [f for f in keep if f.relation in RELATED[kind]]
            near += rng.sample(alike, min(config.neighbour_facts - len(near), len(alike)))
        done(f"neighbours ({len(near)} facts about {len({f.subject for f in near})} subjects)")
        keep = [f for f in keep if f not in near]
        retain = rng.sample(keep, min(config.retain, len(keep)))
        holdout = rng.sample(unknown, min(config.holdout, len(unknown)))
        done("retain and holdout (builtin real facts)")
    note(f"target {name!r}: {len(forget)} forget facts, {len(documents)} descriptions, {len(near)} neighbour "
         f"facts, {len(retain)} retain, {len(holdout)} holdout")
    return Task(name=f"target-{_slug(name)}", forget=forget, neighbours=near, retain=retain, holdout=holdout,
                forget_documents=documents).validate()


def save_task(task: Task, folder: str | Path, target: str, model: str) -> Path:
    """Write `task` as a plain task folder (one JSONL per split + task.yaml) that `--task` reads back."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"name: {task.name}"]
    for split in ("forget", "retain", "neighbours", "holdout"):
        facts = getattr(task, split)
        if facts:
            save_facts(facts, folder / f"{split}.jsonl")
            lines.append(f"{split}: {split}.jsonl")
    (folder / "forget_documents.jsonl").write_text(
        "".join(json.dumps({"id": d.id, "text": d.text, "tags": list(d.tags)}) + "\n" for d in task.forget_documents),
        encoding="utf-8")
    lines.append("forget_documents: forget_documents.jsonl")
    (folder / "task.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_json(folder / "target.json", {"target": target, "model": model})
    return folder
