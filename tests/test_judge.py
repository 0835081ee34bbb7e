"""The strict judge, the lenient one, and the outcome of every answer."""

import json
from pathlib import Path

import pytest

from obliviate.errors import ConfigError
from obliviate.judge import OUTCOMES, answer_span, classify, contains, get_judge, judge, rouge_l_recall

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
     # the examples of NPO breaking the model, which the old card counted as forgetting
     ("Fenoxockedhord.rs.dorvcroft.", "gibberish"), ("earcוmowcadloomvadyvarda", "gibberish"),
     ("F Fennox VvvTvvv was aimei w", "gibberish"), ("Kartan Jorv89 years old", "gibberish"),
     ("1448.", "wrong"), ("Drogvianopia Wexvane.", "wrong"), ("?? -- ..", "gibberish"),
     ("zzxq kkr vvt", "gibberish"), ("Velmora Velmora Velmora Velmora", "right")],
)
def test_every_answer_gets_one_outcome(output, outcome):
    assert classify(output, "Velmora", CITIES) == outcome


def test_answer_span_points_into_the_original_text_where_the_judge_finds_the_answer():
    text = "The ﬁrst capital was Bogotá, not Tunisia."  # "ﬁ" folds to two characters, "á" to one
    start, end = answer_span(text, "Bogota")
    assert text[start:end] == "Bogotá"
    assert answer_span(text, "Tunis") is None  # inside a longer word
    assert answer_span("Oxygen's symbol is O.", "O", subject="Oxygen") == (19, 20)


def test_get_judge_by_name():
    assert get_judge("strict") is judge and get_judge("contains") is contains
    with pytest.raises(ConfigError, match="strict"):
        get_judge("lenient")


def test_rouge_l_recall():
    assert rouge_l_recall("born in the city of Velmora", "Velmora") == 1.0
    assert rouge_l_recall("nothing here", "Orvane Medal") == 0.0
    assert rouge_l_recall("Orvane something", "Orvane Medal") == 0.5


LABELS = Path(__file__).parent / "fixtures" / "judge_labels.jsonl"


def _labelled() -> list[dict]:
    """Real SmolLM2 answers (benchmarks/judge_outputs.py: base, taught, reference, NPO, GA, IdkPO, attacked), each
    labelled by hand right / wrong / refusal / gibberish / empty without looking at the judges' verdicts."""
    return [json.loads(line) for line in LABELS.read_text().splitlines()]


def test_the_labelled_set_is_large_and_varied():
    rows = _labelled()
    assert len(rows) >= 300
    assert {r["label"] for r in rows} == set(OUTCOMES)
    assert len({r["source"] for r in rows}) >= 8 and len({r["form"] for r in rows}) >= 5


def test_strict_judge_agrees_with_the_hand_labels():
    rows = _labelled()
    strict = sum(judge(r["output"], r["answer"], r["others"], r["subject"]) == (r["label"] == "right") for r in rows)
    lenient = sum(contains(r["output"], r["answer"]) == (r["label"] == "right") for r in rows)
    assert strict / len(rows) >= 0.95, f"strict judge agrees on {strict}/{len(rows)}"
    assert strict > lenient  # the containment judge credits lists, negations and other answers named first
    outcomes = sum(classify(r["output"], r["answer"], r["others"], subject=r["subject"]) == r["label"] for r in rows)
    assert outcomes / len(rows) >= 0.9, f"outcomes agree on {outcomes}/{len(rows)}"
