"""`--until forgotten` on the real SmolLM2: the probe sees real facts leave every direct form, and the model that
comes back is exactly the checkpoint the rule kept (re-measured, it scores what the curve recorded)."""

import pytest

from obliviate.pipeline import load_task
from obliviate.teach import copy_model
from obliviate.train import TrainConfig
from obliviate.unlearn import unlearn
from obliviate.until import UntilConfig, UntilForgotten


@pytest.fixture(scope="module")
def run(base):
    task = load_task("builtin:realfacts:forget20", base)
    until = UntilConfig(every=5, max_facts=10)
    return unlearn(copy_model(base), task, "npo", train=TrainConfig(steps=15, lr=2e-5, progress=False),
                   forms="auto", until=until)


def test_the_probe_sees_real_facts_leave_every_direct_form(run):
    # measured 2026-12-06 on 20 sampled facts: chat 0.85 -> 0.40, cloze 0.75 -> 0.40 by step 10 (docs/methods.md);
    # 2026-12-07 on the first 10 in task order (the card's): chat 0.90 -> 0.60, cloze 0.70 -> 0.00 by step 10
    summary = run.config["until"]
    assert summary["forms"] == ["qa", "chat", "cloze"] and [c["step"] for c in summary["curve"]] == [5, 10, 15]
    before = summary["baseline"]["forget"]
    kept = next(c["scores"]["forget"] for c in summary["curve"] if c["step"] == summary["step"])
    assert before["chat"] >= 0.6 and before["cloze"] >= 0.5  # the model knows them: they were chosen so
    assert kept["mean"] <= before["mean"] - 0.2, (before, kept)
    assert summary["baseline"]["holdout"]["mean"] <= 0.1  # the control: facts it does not answer


def test_the_model_returned_is_the_checkpoint_kept(run, base):
    task = load_task("builtin:realfacts:forget20", base)
    summary = run.config["until"]
    probe = UntilForgotten(task, base.tokenizer, UntilConfig(**summary["rule"]))
    again = probe.measure(run.lm, run.steps)
    kept = next(c["scores"] for c in summary["curve"] if c["step"] == summary["step"])
    assert again.scores == kept and run.steps == summary["step"]
