"""Editing on the real SmolLM2: edits succeed, locality reaches the issue's 0.8, SADR reduces the leak.

Budget: ~10 minutes on one CPU thread (611 s measured; key statistics are cached on disk after the first run).
The measured values in the comments come from the run recorded in docs/editing.md ("Results").
"""

import pytest

from obliviate.editing import EditConfig, SADRConfig
from obliviate.editing.metrics import evaluate_edits, make_cases, realfacts_cases
from obliviate.editing.rank_one import key_second_moment
from obliviate.editing.rome import default_layers

N_EDITS = 4
STEPS = 20


@pytest.fixture(scope="module")
def realfact_cases(base):
    # Country relations: their subjects have other facts (capital, currency, language) for the relation probes.
    return realfacts_cases(base, N_EDITS, seed=0, relations=("capital", "language", "currency"))


@pytest.fixture(scope="module")
def stats(base):
    layers = default_layers(base, EditConfig().span)
    return {layer: key_second_moment(base, layer) for layer in layers}


@pytest.fixture(scope="module")
def results(base, realfact_cases, stats):
    plain = evaluate_edits(base, realfact_cases, EditConfig(steps=STEPS), stats)["summary"]
    sadr = evaluate_edits(base, realfact_cases, EditConfig(steps=STEPS, sadr=SADRConfig(weight=1.0)), stats)["summary"]
    print("\nplain", plain, "\nsadr", sadr)  # shown with -s; the comments below quote these
    return plain, sadr


def test_edits_succeed(results):
    plain, sadr = results
    assert plain["efficacy"] >= 0.75, plain  # measured 1.0
    assert plain["efficacy_score"] >= 0.75, plain  # measured 1.0
    assert sadr["efficacy"] >= 0.75, sadr  # measured 1.0


def test_edits_keep_locality(results):
    plain, sadr = results
    assert plain["locality"] >= 0.8, plain  # measured 0.94 (the target; 0.71 with the old single-block ROME edit)
    assert sadr["locality"] >= 0.7, sadr  # measured 0.94


def test_preserved_keys_and_spreading_raise_locality_over_the_single_block_rome_edit(base, realfact_cases, stats,
                                                                                        results):
    plain, _ = results
    old = evaluate_edits(base, realfact_cases, EditConfig(steps=STEPS, span=1, preserve_weight=0.0), stats)["summary"]
    print("\nsingle-block ROME", old)
    assert plain["locality"] >= old["locality"] + 0.05, (old, plain)  # measured 0.94 vs 0.71
    assert plain["efficacy"] >= old["efficacy"] - 0.25, (old, plain)  # measured 1.0 and 1.0


def test_edit_keeps_some_of_the_subjects_other_facts(results):
    plain, _ = results
    # measured 0.5 with the essence KL at 4 (0.0 with ROME's 0.0625: the edit rewrote the whole subject)
    assert plain["relation"] >= 0.25, plain


def test_sadr_reduces_specificity_failure(results):
    plain, sadr = results
    assert sadr["leak"] <= 0.9 * plain["leak"], (plain, sadr)  # measured 0.11 vs 0.17
    assert sadr["specificity_failure"] <= plain["specificity_failure"], (plain, sadr)  # measured 0.75 and 0.75


def test_people_edit_on_the_taught_model(taught, people):
    cases = make_cases(people, people.forget, 2, seed=0, relations=("birth_city", "employer"))
    summary = evaluate_edits(taught, cases, EditConfig(steps=STEPS))["summary"]
    assert summary["efficacy_score"] >= 0.5, summary
    assert summary["locality"] >= 0.7, summary
