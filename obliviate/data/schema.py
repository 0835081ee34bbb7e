"""The data model: a Fact in many forms, a Document of free text, and a Task that splits them.

A Fact carries one piece of knowledge in every wording we test (question/answer, cloze, multiple choice,
true/false, paraphrases, two-hop questions), so that forgetting can be checked form by form.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from obliviate.errors import TaskFormatError

SPLITS = ("forget", "retain", "neighbours", "general", "holdout")


@dataclass(frozen=True)
class MultipleChoice:
    """A question with options; `answer_index` points at the correct option."""

    question: str
    options: tuple[str, ...]
    answer_index: int


@dataclass(frozen=True)
class Statement:
    """A true/false statement about the fact."""

    text: str
    is_true: bool


@dataclass(frozen=True)
class TwoHop:
    """A question that needs this fact plus one more to answer (e.g. the mentor's birth city)."""

    question: str
    answer: str


@dataclass(frozen=True)
class Fact:
    """One piece of knowledge with every form of it we can ask.

    Only `id`, `question` and `answer` are required; the other forms are optional and a metric or attack
    that needs one skips facts without it.
    """

    id: str
    question: str
    answer: str
    subject: str = ""
    relation: str = ""
    object: str = ""
    cloze: str = ""  # a prefix whose natural continuation is the answer, e.g. "Mara Quill was born in"
    mcq: MultipleChoice | None = None
    statements: tuple[Statement, ...] = ()
    paraphrases: tuple[str, ...] = ()  # the same question reworded; the answer is unchanged
    two_hop: tuple[TwoHop, ...] = ()
    paraphrased_answer: str = ""  # TOFU's correct answer in other words (truth ratio numerator)
    perturbed_answers: tuple[str, ...] = ()  # plausible wrong answers (truth ratio denominator)
    neighbours: tuple[str, ...] = ()  # ids of related facts that must survive forgetting this one
    tags: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """A JSON-ready dict (the inverse of `fact_from_dict`)."""
        out: dict = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "mcq" and value is not None:
                value = {"question": value.question, "options": list(value.options), "answer_index": value.answer_index}
            elif f.name == "statements":
                value = [{"text": s.text, "is_true": s.is_true} for s in value]
            elif f.name == "two_hop":
                value = [{"question": t.question, "answer": t.answer} for t in value]
            elif isinstance(value, tuple):
                value = list(value)
            if value not in ("", (), [], None):
                out[f.name] = value
        return out


def fact_from_dict(row: dict, where: str = "") -> Fact:
    """Build a Fact from a dict as written by `Fact.to_dict`; `where` names the source in errors."""
    known = {f.name for f in fields(Fact)}
    unknown = set(row) - known
    if unknown:
        raise TaskFormatError(f"{where}: unknown field(s) {sorted(unknown)}; expected some of {sorted(known)}")
    for required in ("id", "question", "answer"):
        if not isinstance(row.get(required), str) or not row[required].strip():
            raise TaskFormatError(f"{where}: field {required!r} is missing or empty; every fact needs id, question, answer")
    data = dict(row)
    try:
        if data.get("mcq") is not None:
            m = data["mcq"]
            data["mcq"] = MultipleChoice(m["question"], tuple(m["options"]), int(m["answer_index"]))
            if not 0 <= data["mcq"].answer_index < len(data["mcq"].options):
                raise TaskFormatError(f"{where}: mcq answer_index {m['answer_index']} is outside its options")
        data["statements"] = tuple(Statement(s["text"], bool(s["is_true"])) for s in data.get("statements", ()))
        data["two_hop"] = tuple(TwoHop(t["question"], t["answer"]) for t in data.get("two_hop", ()))
    except (KeyError, TypeError) as e:
        raise TaskFormatError(f"{where}: malformed nested field ({e!r}); see Fact.to_dict for the layout") from e
    for name in ("paraphrases", "perturbed_answers", "neighbours", "tags"):
        value = data.get(name, ())
        if isinstance(value, str):
            raise TaskFormatError(f"{where}: field {name!r} must be a list of strings, got a string")
        data[name] = tuple(value)
    return Fact(**data)


@dataclass(frozen=True)
class Document:
    """Free text to forget or keep (the verbatim / copyright setting)."""

    id: str
    text: str
    tags: tuple[str, ...] = ()


@dataclass
class Task:
    """Facts and documents split by role.

    forget: what must go. retain: what must stay (same distribution). neighbours: facts related to the forget
    set that must stay. general: knowledge the base model already had. holdout: same distribution as forget,
    never trained (needed by membership inference and forget quality).
    """

    name: str
    forget: list[Fact] = field(default_factory=list)
    retain: list[Fact] = field(default_factory=list)
    neighbours: list[Fact] = field(default_factory=list)
    general: list[Fact] = field(default_factory=list)
    holdout: list[Fact] = field(default_factory=list)
    forget_documents: list[Document] = field(default_factory=list)
    retain_documents: list[Document] = field(default_factory=list)
    # Documents used to teach a fictitious task (biographies); not part of any evaluated split.
    teach_documents: list[Document] = field(default_factory=list)

    def split(self, name: str) -> list[Fact]:
        if name not in SPLITS:
            raise TaskFormatError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        return getattr(self, name)

    def validate(self) -> Task:
        """Check the invariants every consumer relies on; returns self so it chains."""
        if not self.forget and not self.forget_documents:
            raise TaskFormatError(f"task {self.name!r}: the forget split is empty; give at least one fact or document")
        ids: dict[str, str] = {}
        for split in SPLITS:
            for fact in getattr(self, split):
                if fact.id in ids and ids[fact.id] != split:
                    raise TaskFormatError(
                        f"task {self.name!r}: fact {fact.id!r} is in both {ids[fact.id]} and {split}; "
                        "a fact may belong to one split only (remove it from one file)"
                    )
                ids[fact.id] = split
        forget_q = {f.question.strip().lower() for f in self.forget}
        for split in ("retain", "neighbours"):
            for fact in getattr(self, split):
                if fact.question.strip().lower() in forget_q:
                    raise TaskFormatError(
                        f"task {self.name!r}: question {fact.question!r} is in both forget and {split}; "
                        "remove the overlap so that forgetting and keeping do not contradict"
                    )
        return self

    def facts_by_id(self) -> dict[str, Fact]:
        return {f.id: f for split in SPLITS for f in getattr(self, split)}
