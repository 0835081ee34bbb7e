"""SAND (obliviate's own method) on the real SmolLM2 and real facts it knows: the answers leave the chat turn and
the cloze, down to the holdout control, while the neighbours (the same countries and relations asked about
something else) and the retain facts keep their chat answers.

A smaller stand-in for the `--until forgotten` run of docs/methods.md (20 forget facts, 60 steps, ~20 min):
10 forget facts, a 40-fact retain stream, 30 fixed steps at the method's defaults (~6 min on 2 cores).
Measured 2026-12-06 (20 probe facts per split): forget chat and cloze fall to the holdout's level, neighbours
kept their chat answers (0.85 -> 0.90), retain chat fell 0.95 -> 0.65: six of those ten forget facts were
capitals, and the suppression spreads along the relation ("The capital of India is Mumbai"); a retain weight
of 10 did not stop it (docs/methods.md, "SAND"). On the stratified draw (later that day; these ten are 6
capitals, 2 currencies, 2 languages): forget QA / chat / cloze 0.20 / 0.90 / 0.70 -> 0.00 / 0.00 / 0.00, retain
chat 0.90 -> 0.65, neighbours chat 0.90 -> 0.70 (cloze 0.80 and QA 0.35 unchanged). The same numbers on
2026-12-07 with the answer located as whole words (no chemical symbol among these ten). Later that day, the probe
reading the first 20 facts per split in task order (the card's) instead of a seeded 20: forget QA / chat / cloze
0.20 / 0.90 / 0.70 -> 0.00 / 0.00 / 0.00, retain chat 0.85 -> 0.70, neighbours chat 0.90 -> 0.70 (cloze 0.80 kept).
"""

from dataclasses import replace

import pytest

from obliviate.pipeline import load_task
from obliviate.teach import copy_model
from obliviate.train import TrainConfig
from obliviate.unlearn import unlearn
from obliviate.until import UntilConfig, UntilForgotten

STEPS = 30


@pytest.fixture(scope="module")
def scores(base):
    full = load_task("builtin:realfacts:forget20", base)
    task = replace(full, forget=full.forget[:10], retain=full.retain[:40])
    probe = UntilForgotten(task, base.tokenizer, UntilConfig(max_facts=20))
    before = probe.measure(base, 0).scores
    run = unlearn(copy_model(base), task, "sand", train=TrainConfig(steps=STEPS, lr=3e-5, progress=False),
                  forms="auto")
    after = probe.measure(run.lm, STEPS).scores
    print(f"sand before {before}\nsand after {after}")
    return before, after


def test_sand_removes_the_answers_from_the_chat_turn_and_the_cloze(scores):
    before, after = scores
    for form in ("chat", "cloze"):
        assert before["forget"][form] >= 0.7, f"the model should know the forget facts as {form}: {before}"
        assert after["forget"][form] <= after["holdout"][form] + 0.1, (form, after)


def test_sand_keeps_neighbours_and_costs_retain_what_was_measured(scores):
    before, after = scores
    # each bound is the cost measured on either draw with one fact of slack, so that a method that breaks them
    # fails (NPO's defaults took neighbour chat down 20-80 points on forget20 draws, docs/demo.md)
    assert after["neighbours"]["chat"] >= before["neighbours"]["chat"] - 0.25, (before, after)
    assert after["retain"]["chat"] >= before["retain"]["chat"] - 0.35, (before, after)
