"""Built-in real facts and the task registry."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from obliviate.data import tasks
from obliviate.data.forms import probes
from obliviate.data.realfacts import real_facts, realfacts_task, verify_known
from obliviate.errors import ConfigError, TaskFormatError, UnknownNameError

FIXTURES = Path(__file__).parent / "fixtures"


def test_facts_have_all_forms_and_unique_ids():
    facts = real_facts()
    assert 250 <= len(facts) <= 300
    assert len({f.id for f in facts}) == len(facts) and len({f.question for f in facts}) == len(facts)
    ids = {f.id for f in facts}
    for f in facts:
        assert f.id.startswith("rf.") and f.answer and f.cloze and f.paraphrases
        assert f.mcq is not None and f.mcq.options[f.mcq.answer_index] == f.answer and len(set(f.mcq.options)) == 4
        assert [s.is_true for s in f.statements] == [True, False]
        assert len(f.perturbed_answers) == 3 and f.answer not in f.perturbed_answers
        if f.paraphrased_answer:  # worded like the paraphrased answer, so the truth ratio compares like with like
            prefix = f.paraphrased_answer.split(f.answer)[0]
            assert all(p.startswith(prefix) and p != f.paraphrased_answer for p in f.perturbed_answers)
        assert set(f.neighbours) <= ids and f.id not in f.neighbours
        for form in ("qa", "cloze", "mcq", "true_false", "paraphrase"):
            assert probes(f, form)
    capitals = {f.id: f for f in facts if f.relation == "capital"}
    assert capitals["rf.capital.france"].answer == "Paris"
    assert any(h.answer == "French" for h in capitals["rf.capital.france"].two_hop)
    assert "rf.capital.germany" in capitals["rf.capital.france"].neighbours
    assert real_facts() == facts  # deterministic


def test_verify_known_filters_and_prunes():
    facts = real_facts()
    kept = verify_known(facts, lambda fs: [f.relation == "capital" for f in fs])
    assert kept and all(f.relation == "capital" for f in kept)
    assert all(n.startswith("rf.capital.") for f in kept for n in f.neighbours)
    with pytest.raises(ValueError, match="one per fact"):
        verify_known(facts, lambda fs: [True])


def test_realfacts_task_splits():
    task = realfacts_task(seed=0)
    assert task.forget and task.retain and task.holdout and not task.general
    assert realfacts_task(seed=0).forget == task.forget
    assert realfacts_task(seed=1).forget != task.forget
    forget_ids = {f.id for f in task.forget}
    linked = {n for f in task.forget for n in f.neighbours} - forget_ids
    assert {f.id for f in task.neighbours} <= linked and len(task.neighbours) <= len(task.forget)
    small = realfacts_task(real_facts()[:5], forget_fraction=0.2)
    assert len(small.forget) == 1 and small.retain and small.holdout
    with pytest.raises(ConfigError):
        realfacts_task(forget_fraction=1.5)


def test_the_forget_draw_is_stratified_by_relation():
    """Each relation's share of the forget facts follows its share of the known facts (within one fact), so the
    seed cannot hand one draw 7 capitals and the next 4."""
    facts = real_facts()
    for seed in range(5):
        forget = realfacts_task(facts, n_forget=20, seed=seed).forget
        for relation in {f.relation for f in facts}:
            share = 20 * sum(f.relation == relation for f in facts) / len(facts)
            assert abs(sum(f.relation == relation for f in forget) - share) < 1, (seed, relation)


def test_one_known_fact_more_or_less_barely_moves_the_draw():
    """Another model, dtype or machine knows a few facts more or fewer: each such fact may enter or leave the
    forget draw and move at most two others, never reshuffle it (a seeded shuffle of the whole list did)."""
    facts = real_facts()
    base = {f.id for f in realfacts_task(facts[:200], n_forget=20).forget}
    for i in range(0, 261, 3):
        changed = facts[:200] + [facts[i]] if i >= 200 else facts[:i] + facts[i + 1:200]
        forget = {f.id for f in realfacts_task(changed, n_forget=20).forget}
        assert len((forget ^ base) - {facts[i].id}) <= 2, facts[i].id


def test_unknown_facts_are_the_control():
    facts = real_facts()
    known, unknown = facts[:150], facts[150:]
    task = realfacts_task(known, unknown=unknown, n_forget=60)
    assert len(task.forget) == 60 and task.holdout == [dataclasses.replace(f, neighbours=()) for f in unknown]
    assert {f.id for f in task.forget + task.neighbours + task.retain} <= {f.id for f in known}
    assert tasks.load("builtin:realfacts:forget60", facts=known, unknown=unknown).forget == task.forget
    with pytest.raises(ConfigError, match="forgetN"):
        tasks.load("builtin:realfacts:sixty")
    with pytest.raises(ConfigError, match="at most"):
        realfacts_task(known, n_forget=149)


def test_no_subject_the_editor_protects():
    """rank_one.PRESERVE_SUBJECTS protects other subjects' keys during edits: none may occur in these facts."""
    from obliviate.editing.rank_one import PRESERVE_SUBJECTS, mentions

    texts = [t for f in real_facts() for t in (f.question, f.answer, f.cloze, *f.paraphrases, *f.mcq.options,
                                              *(s.text for s in f.statements), *f.perturbed_answers)]
    assert not sorted({s for s in PRESERVE_SUBJECTS for t in texts if mentions(t, s)})


