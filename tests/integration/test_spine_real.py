"""The spine on the real SmolLM2: teaching works, and NPO / GradDiff forget while keeping retain facts."""

import pytest
import torch

from obliviate.card import evaluate
from obliviate.data.forms import probes
from obliviate.metrics import EvalConfig
from obliviate.scoring import score_probes
from obliviate.teach import copy_model
from obliviate.unlearn import unlearn

CONFIG = EvalConfig(max_facts=40, forms=("qa", "cloze", "mcq", "paraphrase"))
# true/false is left out: SmolLM2-135M answers true/false prompts at chance even for real facts it knows
# (0.53 on the general split), so that form says nothing about this model.


@pytest.fixture(scope="module")
def taught_card(taught, people):
    return evaluate(taught, people, ["forms"], config=CONFIG)


def test_base_model_does_not_know_the_invented_people(base, people):
    card = evaluate(base, people, ["forms"], config=EvalConfig(max_facts=40, forms=("qa", "cloze")))
    assert card.value("forms", "forget", "qa", "accuracy") <= 0.1
    assert card.value("forms", "retain", "qa", "accuracy") <= 0.1


def test_taught_model_knows_the_facts(taught_card):
    # measured 2026-12-06 on all facts (test_methods_real): forget QA 0.92 (11 of 12), retain QA 0.94 (of 72)
    assert taught_card.value("forms", "forget", "qa", "accuracy") >= 0.7
    assert taught_card.value("forms", "retain", "qa", "accuracy") >= 0.8
    # wordings never taught still work: cloze and paraphrase (chance ~0), multiple choice (chance 0.25)
    assert taught_card.value("forms", "retain", "cloze", "accuracy") >= 0.3
    assert taught_card.value("forms", "retain", "paraphrase", "accuracy") >= 0.4
    assert taught_card.value("forms", "retain", "mcq", "accuracy") >= 0.45


def test_reference_model_never_learned_the_forget_split(reference, people, taught_card):
    card = evaluate(reference, people, ["forms"], config=EvalConfig(max_facts=40, forms=("qa",)))
    # measured 0.25: cities and employers come from small pools, so some answers are guessable
    assert card.value("forms", "forget", "qa", "accuracy") <= 0.35
    assert card.value("forms", "forget", "qa", "accuracy") <= taught_card.value("forms", "forget", "qa", "accuracy") - 0.4
    assert card.value("forms", "retain", "qa", "accuracy") >= 0.7


# ~50 s each: npo is left to the benchmark run (test_methods_real asserts the same bar for it in CI)
@pytest.mark.parametrize("method", [pytest.param("npo", marks=pytest.mark.benchmark), "graddiff"])
def test_unlearning_halves_forget_accuracy_and_keeps_retain(method, taught, people, taught_card):
    run = unlearn(copy_model(taught), people, method)
    card = evaluate(run.lm, people, ["forms"], config=EvalConfig(max_facts=40, forms=("qa",)))
    before_f = taught_card.value("forms", "forget", "qa", "accuracy")
    before_r = taught_card.value("forms", "retain", "qa", "accuracy")
    assert card.value("forms", "forget", "qa", "accuracy") <= before_f / 2
    assert card.value("forms", "retain", "qa", "accuracy") >= before_r - 0.10


def test_bfloat16_scoring_judges_the_taught_model_like_float32(taught, people):
    """`eval --dtype bfloat16` is only worth offering if it gives the same verdicts: every probe of the forget
    and retain facts (forms of CONFIG), judged by a float32 and a bfloat16 copy of the taught model."""
    asked = [p for split in ("forget", "retain") for f in people.split(split)[: CONFIG.max_facts]
             for form in CONFIG.forms for p in probes(f, form)]
    fast = copy_model(taught)
    fast.model.to(torch.bfloat16)
    full_results, fast_results = score_probes(taught, asked), score_probes(fast, asked)
    same = sum(a.correct == b.correct for a, b in zip(full_results, fast_results)) / len(asked)
    assert same >= 0.95, same  # measured 252 of 260 (0.97)
    # measured 177 vs 175 right: the flips do not lean one way
    assert abs(sum(r.correct for r in full_results) - sum(r.correct for r in fast_results)) <= 0.03 * len(asked)
