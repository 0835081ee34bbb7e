"""Editing on tiny models: the update touches only its layer, the null space is respected, edits raise p(new)."""

import pytest
import torch

from obliviate.data.people import people_task
from obliviate.data.realfacts import real_facts
from obliviate.editing import EditConfig, EditRequest, SADRConfig, edit, key_second_moment, nullspace_projector
from obliviate.editing.metrics import (
    aggregate,
    check_disjoint,
    evaluate_case,
    make_cases,
    request_from_fact,
    score_before,
)
from obliviate.editing.rank_one import (
    PRESERVE_SUBJECTS,
    down_proj,
    mean_keys,
    mentions,
    preserved_moment,
    solve_update,
    subject_token_index,
)
from obliviate.editing.rome import default_layers, preserved_subjects
from obliviate.editing.sadr import AttentionDriftRegulariser, eager_attention
from obliviate.errors import ConfigError
from obliviate.models import tiny_model
from obliviate.scoring import answer_probability

CORPUS = tuple(f"Sentence number {i} talks about the weather, bread and trains." for i in range(12))
REQ = EditRequest("Mara Quill", ("{} was born in", "Question: Where was {} born?\nAnswer:"), "Paris", "Velmora")
FAST = dict(steps=12, n_prefixes=1, prefix_tokens=4, corpus=CORPUS, clamp_norm=20.0, weight_decay=0.01, kl_factor=0.0)


@pytest.fixture()
def lm():
    """A 3-block tiny Llama whose (untied) output layer is scaled up: a random tiny model's logits are nearly
    flat, so no residual shift could make any token likely; with a real logit range an edit can."""
    lm = tiny_model(layers=3)
    lm.model.lm_head.weight = torch.nn.Parameter(lm.model.lm_head.weight.detach().clone() * 10)
    return lm


def _params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_edit_changes_only_the_target_layer_and_undo_restores(lm):
    before = _params(lm.model)
    result = edit(lm, [REQ], EditConfig(layers=(1,), **FAST))
    changed = {n for n, p in lm.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"model.layers.1.mlp.down_proj.weight"}
    diff = lm.model.model.layers[1].mlp.down_proj.weight - before["model.layers.1.mlp.down_proj.weight"]
    sv = torch.linalg.svdvals(diff.double())
    assert sv[1] < 1e-3 * sv[0]  # ROME: one request, a rank-one change
    result.undo()
    assert all(torch.equal(p, before[n]) for n, p in lm.model.named_parameters())


def test_edit_raises_the_new_object_probability(lm):
    prompts = [p.format(REQ.subject) for p in REQ.prompts]
    p0 = answer_probability(lm, prompts, [" Paris"] * 2)
    edit(lm, [REQ], EditConfig(layers=(0,), **{**FAST, "steps": 20}))
    p1 = answer_probability(lm, prompts, [" Paris"] * 2)
    assert p1.mean() > 10 * p0.mean(), (p0, p1)


def test_exact_solver_maps_keys_to_values():
    k, r, c = torch.randn(16, 3), torch.randn(8, 3), torch.eye(16) + 0.1
    delta = solve_update(k, r, c, solver="exact")
    assert torch.allclose(delta @ k, r, atol=1e-4)
    assert torch.linalg.matrix_rank(solve_update(k[:, :1], r[:, :1], c)) == 1  # ROME: one key, rank one


def test_nullspace_update_leaves_preserved_keys_unchanged(lm):
    stats = key_second_moment(lm, 1, texts=list(CORPUS), use_cache=False)
    proj = nullspace_projector(stats.moment, 0.05)
    assert 0 < int(torch.linalg.matrix_rank(proj)) < proj.shape[0]
    keys = mean_keys(lm, 1, [REQ.texts()], [REQ.subject])
    delta = solve_update(keys, torch.randn(64, 1), solver="nullspace", projector=proj, l2=1.0)
    preserved = torch.linalg.eigh(stats.moment.double())[1][:, -5:].float()  # top directions: P k ≈ 0
    assert (delta @ preserved).abs().max() < 1e-4 * delta.abs().max() + 1e-6


def test_batched_memit_edits_several_subjects_at_two_layers(lm):
    reqs = [REQ, EditRequest("Zelin Brom", ("{} works for",), "Nimbrel")]
    result = edit(lm, reqs, EditConfig(layers=(0, 1), **FAST))
    assert result.layers == (0, 1) and len(result.nll) == 2
    assert not torch.equal(down_proj(lm, 0).weight, result._saved[0])


def test_nullspace_edit_through_the_config(lm):
    result = edit(lm, [REQ], EditConfig(layers=(1,), nullspace_threshold=0.05, **FAST))
    assert len(result.nll) == 1


