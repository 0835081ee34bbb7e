"""Editing on the real SmolLM2: ROME edits succeed, locality stays high, SADR reduces specificity failure.

Budget: a few minutes on 2 CPU cores (key statistics are cached on disk after the first run).
"""

import pytest

from obliviate.data.realfacts import realfacts_task
from obliviate.editing import EditConfig, SADRConfig
from obliviate.editing.metrics import evaluate_edits, make_cases
from obliviate.editing.rank_one import key_second_moment
from obliviate.editing.rome import default_layers
from obliviate.known import known_real_facts

N_EDITS = 4
STEPS = 20


@pytest.fixture(scope="module")
def realfact_cases(base):
    task = realfacts_task(known_real_facts(base))
    facts = [f for split in ("forget", "retain", "neighbours", "holdout") for f in task.split(split)]
    task.retain += task.holdout
    task.holdout = []
    # Subjects with several known relations (France: capital + language ...) exercise the relation probes.
    return make_cases(task, facts, N_EDITS, seed=0, relations=("capital", "language", "currency"))


@pytest.fixture(scope="module")
def results(base, realfact_cases):
    layers = default_layers(base)
    stats = {layer: key_second_moment(base, layer) for layer in layers}
    plain = evaluate_edits(base, realfact_cases, EditConfig(layers=layers, steps=STEPS), stats)["summary"]
    sadr = evaluate_edits(base, realfact_cases, EditConfig(layers=layers, steps=STEPS, sadr=SADRConfig(weight=1.0)),
                          stats)["summary"]
    return plain, sadr


def test_edits_succeed_and_keep_locality(results):
    plain, sadr = results
    assert plain["efficacy"] >= 0.6, plain
    assert plain["efficacy_score"] >= 0.75, plain
    assert plain["locality"] >= 0.8, plain
    assert sadr["efficacy_score"] >= 0.75, sadr
    assert sadr["locality"] >= 0.8, sadr


def test_sadr_reduces_specificity_failure(results):
    plain, sadr = results
    assert sadr["leak"] < plain["leak"], (plain, sadr)
    assert sadr["specificity_failure"] <= plain["specificity_failure"], (plain, sadr)


def test_people_edit_on_the_taught_model(taught, people):
    cases = make_cases(people, people.forget, 2, seed=0, relations=("birth_city", "employer"))
    summary = evaluate_edits(taught, cases, EditConfig(steps=STEPS))["summary"]
    assert summary["efficacy_score"] >= 0.5, summary
    assert summary["locality"] >= 0.7, summary
