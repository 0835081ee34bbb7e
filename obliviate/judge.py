"""The judge: does a generated answer give the right answer? Every accuracy and every recovery goes through it.

`judge` (strict, the default) counts an answer only when it is the answer the output gives:
  1. the right answer occurs as whole words (case-, accent- and punctuation-insensitive), not only inside the
     question's own subject (answer "Czech", output "... the Czech Republic ...");
  2. the output does not open with a different bare answer ("Quistal Wexvane Labs. ... Tallowmere"), and no
     other candidate (the fact's other options) is named before it;
  3. it is not one of a list of alternatives ("Velmora, Quistal or Dornhaven", "Velmora or Quistal", "Velmora and
     Quistal", "Tessaly Prize. Orvane Medal. ..." where another candidate stands alone);
  4. it is not negated ("not Velmora", "Velmora is not ...");
  5. it does not come after a refusal ("I don't know, maybe Velmora").
Spelling variants are not recognised ("Belgrad" for Belgrade counts as wrong). `contains` is the lenient
whole-word containment judge ("Not Velmora" counts), kept for comparison. `classify` puts every answer in
exactly one outcome: right, refusal, gibberish, empty or wrong.

The strict judge is checked against hand labels of real SmolLM2 outputs (tests/fixtures/judge_labels.jsonl,
tests/test_judge.py); docs/metrics.md lists where it and the lenient judge disagree with the labels.

>>> judge("Velmora", "Velmora"), judge("Velmora, Quistal or Dornhaven", "Velmora"), judge("Not Velmora", "Velmora")
(True, False, False)
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from collections.abc import Callable, Sequence

from obliviate.text import is_empty, is_gibberish, is_refusal

OUTCOMES = ("right", "wrong", "refusal", "gibberish", "empty")

_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CLAUSE_END = re.compile(r"[.;!?\n]")
# A sentence ends at . ! ? (not after a one-letter initial such as "J.") followed by a space or the end, or at a newline.
_SENTENCE_END = re.compile(r"(?<![^A-Za-z][A-Za-z])(?<!^[A-Za-z])[.!?](?=\s|$)|\n")
_NEGATION_BEFORE = re.compile(r"\b(not|no|never|nor|neither|isn't|wasn't|aren't|weren't|doesn't|didn't|don't|"
                              r"cannot|can't|non)\W+(\w+\W+){0,2}$")
_NEGATION_AFTER = re.compile(r"^\s*((is|was|are|were)\s+(not|never)|isn't|wasn't|aren't|weren't)\b")
_ALTERNATIVE = re.compile(r"\bor\b|/")
_OPENERS = {"yes", "no", "sure", "certainly", "okay", "ok", "well", "hello", "hi", "answer", "the answer"}


def fold(text: str) -> str:
    """`text` without accents ("José" -> "Jose"), so spellings with and without diacritics match."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def normalise(text: str) -> str:
    """Lower-case, strip accents, punctuation, articles and extra whitespace (SQuAD-style)."""
    text = _ARTICLES.sub(" ", _PUNCT.sub(" ", fold(text).lower()))
    return " ".join(text.split())


def contains(output: str, answer: str, others: Sequence[str] = (), subject: str = "") -> bool:
    """Lenient judge: normalised exact match or whole-word containment (`others`, `subject` are ignored)."""
    out, ans = normalise(output), normalise(answer)
    return bool(ans) and (out == ans or f" {ans} " in f" {out} ")


def _find(text: str, phrase: str, start: int = 0) -> re.Match | None:
    """First whole-word, case-insensitive occurrence of `phrase` in folded `text` from `start`."""
    words = normalise(phrase).split()
    if not words:
        return None
    pattern = r"(?<![A-Za-z0-9])" + r"[\W_]+".join(re.escape(w) for w in words) + r"(?![A-Za-z0-9])"
    return re.compile(pattern, flags=re.IGNORECASE).search(text, start)


def _clause(text: str, start: int, end: int) -> tuple[str, str]:
    """The text before and after [start, end) within its clause (sentence punctuation ends a clause)."""
    before = _CLAUSE_END.split(text[:start])[-1]
    after = _CLAUSE_END.split(text[end:])[0]
    return before, after


def _is_list_item(before: str, after: str) -> bool:
    """True when the answer sits in a list of alternatives: "X, Y or Z", "X or Y", "X/Y", or "X, Y, Z" where every
    other item is a short name or number (so "Shakespeare, an English playwright" is not a list)."""
    if _ALTERNATIVE.search(before) or _ALTERNATIVE.search(after):
        return True
    others = [i.strip() for i in re.split(r",|\band\b", before + "," + after) if i.strip()]
    names = [i for i in others if len(i.split()) <= 3 and (i[0].isupper() or i[0].isdigit())]
    return len(others) >= 2 and len(names) == len(others)


def _sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of the sentences of `text`."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((start, m.end()))
        start = m.end()
    spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip(" .!?\n")]


