"""`obliviate unlearn --target NAME` on the real SmolLM2, the way a user runs it: the task is built from the model
itself, saved as a folder, NPO trains on it for 20 steps, and RWKU's probe kinds show the target's facts leave
far faster than the neighbours' (the same kind of knowledge about other subjects).

A one-target, fixed-step stand-in for benchmarks/target.py (three targets, `--until forgotten`, 44 min; docs/
target.md). One target gives a handful of facts, so this guards the path and the direction of the effect; the
pooled numbers with intervals are the benchmark's.
"""

import json

import pytest

from obliviate.card import evaluate
from obliviate.cli import app
from obliviate.metrics import EvalConfig
from obliviate.models import load_model
from obliviate.pipeline import load_task
from obliviate.target import synonym_rewrite

TARGET = "Japan"
STEPS = 20


def pooled(card, split: str) -> tuple[float, int]:
    """(answered, asked) of one split summed over RWKU's three kinds, a fact counting once per kind (its
    per-fact accuracy: the share of its rewrites answered, for the adversarial kind)."""
    values = card.metrics["rwku"]["values"][split]
    return (sum(v["accuracy"] * v["n"] for v in values.values()), sum(v["n"] for v in values.values()))


@pytest.fixture(scope="module")
def run(base, tmp_path_factory):
    from typer.testing import CliRunner

    out = tmp_path_factory.mktemp("target")
    result = CliRunner().invoke(app, ["unlearn", "--model", "default", "--target", TARGET, "--method", "npo",
                                      "--steps", str(STEPS), "--out", str(out)])
    assert result.exit_code == 0, result.output
    task = load_task(str(out / "task"))
    config = EvalConfig(max_facts=40)
    cards = {"original": evaluate(base, task, ["rwku"], config=config),
             "unlearned": evaluate(load_model(str(out / "model")), task, ["rwku"], config=config)}
    print({label: {split: pooled(card, split) for split in ("forget", "neighbours")} for label, card in cards.items()})
    return out, task, cards


def test_the_target_task_is_a_folder_of_facts_the_model_states(run):
    out, task, cards = run
    assert json.loads((out / "task" / "target.json").read_text())["target"] == TARGET
    assert len(task.forget) >= 3 and task.forget_documents and task.neighbours and task.holdout
    rewrites = [synonym_rewrite(f.question, f.subject) for f in task.forget]
    assert any(rewrites) and all(r in f.paraphrases for r, f in zip(rewrites, task.forget) if r)  # RWKU's synonym AA
    answered, n = pooled(cards["original"], "forget")
    assert answered / n >= 0.4, (answered, n)  # built from what it says consistently; measured 0.75 (n = 12)


def test_the_targets_facts_leave_far_faster_than_its_neighbours(run):
    # measured 2026-12-07 (4 forget facts, 20 neighbour facts, RWKU's three kinds each): forget 0.75 -> 0.08,
    # neighbours 0.71 -> 0.55. NPO costs the neighbours (same kind of knowledge about other countries; docs/
    # target.md), so the claim is selectivity: the target loses far more than they do.
    _, _, cards = run
    (before, n), (after, _) = pooled(cards["original"], "forget"), pooled(cards["unlearned"], "forget")
    (kept_before, m), (kept_after, _) = pooled(cards["original"], "neighbours"), pooled(cards["unlearned"], "neighbours")
    forget_drop, neighbour_drop = before / n - after / n, kept_before / m - kept_after / m
    assert forget_drop >= 0.3, (before, after, n)
    assert forget_drop >= neighbour_drop + 0.15, (forget_drop, neighbour_drop)
