"""Text checks shared by metrics, editing and the training loop: refusal, gibberish and repetition detection.

Refusal and gibberish detection are deliberately simple, documented heuristics: they read short greedy answers
(`EvalConfig.max_new_tokens` tokens), not essays, and every rule is listed here so a reader can check a label.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata

_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """Lower-cased words (articles kept: a looping "the the the" must count)."""
    return _WORD.findall(text.lower())

# English function words: they carry no answer, so word-frequency answer picking (AnonAct) skips them.
FUNCTION_WORDS = frozenset(
    "a an the this that these those it its it's is are was were be been being am do does did has have had of in on "
    "at by to for from with as into onto about over under than then so and or but nor not no yes if also very "
    "i you he she we they me him her us them my your his our their who whom whose which what where when why how "
    "there here all any some each both many much more most one s can could will would shall should may might must "
    "called named known "
    # the same words in the languages a small model drifts into when sampled hot (Italian, Spanish, French,
    # Portuguese, German, Dutch): without them "la" and "de" outvote any answer
    "il la le les lo los las el un una une de di da del della des du do dos das der die den dem und e y et en op "
    "het van".split())


# Phrases a model uses to decline or to say it does not know (matched on the lower-cased output).
_REFUSAL = re.compile(
    r"\b(i (do not|don't|dont) know|i'm not sure|i am not sure|not sure|no idea|i cannot|i can't|i can not|"
    r"unable to|no information|not (be )?able to|unknown|i have no|i'm sorry|i am sorry|sorry|"
    r"i don't have|i do not have|cannot (answer|provide|say)|can't (answer|provide|say)|not aware|"
    r"i'm afraid|i am afraid|no (reliable|available) (data|information)|decline|not known)\b"
)


def is_refusal(text: str) -> bool:
    """True when the output declines or says it does not know ("I don't know", "I'm not sure", "sorry" ...)."""
    return bool(_REFUSAL.search(text.lower()))


def ngram_repetition(text: str, n: int = 2) -> float:
    """Share of word n-grams that repeat an earlier n-gram in the same text: 0 = none, -> 1 = a loop."""
    tokens = words(text)
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def is_empty(text: str) -> bool:
    """True for an answer with no visible text (the model ended its turn at once): a non-answer, not gibberish."""
    return not text.strip()


# Stray one-letter words: not "a" or "I", not an initial ("J."), not a quoted letter ('the letter "T"').
_SINGLE_LETTERS = re.compile(r"(?<![\w'\"])[b-hj-zB-HJ-Z](?![\w'\".])")


def _script(char: str) -> str:
    return unicodedata.name(char, "UNKNOWN").split()[0]


def garbled_word(word: str) -> bool:
    """True for a token no language writes: letters from two scripts ("earcוmow"), a replacement character,
    a lower-to-upper case switch inside it ("FvcroDacia"), a letter tripled ("VvvT"), letters glued to digits
    ("Jorv89") or an inner dot or underscore between letters ("dorvcroft.rs", "Quenchy_In")."""
    core = word.strip(string.punctuation + "«»“”‘’")
    if not core:
        return False
    scripts = {_script(c) for c in core if c.isalpha()}
    case_switch = any(a.islower() and b.isupper() for a, b in zip(core, core[1:]))
    return ("\ufffd" in core or len(scripts) > 1 or case_switch
            or bool(re.search(r"([A-Za-z])\1\1", core)) or bool(re.search(r"[A-Za-z]{2}\d|\d[A-Za-z]{2}", core))
            or bool(re.search(r"[A-Za-z][._][A-Za-z]{2}", core)))


def is_gibberish(text: str) -> bool:
    """True for output that is not language: mostly symbols, one word looped, no real words, or garbled tokens.

    Rules (any one suffices): no letter or digit at all; under half of the non-space characters are letters or
    digits; a word makes up over half of >= 4 words; no word of 2+ letters contains a vowel ("xkcd zzq"); three
    or more stray one-letter words ("F Fennox Or in F"); or at least one word in ten is garbled (`garbled_word`).
    A number is an answer, not gibberish ("1448."), and an empty answer is not gibberish (see `is_empty`): a
    model that ends its turn at once has declined, not broken.
    """
    stripped = text.strip()
    if not stripped:
        return False
    chars = [c for c in stripped if not c.isspace()]
    alnum = [c for c in chars if c.isalnum()]
    if not alnum or len(alnum) < 0.5 * len(chars):
        return True
    tokens = words(stripped)
    if len(tokens) >= 4 and max(tokens.count(w) for w in set(tokens)) > 0.5 * len(tokens):
        return True
    long_words = [w for w in tokens if len(w) >= 2 and w.isalpha()]
    if long_words and not any(re.search(r"[aeiouy]", w) for w in long_words):
        return True
    if len(_SINGLE_LETTERS.findall(stripped)) >= 2:
        return True
    raw = stripped.split()
    garbled = sum(garbled_word(w) for w in raw)
    return garbled >= 1 and garbled >= 0.1 * len(raw)


def finite(value: float) -> float | None:
    """The value, or None when it is NaN/inf (JSON cards hold no NaN)."""
    return value if math.isfinite(value) else None


# Neutral, fact-free sentences: fluency text when a task brings no held-out documents, and generation prompts.
NEUTRAL_TEXT = (
    "The weather was mild this morning, so many people walked to work instead of taking the bus.",
    "A good recipe for bread needs flour, water, salt and a little patience while the dough rises.",
    "The library opens at nine o'clock and closes in the early evening on most weekdays.",
    "Children in the park were playing football while their parents talked on the benches nearby.",
    "To keep a plant healthy, water it regularly and place it where it gets enough sunlight.",
    "The train was late because of repairs on the track, and the station was crowded with travellers.",
    "She opened the window to let in some fresh air and then sat down to read her book.",
    "Most cities have a central square where markets are held on weekends during the summer.",
    "He wrote a short list of things to buy: eggs, milk, apples and a loaf of bread.",
    "The river flows slowly through the valley before it reaches the sea near a small harbour.",
    "After dinner, the family cleared the table and played a board game until it was late.",
    "Learning a new language takes time, but practising a little every day makes a big difference.",
    "The museum displays old maps, tools and paintings that show how people lived long ago.",
    "When the rain stopped, the streets were quiet and the air smelled fresh and clean.",
    "A bicycle is a simple machine that turns the motion of the legs into forward movement.",
    "The teacher asked the students to write a short story about their favourite holiday.",
    "Coffee and tea are popular drinks in many countries, often enjoyed in the morning.",
    "The old house at the end of the street had a garden full of roses and tall trees.",
    "Scientists study the stars with telescopes that collect light from very distant objects.",
    "On Sunday afternoons the bakery sells fresh cakes, and a queue forms outside the door.",
)
