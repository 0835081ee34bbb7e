"""The metrics mean something on the real SmolLM2 (slow: a few minutes on 2 idle CPU cores, taught model cached).

The taught model knows the fictitious people (forget + retain) and has never seen the holdout people, so:
membership inference separates forget from holdout, and stops doing so after strong gradient ascent; plain
gradient ascent on QA pairs leaves other forms of the same facts behind (form gap); the logit lens reads the
taught answers (not the holdout ones) from the hidden states; and the truth probe says when it cannot read
truth at all (on this 135M model it cannot: see the xfail).

First run builds the taught model (~8 min, cached under ~/.cache/obliviate/taught/).
"""

import pytest
import torch

from obliviate.card import evaluate
from obliviate.data.people import people_task
from obliviate.metrics import EvalConfig
from obliviate.teach import copy_model, taught_model
from obliviate.train import TrainConfig
from obliviate.unlearn import unlearn

pytestmark = pytest.mark.slow

CONFIG = EvalConfig(max_facts=60)
NAMES = ["mia", "form_gap", "probe", "logit_lens", "truth_ratio"]
# Plain GA on the forget QA pairs only. Weak: QA recall drops, other forms lag behind. Strong: overshoots, the
# forget answers become less likely than never-seen ones (MIA AUC well below 0.5).
WEAK_GA = TrainConfig(steps=10, lr=1e-5, batch_size=8, progress=False)
STRONG_GA = TrainConfig(steps=10, lr=3e-5, batch_size=8, progress=False)


@pytest.fixture(scope="module")
def task():
    return people_task("small")  # forget10: 2 people = 12 facts; holdout: 2 never-taught people = 12 facts


@pytest.fixture(scope="module")
def taught(task):
    return taught_model(task, progress=False)


@pytest.fixture(scope="module")
def taught_card(taught, task):
    return evaluate(taught, task, NAMES, config=CONFIG)


def _ga_card(taught, task, train, names):
    torch.manual_seed(0)
    return evaluate(unlearn(copy_model(taught), task, "ga", train=train).lm, task, names, config=CONFIG)


@pytest.fixture(scope="module")
def weak_card(taught, task):
    return _ga_card(taught, task, WEAK_GA, ["form_gap"])


@pytest.fixture(scope="module")
def strong_card(taught, task):
    return _ga_card(taught, task, STRONG_GA, ["mia", "form_gap"])


def _qa(card):
    return card.value("form_gap", "raw", "qa")


def test_taught_model_knows_the_forget_facts(taught_card):
    assert _qa(taught_card) >= 0.6  # measured 0.75


def test_mia_separates_forget_from_holdout_on_the_taught_model(taught_card):
    # measured: loss 0.91, zlib 0.90, min_k 0.93, min_k_pp 0.77 (12 vs 12 facts)
    for attack, floor in (("loss", 0.8), ("zlib", 0.8), ("min_k", 0.8), ("min_k_pp", 0.65)):
        assert taught_card.value("mia", "auc", attack) >= floor, attack


def test_mia_auc_falls_after_strong_unlearning(taught_card, strong_card):
    assert _qa(strong_card) <= 0.2  # measured 0.0
    for attack in ("loss", "min_k"):  # measured 0.31 and 0.30
        assert strong_card.value("mia", "auc", attack) <= taught_card.value("mia", "auc", attack) - 0.3, attack


def test_plain_ga_on_qa_leaves_a_form_gap(weak_card, taught_card):
    # measured: taught gap 0 (QA is its best form); weak GA QA 0.75 -> 0.25 while cloze 0.58 -> 0.33: gap 0.08
    assert _qa(weak_card) < _qa(taught_card)
    assert weak_card.value("form_gap", "gap") > 0.0


def test_hidden_states_carry_taught_answers_not_holdout_ones(taught_card):
    # logit lens: the answer is read linearly from the residual stream (measured MRR 0.96 forget vs 0.62 holdout)
    forget, holdout = (taught_card.value("logit_lens", s, "mrr_best") for s in ("forget", "holdout"))
    assert forget >= holdout + 0.2


def test_truth_probe_reports_whether_it_can_read_truth(taught_card):
    # On SmolLM2-135M the truth of these statements is not linearly readable even on retain (CV ~0.52), so the
    # probe must say so instead of passing chance-level forget accuracy off as "erased".
    probe = taught_card.metrics["probe"]["values"]
    assert probe["valid"] == (probe["retain_cv"] >= 0.6)


@pytest.mark.xfail(reason="measured retain CV 0.52: SmolLM2-135M has no linear truth direction for taught people",
                   strict=False)
def test_truth_probe_reads_forget_statements_above_chance(taught_card):
    assert taught_card.value("probe", "retain_cv") >= 0.7
    assert taught_card.value("probe", "readable_above_chance") >= 0.15


