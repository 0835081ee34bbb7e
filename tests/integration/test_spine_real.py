"""The spine on the real SmolLM2: teaching works, and NPO / GradDiff forget while keeping retain facts."""

import pytest

from obliviate.card import evaluate
from obliviate.metrics import EvalConfig
from obliviate.teach import copy_model
from obliviate.unlearn import unlearn

CONFIG = EvalConfig(max_facts=40)
CHANCE = {"mcq": 0.25, "true_false": 0.5}


@pytest.fixture(scope="module")
def taught_card(taught, people):
    return evaluate(taught, people, ["forms"], config=CONFIG)


def test_base_model_does_not_know_the_invented_people(base, people):
    card = evaluate(base, people, ["forms"], config=EvalConfig(max_facts=40, forms=("qa", "cloze")))
    assert card.value("forms", "forget", "qa", "accuracy") <= 0.1
    assert card.value("forms", "retain", "qa", "accuracy") <= 0.1


def test_taught_model_knows_the_facts(taught_card):
    assert taught_card.value("forms", "forget", "qa", "accuracy") >= 0.8
    assert taught_card.value("forms", "retain", "qa", "accuracy") >= 0.8
    assert taught_card.value("forms", "forget", "cloze", "accuracy") >= 0.6
    for form, chance in CHANCE.items():  # forms never taught in that wording still beat chance
        assert taught_card.value("forms", "retain", form, "accuracy") >= chance + 0.15, form


def test_reference_model_never_learned_the_forget_split(reference, people):
    card = evaluate(reference, people, ["forms"], config=EvalConfig(max_facts=40, forms=("qa",)))
    assert card.value("forms", "forget", "qa", "accuracy") <= 0.2
    assert card.value("forms", "retain", "qa", "accuracy") >= 0.8


@pytest.mark.parametrize("method", ["npo", "graddiff"])
def test_unlearning_halves_forget_accuracy_and_keeps_retain(method, taught, people, taught_card):
    run = unlearn(copy_model(taught), people, method)
    card = evaluate(run.lm, people, ["forms"], config=EvalConfig(max_facts=40, forms=("qa",)))
    before_f = taught_card.value("forms", "forget", "qa", "accuracy")
    before_r = taught_card.value("forms", "retain", "qa", "accuracy")
    assert card.value("forms", "forget", "qa", "accuracy") <= before_f / 2
    assert card.value("forms", "retain", "qa", "accuracy") >= before_r - 0.10
