"""The judge: does a generated answer give the right answer? Every accuracy and every recovery goes through it.

`judge` (strict, the default) counts an answer only when it is the answer the output gives:
  1. the right answer occurs as whole words (after SQuAD-style normalisation);
  2. no other candidate (the fact's other options) is named before it, or beside it in the same clause;
  3. it is not one of a list of alternatives ("Velmora, Quistal or Dornhaven", "Velmora or Quistal");
  4. it is not negated ("not Velmora", "Velmora is not ...");
  5. it does not come after a refusal ("I don't know, maybe Velmora").
`contains` is the lenient whole-word containment judge ("Not Velmora" counts), kept for comparison.
`classify` puts every answer in exactly one outcome: right, refusal, gibberish, empty or wrong.

The strict judge was checked against hand labels of real SmolLM2 outputs (tests/fixtures/judge_labels.jsonl);
docs/metrics.md lists where the two judges disagree.

>>> judge("Velmora", "Velmora"), judge("Velmora, Quistal or Dornhaven", "Velmora"), judge("Not Velmora", "Velmora")
(True, False, False)
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Sequence

from obliviate.text import is_empty, is_gibberish, is_refusal

OUTCOMES = ("right", "wrong", "refusal", "gibberish", "empty")

_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CLAUSE_END = re.compile(r"[.;!?\n]")
_NEGATION_BEFORE = re.compile(r"\b(not|no|never|nor|neither|isn't|wasn't|aren't|weren't|doesn't|didn't|don't|"
                              r"cannot|can't|non)\W+(\w+\W+){0,2}$")
_NEGATION_AFTER = re.compile(r"^\s*((is|was|are|were)\s+(not|never)|isn't|wasn't|aren't|weren't)\b")
_ALTERNATIVE = re.compile(r"\bor\b|/")


def normalise(text: str) -> str:
    """Lower-case, strip punctuation, articles and extra whitespace (SQuAD-style)."""
    text = _ARTICLES.sub(" ", _PUNCT.sub(" ", text.lower()))
    return " ".join(text.split())


def contains(output: str, answer: str, others: Sequence[str] = ()) -> bool:
    """Lenient judge: normalised exact match or whole-word containment (`others` is ignored)."""
    out, ans = normalise(output), normalise(answer)
    return bool(ans) and (out == ans or f" {ans} " in f" {out} ")


def _find(text: str, phrase: str) -> re.Match | None:
    """First whole-word, case-insensitive occurrence of `phrase` in raw `text` (punctuation-tolerant)."""
    words = normalise(phrase).split()
    if not words:
        return None
    pattern = r"(?<![A-Za-z0-9])" + r"[\W_]+".join(re.escape(w) for w in words) + r"(?![A-Za-z0-9])"
    return re.search(pattern, text, flags=re.IGNORECASE)


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


def judge(output: str, answer: str, others: Sequence[str] = ()) -> bool:
    """Strict judge: `output` gives `answer` (see the module docstring); `others` are the other candidates."""
    if normalise(output) == normalise(answer) and normalise(answer):
        return True
    found = _find(output, answer)
    if found is None:
        return False
    head, tail = output[: found.start()], output[found.end():]
    if is_refusal(head) or _NEGATION_BEFORE.search(head.lower()) or _NEGATION_AFTER.search(tail.lower()):
        return False
    before, after = _clause(output, found.start(), found.end())
    if _is_list_item(before, after):
        return False
    ans = normalise(answer)
    for other in others:
        if not normalise(other) or normalise(other) == ans or ans in normalise(other).split():
            continue
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


def classify(output: str, answer: str, others: Sequence[str] = (), judge_fn: Judge = judge) -> str:
    """Exactly one outcome per answer, checked in order: empty, right, refusal, gibberish, wrong."""
    if is_empty(output):
        return "empty"
    if judge_fn(output, answer, others):
        return "right"
    if is_refusal(output):
        return "refusal"
    if is_gibberish(output):
        return "gibberish"
    return "wrong"


@functools.lru_cache(maxsize=1)
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l_recall(output: str, reference: str) -> float:
    """ROUGE-L recall of `output` against `reference` as TOFU computes it: Google's rouge_score with Porter
    stemming, LCS over lower-cased alphanumeric tokens / reference length."""
    return float(_rouge_scorer().score(reference, output)["rougeL"].recall)