def test_tasks_load_specs(tmp_path):
    people = tasks.load("builtin:people:test:forget05")
    assert people.name == "people:test:forget05" and people.general
    assert tasks.load("builtin:people", split="forget01", config="test").name == "people:test:forget01"
    assert not tasks.load("builtin:people:test", general=False).general
    assert tasks.load("people:test").forget
    assert tasks.load("builtin:realfacts", seed=3).forget
    assert tasks.load(str(FIXTURES / "task")).name == "mini"
    assert tasks.load(FIXTURES / "task" / "task.yaml").name == "mini"
    # A folder without task.yaml: split files by name.
    (tmp_path / "forget.jsonl").write_text((FIXTURES / "task" / "forget.jsonl").read_text())
    (tmp_path / "retain.csv").write_text((FIXTURES / "facts.csv").read_text())
    folder = tasks.load(tmp_path)
    assert len(folder.forget) == 3 and len(folder.retain) == 3


def test_tasks_bad_specs(tmp_path):
    with pytest.raises(UnknownNameError, match="Did you mean people"):
        tasks.load("builtin:peple")
    with pytest.raises(UnknownNameError, match="Did you mean realfacts"):
        tasks.load("realfact")
    with pytest.raises(TaskFormatError, match="missing.yaml: task file not found"):
        tasks.load("nowhere/missing.yaml")
    with pytest.raises(TaskFormatError, match="no task.yaml"):
        tasks.load(tmp_path)
    with pytest.raises(ConfigError, match="unknown option"):
        tasks.load("builtin:people", colour="red")
    with pytest.raises(ConfigError, match="only to builtin"):
        tasks.load(str(FIXTURES / "task"), split="forget01")


def test_list_tasks():
    listed = dict(tasks.list_tasks())
    assert {"builtin:people", "builtin:realfacts", "builtin:people:small"} <= set(listed)
    assert all(desc and "\n" not in desc for desc in listed.values())


def test_answered_directly_asks_each_form_only_for_facts_still_unanswered(monkeypatch):
    """Known in any direct form = known; a fact answered in chat is not asked again as QA or cloze; with
    `progress` the check reports its phase in a log."""
    import io

    from rich.console import Console

    from obliviate import known, progress
    from obliviate.models import tiny_model
    from obliviate.scoring import ProbeResult

    lm = tiny_model()
    lm.tokenizer.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
                                  "{% if add_generation_prompt %}<assistant>{% endif %}")
    facts = real_facts()[:6]
    right = {("chat", facts[0].id), ("qa", facts[1].id), ("cloze", facts[2].id), ("qa", facts[0].id)}
    asked: list[tuple[str, str]] = []

    def fake_score(lm_, probes_, batch_size, judge_fn=None):
        assert batch_size == 5
        out = []
        for p in probes_:
            fact_id = next(f.id for f in facts if f.answer.strip() in p.answer or p.answer.strip() in f.answer)
            asked.append((p.form, fact_id))
            out.append(ProbeResult(p, (p.form, fact_id) in right, 0.0, 0.0, ""))
        return out

    monkeypatch.setattr(known, "score_probes", fake_score)
    log = io.StringIO()
    monkeypatch.setattr(progress, "_console", Console(file=log, width=200))
    monkeypatch.setitem(progress._state, "quiet", False)
    assert known.answered_directly(lm, facts, batch_size=5, progress=True) == [True, True, True, False, False, False]
    assert "which of 6 facts the model answers: 3 steps in" in log.getvalue()
    assert ("qa", facts[0].id) not in asked and ("cloze", facts[1].id) not in asked
    assert [form for form, _ in asked][:len(facts)] == ["chat"] * len(facts)  # chat asked first


def test_the_builtin_known_check_shows_progress_and_is_asked_once(monkeypatch, tmp_path):
    """The first use checks 261 facts (about 40 s on a CPU): it shows a progress phase, and its verdicts are
    cached so the next run asks nothing."""
    from obliviate import known
    from obliviate.models import tiny_model

    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path))
    calls: list[bool] = []

    def fake(lm_, facts, progress=False):
        calls.append(progress)
        return [i % 2 == 0 for i in range(len(facts))]

    monkeypatch.setattr(known, "answered_directly", fake)
    knew, did_not = known.known_and_unknown(tiny_model())
    assert calls == [True] and knew and did_not
    assert known.known_and_unknown(tiny_model()) == (knew, did_not) and calls == [True]


def test_the_known_check_asks_the_fp32_model_whatever_dtype_the_caller_computes_in(monkeypatch, tmp_path):
    """The realfacts split is drawn from this list: a bf16 copy must get the list of its source loaded in fp32
    (one cache entry for both), and stay in bf16 itself."""
    import torch

    from obliviate import known
    from obliviate.models import tiny_model, with_dtype

    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path))
    asked: list[torch.dtype] = []

    def fake(lm_, facts, progress=False):
        asked.append(next(lm_.model.parameters()).dtype)
        return [i % 3 == 0 for i in range(len(facts))]

    monkeypatch.setattr(known, "answered_directly", fake)
    bf16 = with_dtype(tiny_model(), "bfloat16")
    first = known.known_and_unknown(bf16)
    assert asked == [torch.float32] and next(bf16.model.parameters()).dtype == torch.bfloat16
    assert known.known_and_unknown(tiny_model()) == first and len(asked) == 1  # the fp32 model reads the same entry
