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