def test_sadr_regulariser_is_zero_without_drift_and_runs_in_edit(lm):
    enc = lm.tokenizer(["Mara Quill was born in"], return_tensors="pt")
    idx = torch.tensor([subject_token_index(lm.tokenizer, "Mara Quill was born in", "Mara Quill")])
    with eager_attention(lm.model), torch.no_grad():
        att = lm.model(**enc, output_attentions=True).attentions
        reg = AttentionDriftRegulariser(att, idx, enc["attention_mask"], 1, SADRConfig(threshold="head"))
        loss, _ = reg.loss(att)
    assert float(loss) == 0.0
    result = edit(lm, [REQ], EditConfig(layers=(0,), sadr=SADRConfig(weight=1.0), **FAST))
    assert 0.0 <= result.drift_share[0] <= 1.0
    assert lm.model.config._attn_implementation != "eager"  # restored


def test_bad_inputs_fail_at_construction(lm):
    with pytest.raises(ConfigError):
        EditRequest("X", ("no placeholder",), "Y")
    with pytest.raises(ConfigError):
        EditConfig(layers=(3, 1))
    with pytest.raises(ConfigError):
        SADRConfig(threshold="sometimes")
    with pytest.raises(ConfigError):
        edit(lm, [REQ], EditConfig(layers=(7,), **FAST))


def test_metrics_on_people_cases(lm):
    task = people_task("test")
    cases = make_cases(task, task.forget, n=2, seed=0)
    assert cases and all(c.rewrite and c.new_object != c.fact.answer for c in cases)
    assert request_from_fact(cases[0].fact, "X").prompts[0].count("{}") == 1
    score_before(lm, cases)
    row = evaluate_case(lm, cases[0])
    summary = aggregate([row])
    for key in ("efficacy", "efficacy_score", "locality", "fluency"):
        assert summary[key] is None or 0.0 <= summary[key] <= 1.0


def _fact_texts(fact):
    return [fact.question, fact.cloze or "", fact.answer, *fact.paraphrases, *(s.text for s in fact.statements),
            *(h.question for h in fact.two_hop)]


def test_preserved_subjects_are_disjoint_from_the_builtin_tasks():
    facts = list(real_facts())
    for size in ("test", "small", "benchmark"):
        task = people_task(size)
        facts += [f for split in ("forget", "retain", "neighbours", "general") for f in task.split(split)]
    texts = [t for f in facts for t in _fact_texts(f)]
    clash = sorted({s for s in PRESERVE_SUBJECTS for t in texts if mentions(t, s)})
    assert not clash, clash
    assert mentions("The capital of Brazil is", "brazil") and not mentions("Brazilian food", "Brazil")


def test_preserved_keys_move_less_and_the_edit_still_takes(lm):
    other = ("Zelin Brom", "Oda Fenn", "Pim Varro")
    layer = 1
    keys = mean_keys(lm, layer, [[p.format(s) for p in REQ.prompts] for s in other], list(other))  # (d_ff, 3)
    edited = mean_keys(lm, layer, [REQ.texts()], [REQ.subject])
    moved = {}
    for weight in (0.0, 100.0):
        cfg = EditConfig(layers=(layer,), preserve_weight=weight, preserve_subjects=(*other, REQ.subject), **FAST)
        assert preserved_subjects(cfg, [REQ]) == list(other)  # the edited subject itself is never preserved
        before = down_proj(lm, layer).weight.detach().clone()
        result = edit(lm, [REQ], cfg)
        delta = (down_proj(lm, layer).weight.detach() - before).double()
        moved[weight] = float((delta @ keys.double()).norm() / (delta @ edited.double()).norm())
        result.undo()
    assert moved[100.0] < 0.5 * moved[0.0], moved
    m = preserved_moment(lm, layer, list(REQ.prompts), list(other))
    assert m.shape == (keys.shape[0], keys.shape[0]) and torch.allclose(m, m.T, atol=1e-5)


def test_evaluation_refuses_protected_keys_that_it_scores():
    task = people_task("test")
    cases = make_cases(task, task.forget, n=1, seed=0)
    probed = cases[0].locality[0].prompt
    subject = next(f.subject for f in task.retain + task.forget + task.neighbours if f.subject in probed)
    check_disjoint(cases, EditConfig(preserve_weight=1.0))  # the default list is disjoint
    check_disjoint(cases, EditConfig(preserve_weight=0.0, preserve_subjects=(subject,)))  # nothing protected
    with pytest.raises(ConfigError, match="disjoint"):
        check_disjoint(cases, EditConfig(preserve_weight=1.0, preserve_subjects=(subject,)))
    with pytest.raises(ConfigError):
        EditConfig(preserve_weight=-1.0)


def test_default_layers_spread_over_span_blocks_ending_at_a_sixth_of_the_depth():
    lm12 = tiny_model(layers=12)
    assert default_layers(lm12, 3) == (0, 1, 2) and default_layers(lm12) == (2,)
    assert default_layers(tiny_model(layers=3), 3) == (0,)  # clipped at block 0
    with pytest.raises(ConfigError):
        EditConfig(span=0)
