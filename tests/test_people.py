"""The fictitious people generator: forms, determinism, split nesting, neighbour links."""

from __future__ import annotations

import re

import pytest

from obliviate.data.forms import FORMS, probes
from obliviate.data.people import (
    CONFIGS,
    FORGET_SPLITS,
    RELATIONS,
    PeopleConfig,
    assign_splits,
    generate_people,
    people_task,
    teach_facts,
)
from obliviate.data.schema import SPLITS
from obliviate.errors import ConfigError
from obliviate.models import tiny_tokenizer


def all_facts(task):
    return [f for split in SPLITS for f in task.split(split)]


@pytest.mark.parametrize("config", list(CONFIGS))
def test_every_fact_has_every_form(config):
    task = people_task(config)
    facts = all_facts(task)
    assert len(facts) == CONFIGS[config].n_people * len(RELATIONS)
    for f in facts:
        assert re.fullmatch(r"p\d{3}\.[a-z_]+", f.id)
        assert f.subject and f.relation in RELATIONS and f.object == f.answer
        assert f.subject in f.cloze and f.subject in f.question and not f.cloze.endswith(" ")
        assert len(f.answer.split()) <= 3
        assert f.mcq is not None and len(f.mcq.options) in (3, 4) and len(set(f.mcq.options)) == len(f.mcq.options)
        assert f.mcq.options[f.mcq.answer_index] == f.answer
        assert [s.is_true for s in f.statements] == [True, False]
        assert f.answer in f.statements[0].text and f.answer not in f.statements[1].text.replace(f.subject, "")
        assert len(f.paraphrases) == 2 and all(f.subject in p for p in f.paraphrases)
        assert len(f.perturbed_answers) == len(f.mcq.options) - 1 and f.paraphrased_answer not in f.perturbed_answers
        assert f.paraphrased_answer and f.answer in f.paraphrased_answer
        assert "people" in f.tags
        forms = {form for form in FORMS if probes(f, form, tiny_tokenizer())}
        expected = set(FORMS) - {"chat"} if f.relation == "mentor" else set(FORMS) - {"two_hop", "chat"}
        assert forms == expected  # the test tokenizer has no chat template: no chat probes


def test_wrong_options_are_values_the_task_uses():
    """Distractors drawn from every city would let 'pick the familiar city' beat chance without the fact."""
    task = people_task("small")
    facts = [*task.forget, *task.retain, *task.neighbours, *task.holdout]
    used = {rel: {f.answer for f in facts if f.relation == rel} for rel in RELATIONS}
    for f in facts:
        assert set(f.mcq.options) <= used[f.relation]
        assert all(any(v in p for v in used[f.relation] - {f.answer}) for p in f.perturbed_answers)


def test_perturbed_answers_are_worded_like_the_paraphrase():
    task = people_task("small")
    for f in task.forget:
        prefix = f.paraphrased_answer.split(f.answer)[0].removesuffix("an ").removesuffix("a ")
        assert all(p.startswith(prefix) for p in f.perturbed_answers), (f.paraphrased_answer, f.perturbed_answers)
        if f.relation == "profession":
            assert all(p.split()[2] == ("an" if p.split()[3][0] in "aeiou" else "a") for p in f.perturbed_answers)


def test_two_hop_answers_are_mentor_attributes():
    task = people_task("small")
    by_id = task.facts_by_id()
    names = {f.subject: f.id.split(".")[0] for f in by_id.values()}
    for f in by_id.values():
        if f.relation != "mentor":
            continue
        mentor = names[f.answer]
        assert [h.answer for h in f.two_hop] == [by_id[f"{mentor}.birth_city"].answer, by_id[f"{mentor}.employer"].answer]
        assert mentor != f.id.split(".")[0]


def test_same_seed_same_output_different_seed_differs():
    a, b = people_task("small"), people_task("small")
    assert all_facts(a) == all_facts(b) and a.teach_documents == b.teach_documents
    other = people_task(PeopleConfig(n_people=20, seed=1, n_cities=6, n_companies=4))
    assert [f.answer for f in all_facts(a)] != [f.answer for f in all_facts(other)]


def test_names_unique_and_invented():
    people = generate_people(CONFIGS["benchmark"])
    names = [p.name for p in people]
    assert len(set(names)) == len(names)
    assert all(len(n.split()) == 2 for n in names)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_splits_nested_disjoint_and_nonempty(config):
    cfg = CONFIGS[config]
    splits = assign_splits(cfg)
    assert set(splits["forget01"]) <= set(splits["forget05"]) <= set(splits["forget10"])
    assert not set(splits["forget10"]) & set(splits["holdout"])
    assert all(len(v) >= 1 for v in splits.values())
    for forget in FORGET_SPLITS:
        task = people_task(config, forget)
        people = {split: {f.id.split(".")[0] for f in task.split(split)} for split in SPLITS}
        assert len(people["forget"]) == len(splits[forget])
        for s1 in SPLITS:
            for s2 in SPLITS:
                if s1 < s2:
                    assert not people[s1] & people[s2], (s1, s2)
        assert task.forget and task.retain and task.neighbours and task.holdout and not task.general


def test_neighbours_are_linked_taught_people():
    task = people_task("benchmark", "forget10")
    by_id = task.facts_by_id()
    teach_ids = {f.id for f in teach_facts(task)}
    for f in by_id.values():
        for n in f.neighbours:
            other = by_id[n]
            assert other.relation == f.relation and other.subject != f.subject
            me = f.id.split(".")[0]
            them = n.split(".")[0]
            shared = {by_id[f"{me}.birth_city"].answer, by_id[f"{me}.employer"].answer}
            assert shared & {by_id[f"{them}.birth_city"].answer, by_id[f"{them}.employer"].answer}
    linked = {n for f in task.forget for n in f.neighbours}
    neighbour_ids = {f.id for f in task.neighbours}
    assert neighbour_ids <= linked and neighbour_ids <= teach_ids
    assert not neighbour_ids & {f.id for f in task.holdout}


def test_teach_facts_and_documents_exclude_holdout():
    task = people_task("small")
    holdout_people = {f.id.split(".")[0] for f in task.holdout}
    assert len(teach_facts(task)) == len(task.forget) + len(task.retain) + len(task.neighbours)
    assert len(teach_facts(task)) <= 120  # the demo teaches this on CPU
    bios = {d.id.split(".")[0]: d for d in task.teach_documents}
    assert not holdout_people & set(bios)
    for f in teach_facts(task):
        assert f.answer in bios[f.id.split(".")[0]].text


def test_relations_subset_and_bad_configs():
    task = people_task(PeopleConfig(n_people=8, relations=("birth_city", "mentor")))
    assert {f.relation for f in all_facts(task)} == {"birth_city", "mentor"}
    mentor = next(f for f in all_facts(task) if f.relation == "mentor")
    assert len(mentor.two_hop) == 1
    with pytest.raises(ConfigError, match="unknown relation"):
        people_task(PeopleConfig(relations=("height",)))
    with pytest.raises(ConfigError, match="too few"):
        people_task(PeopleConfig(n_people=2))
    with pytest.raises(ConfigError, match="unknown config"):
        people_task("huge")
    with pytest.raises(ConfigError, match="forget split"):
        people_task("test", "forget50")