def _bare_answer(fragment: str) -> bool:
    """True for a short sentence that is itself an answer: 1-4 words, each capitalised or a number
    ("Quistal Wexvane Labs.", "1448."), but not an opener such as "Certainly!"."""
    words = fragment.strip(" .!?:\n").split()
    return (1 <= len(words) <= 4 and all(w[0].isupper() or w[0].isdigit() for w in words)
            and normalise(" ".join(words)) not in _OPENERS)


def _answer_match(output: str, answer: str, subject: str) -> re.Match | None:
    """The first occurrence of `answer` that is not just part of the question's subject."""
    masked = [(m.start(), m.end()) for m in _iter(output, subject)] if subject and \
        normalise(answer) in normalise(subject) and normalise(answer) != normalise(subject) else []
    pos = 0
    while (found := _find(output, answer, pos)) is not None:
        if not any(a <= found.start() and found.end() <= b for a, b in masked):
            return found
        pos = found.end()
    return None


def answer_span(output: str, answer: str, subject: str = "") -> tuple[int, int] | None:
    """(start, end) in `output` where it says `answer` the way the strict judge finds it (whole words, accents
    and case ignored, not inside the subject), or None. "O" in "The symbol for oxygen is O." is the last word,
    not the "o" of "symbol"."""
    pieces = [fold(c) for c in output]
    origin = [i for i, piece in enumerate(pieces) for _ in piece]  # index in `output` of each folded character
    found = _answer_match("".join(pieces), answer, subject)
    return (origin[found.start()], origin[found.end() - 1] + 1) if found else None


def _iter(text: str, phrase: str):
    pos = 0
    while (m := _find(text, phrase, pos)) is not None:
        yield m
        pos = m.end()


def judge(output: str, answer: str, others: Sequence[str] = (), subject: str = "") -> bool:
    """Strict judge: `output` gives `answer` (see the module docstring); `others` are the other candidates and
    `subject` the question's subject (an answer that only occurs inside it does not count)."""
    output, ans = fold(output), normalise(answer)
    if not ans:
        return False
    if normalise(output) == ans:
        return True
    found = _answer_match(output, answer, subject)
    if found is None:
        return False
    sentences = _sentences(output)
    first = output[sentences[0][0]:sentences[0][1]] if sentences else ""
    if found.start() >= sentences[0][1] and _bare_answer(first):
        return False  # it opened with another answer
    head, tail = output[: found.start()], output[found.end():]
    if is_refusal(head) or _NEGATION_BEFORE.search(head.lower()) or _NEGATION_AFTER.search(tail.lower()):
        return False
    before, after = _clause(output, found.start(), found.end())
    if _is_list_item(before, after):
        return False
    bare = {normalise(output[a:b]) for a, b in sentences}
    for other in others:
        rival_norm = normalise(other)
        if not rival_norm or rival_norm == ans or ans in rival_norm.split():
            continue
        if rival_norm in bare:
            return False  # another candidate stands alone as an answer: a list of alternatives
        rival = _find(output, other)
        if rival is None:
            continue
        if rival.start() < found.start():
            return False
        beside = _find(after, other)  # in the same clause, after the answer: an alternative unless negated
        if beside is not None and not _NEGATION_BEFORE.search(after[: beside.start()].lower()):
            return False
    return True


Judge = Callable[..., bool]
JUDGES: dict[str, Judge] = {"strict": judge, "contains": contains}


def get_judge(name: str) -> Judge:
    """A judge by name ("strict" or "contains")."""
    from obliviate.errors import ConfigError

    if name not in JUDGES:
        raise ConfigError(f"unknown judge {name!r}; choose one of {', '.join(JUDGES)}")
    return JUDGES[name]


def classify(output: str, answer: str, others: Sequence[str] = (), judge_fn: Judge = judge,
             subject: str = "") -> str:
    """Exactly one outcome per answer, checked in order: empty, right, refusal, gibberish, wrong."""
    if is_empty(output):
        return "empty"
    if judge_fn(output, answer, others, subject):
        return "right"
    if is_refusal(output):
        return "refusal"
    if is_gibberish(output):
        return "gibberish"
    return "wrong"


@functools.lru_cache(maxsize=2)
def _rouge_scorer(stem: bool):
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=stem)


def rouge_l_recall(output: str, reference: str) -> float:
    """ROUGE-L recall of `output` against `reference` as TOFU computes it: Google's rouge_score with Porter
    stemming, LCS over lower-cased alphanumeric tokens / reference length."""
    return float(_rouge_scorer(True).score(reference, output)["rougeL"].recall)


def rouge_l_f1(output: str, reference: str) -> float:
    """ROUGE-L F1 of `output` against `reference` as MUSE's VerbMem and KnowMem compute it (rouge_score without
    stemming), in [0, 1] (MUSE prints it x 100)."""
    return float(_rouge_scorer(False).score(reference, output)["rougeL"].fmeasure)
