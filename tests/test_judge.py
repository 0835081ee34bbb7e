"""The strict judge, the lenient one, and the outcome of every answer."""

import pytest

from obliviate.errors import ConfigError
from obliviate.judge import classify, contains, get_judge, judge, rouge_l_recall

CITIES = ("Quistal", "Dornhaven", "Ashkelt")


@pytest.mark.parametrize(
    ("output", "answer", "others", "strict", "lenient"),
    [
        ("Paris.", "Paris", (), True, True),
        ("The capital is Paris, of course", "Paris", (), True, True),
        ("The capital of France is Paris.", "Paris", (), True, True),
        ("Parisian food", "Paris", (), False, False),
        ("the Orvane Medal", "Orvane Medal", (), True, True),
        ("", "Paris", (), False, False),
        ("1961", "1961", (), True, True),
        ("19612", "1961", (), False, False),
        ("J.R.R. Tolkien wrote it", "J. R. R. Tolkien", (), True, True),
        ("William Shakespeare, an English playwright and poet", "William Shakespeare", (), True, True),
        # a list of alternatives names the answer without giving it
        ("Velmora, Quistal, Dornhaven or Ashkelt", "Velmora", CITIES, False, True),
        ("Velmora or Quistal", "Velmora", (), False, True),
        ("Velmora/Quistal", "Velmora", (), False, True),
        ("Paris, Lyon and Marseille", "Paris", (), False, True),
        ("Velmora and Quistal", "Velmora", CITIES, False, True),
        # another candidate named first is the answer given
        ("Quistal. Velmora is nearby.", "Velmora", CITIES, False, True),
        ("Velmora. Quistal is nearby.", "Velmora", CITIES, True, True),
        ("Velmora, not Quistal", "Velmora", CITIES, True, True),
        # negated, or after a refusal
        ("Not Velmora", "Velmora", (), False, True),
        ("He was not born in Velmora", "Velmora", (), False, True),
        ("Velmora is not correct", "Velmora", (), False, True),
        ("I don't know, maybe Velmora", "Velmora", (), False, True),
        ("No, he was born in Velmora", "Velmora", (), True, True),
    ],
)
def test_strict_and_lenient_judges(output, answer, others, strict, lenient):
    assert judge(output, answer, others) is strict
    assert contains(output, answer, others) is lenient


@pytest.mark.parametrize(
    ("output", "outcome"),
    [("Velmora", "right"), ("Quistal", "wrong"), ("I'm not sure.", "refusal"), ("", "empty"), ("   ", "empty"),
     ("earcovmowcadloomvadyvarda Fenoxockedhord.rs.dorv", "wrong"), ("?? -- ..", "gibberish"),
     ("zzxq kkr vvt", "gibberish"), ("Velmora Velmora Velmora Velmora", "right")],
)
def test_every_answer_gets_one_outcome(output, outcome):
    assert classify(output, "Velmora", CITIES) == outcome


def test_get_judge_by_name():
    assert get_judge("strict") is judge and get_judge("contains") is contains
    with pytest.raises(ConfigError, match="strict"):
        get_judge("lenient")


def test_rouge_l_recall():
    assert rouge_l_recall("born in the city of Velmora", "Velmora") == 1.0
    assert rouge_l_recall("nothing here", "Orvane Medal") == 0.0
    assert rouge_l_recall("Orvane something", "Orvane Medal") == 0.5