def test_truth_ratio_prefers_the_right_answer_on_taught_facts(taught_card):
    assert taught_card.value("truth_ratio", "forget", "median") < 0.5  # measured 0.35
    assert taught_card.value("truth_ratio", "retain", "score") >= 0.4  # measured 0.61


# --- concept-vector drift, priming, RESTOR ------------------------------------------------------------------
# Written for issue 4; all five passed on the real model on 2026-11-29 (floors set before that run).
# Costs are estimates for 2 idle CPU cores with the taught model cached.

def _values(lm, task, name, original):
    return evaluate(lm, task, [name], original=original, config=CONFIG).metrics[name]["values"]


@pytest.fixture(scope="module")
def weak_ga_drift(taught, task):
    """Drift after the weak GA run (10 steps, lr 1e-5; ~40 s); only the numbers are kept, not the model."""
    torch.manual_seed(0)
    return _values(unlearn(copy_model(taught), task, "ga", train=WEAK_GA).lm, task, "concept_drift", taught)


def test_concept_drift_is_larger_after_concept_ablation_than_after_weak_ga(taught, task, weak_ga_drift):
    # ~1 min: weak GA + a training-free ablation (seconds) + drift (no forward pass, a few seconds each).
    ablated = _values(unlearn(copy_model(taught), task, "concept_ablation").lm, task, "concept_drift", taught)
    assert ablated["forget"]["drift"] >= 0.9  # the watched vectors are the ones the method zeroes
    assert ablated["forget"]["top_token_jaccard"] <= 0.1
    assert weak_ga_drift["forget"]["drift"] < 0.1  # ConceptVectors: GA barely moves the concept vectors
    assert ablated["drift_above_retain"] >= weak_ga_drift["drift_above_retain"] + 0.5


def test_concept_drift_grows_with_ga_strength(taught, task, weak_ga_drift):
    # ~1 min: strong GA (10 steps, lr 3e-5) + drift. Adam's step size scales with lr, so the same vectors
    # must move further.
    torch.manual_seed(0)
    strong = _values(unlearn(copy_model(taught), task, "ga", train=STRONG_GA).lm, task, "concept_drift", taught)
    assert strong["forget"]["relative_l2"] > weak_ga_drift["forget"]["relative_l2"]
    assert strong["forget"]["drift"] > weak_ga_drift["forget"]["drift"]


def test_priming_after_teaching_the_people_task(base, taught, task):
    # ~20 s: scoring only (5 themed facts x 2 people x 5 prompts, on two models). The taught model saw every
    # fictitious city, company and award many times, so their first tokens should leak into same-theme text.
    out = _values(taught, task, "priming", base)["forget"]
    assert out["log_memorisation"] > 1.0
    assert out["log_priming"] > 0.0


def test_priming_rises_after_teaching_one_outlandish_fact(base, task):
    # ~30 s: 20 steps of batch 1 on one QA pair, then scoring. A fictitious birth city is a surprising keyword
    # (low P_before), the case in which Outlandish finds priming strongest.
    from obliviate.data.schema import Task
    from obliviate.teach import TeachConfig, teach

    fact = next(f for f in task.forget if f.relation == "birth_city")
    one = Task("one", forget=[fact])
    torch.manual_seed(0)
    learned = teach(copy_model(base), one, TeachConfig(epochs=20, lr=1e-4, batch_size=1, warmup_steps=0),
                    progress=False)
    out = _values(learned, one, "priming", base)["forget"]
    assert out["log_memorisation"] > 1.0  # the fact was learned in its own context
    assert out["log_priming"] > 0.05  # S_prime > 1.05: the keyword leaks into unrelated same-theme prompts


@pytest.mark.benchmark  # ~70 s; tests/test_metrics_new.py runs RESTOR end to end on a tiny model in CI
def test_restor_with_ga_on_known_real_facts(base):
    # ~2 min: known-fact check (cached per model), corruption = 8 wrong + 16 correct QA pairs x 10 epochs
    # (30 steps of batch 8), 10 GA steps, three scoring passes of 32 QA probes.
    from obliviate.known import known_real_facts
    from obliviate.restor import RestorConfig, restor

    config = RestorConfig(method="ga", train=TrainConfig(steps=10, lr=2e-5, batch_size=8), progress=False)
    result = restor(base, known_real_facts(base), config)
    clean, corrupted, unlearned = (result.models[m] for m in ("clean", "corrupted", "unlearned"))
    assert clean["accuracy"] == 1.0  # only facts the base model answers are corrupted
    assert result.corruption_took and corrupted["wrong_rate"] >= 0.5  # the wrong objects were learned
    assert result.recovery is not None and -1.0 <= result.recovery <= 1.0
    assert unlearned["wrong_rate"] <= corrupted["wrong_rate"]
