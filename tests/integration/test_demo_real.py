"""`obliviate demo` (the README's first command) on the real SmolLM2: real facts it knows are unlearned through
every direct form, the card and two attacks run against the holdout control, and the report is written."""

import pytest

from obliviate.card import Card
from obliviate.pipeline import run_demo
from obliviate.runs import read_json


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("demo") / "run")


def _accuracy(card: Card, split: str, form: str) -> float:
    return card.value("forms", split, form, "accuracy")


def test_demo_writes_the_whole_run(demo):
    for name in ("report.html", "report.md", "demo.json", "audit.json", "attacks.json", "generations.json",
                 "config.json", "history.json", "model/config.json", "cards/original.json", "cards/unlearned.json"):
        assert (demo / name).exists(), name
    assert read_json(demo / "config.json")["forms"] == ["qa", "chat", "cloze"]  # the chat template is used


def test_demo_halves_known_facts_in_every_direct_form_and_keeps_retain_chat(demo):
    # measured 2026-12-07 on the stratified draw from the fp32 known-fact list (NPO, 20 steps, bf16 questions
    # decoded 64 at a time, 64-token chat replies): forget chat 0.90 -> 0.30, cloze 0.65 -> 0.10, QA 0.35 ->
    # 0.05; retain chat 0.82 -> 0.78 while retain cloze fell 0.60 -> 0.03 (asserted below, docs/demo.md).
    # The draw from the bf16 list of 2026-12-06 read forget chat 0.90 -> 0.45, retain cloze 0.70 -> 0.00.
    before, after = Card.load(demo / "cards" / "original.json"), Card.load(demo / "cards" / "unlearned.json")
    assert before.value("forms", "forget", "qa", "n") == 20
    for form in ("chat", "cloze"):  # the original knows them: facts were chosen because it answers them
        assert _accuracy(before, "forget", form) >= 0.6, form
    for form in ("qa", "chat", "cloze"):
        assert _accuracy(after, "forget", form) <= _accuracy(before, "forget", form) / 2, form
        est = after.value("forms", "forget", form, "above_holdout")  # the control, with its interval
        assert est["n"] == 20 and est["ci"][0] <= est["value"] <= est["ci"][1], (form, est)
    assert _accuracy(after, "retain", "chat") >= _accuracy(before, "retain", "chat") - 0.15


def test_demo_verdict_weighs_the_cloze_the_recipe_erased(demo):
    """NPO's defaults erase the cloze of the retained relation on every stratified draw (docs/demo.md): the
    verdict must say so rather than read chat alone."""
    audit = (demo / "report.md").read_text()
    before, after = Card.load(demo / "cards" / "original.json"), Card.load(demo / "cards" / "unlearned.json")
    assert _accuracy(after, "retain", "cloze") <= _accuracy(before, "retain", "cloze") / 2  # measured 0.60 -> 0.03
    assert "asked as a cloze" in audit and "too high a cost" in audit


def test_demo_attacks_run_against_the_holdout_control(demo):
    attacks = read_json(demo / "attacks.json")
    assert attacks["control"]["kind"] == "holdout"
    for name in ("in_context", "form_change"):
        row = attacks["results"][name]
        assert row["above_control"]["n"] >= 15 and len(row["above_control"]["ci"]) == 2, name
