"""Every registered method on a tiny model, asserted by DIRECTION: on a tiny model first taught a few facts, a few
gradient steps raise the forget answers' NLL (and a retain term keeps the retain NLL from rising as much);
training-free methods lower the forget answers' log-prob. Plus loss values where a formula pins them.

A method whose loss had its sign flipped fails `test_gradient_method_forgets_in_the_right_direction` (checked
once in a scratch copy: NPO with its loss negated, forget NLL 0.22 -> 0.15, fails; SimNPO with its retain term
negated, retain NLL 0.25 -> 1.57, fails).
"""

import copy
import math
from dataclasses import replace

import pytest
import torch

from obliviate.data.forms import qa_prompt
from obliviate.data.people import people_task
from obliviate.data.schema import Task
from obliviate.errors import ConfigError
from obliviate.methods import METHODS
from obliviate.methods._common import REFUSALS, prompt_ids, refusal_pairs, with_targets
from obliviate.methods.base import npo_loss, target_nll
from obliviate.methods.catnip import catnip_token_loss
from obliviate.models import LoadedModel, tiny_model
from obliviate.scoring import encode_pairs, sequence_logprob, target_logits
from obliviate.train import TrainConfig, run_training
from obliviate.unlearn import fact_examples, keep_examples, unlearn

GRADIENT = [n for n, m in METHODS.items() if not m.training_free]
TRAINING_FREE = [n for n, m in METHODS.items() if m.training_free]
# (lr, settings) where the shared budget (4 steps of batch 4 at lr 1e-3) is too timid for a 2-block model
BUDGET = {"klue": (1e-2, {"neuron_fraction": 0.1}), "rmu": (1e-2, {}), "wpn": (3e-3, {}), "idkpo": (3e-3, {})}
NO_RETAIN_TERM = {n for n in GRADIENT if not METHODS.get(n).needs_retain}
# Training-free methods whose effect a 2-block model cannot show, and where they are tested instead.
ON_REAL_MODEL_ONLY = {"edit_redirect": "its value search cannot make the tiny model say the redirect object; "
                                       "tests/integration/test_methods_real.py::test_training_free_method_on_people"}

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def small():
    """4 forget, 8 retain and 4 neighbour facts of builtin:people:test."""
    t = people_task("test")
    return Task("direction", forget=t.forget[:4], retain=t.retain[:8], neighbours=t.neighbours[:4]).validate()


@pytest.fixture(scope="module")
def taught(small):
    """The tiny model taught every fact of `small` (60 steps: QA NLL ~0.2 nats per answer token)."""
    examples = fact_examples(small.forget + small.retain + small.neighbours)
    return run_training(tiny_model(), lambda ctx, b: (target_nll(ctx.model, b.forget), {}), examples,
                        config=TrainConfig(steps=60, lr=3e-3, batch_size=8, progress=False)).lm


def _copy(lm: LoadedModel) -> LoadedModel:
    return LoadedModel(copy.deepcopy(lm.model), lm.tokenizer, lm.source)


def _nll(lm, facts) -> float:
    ex = fact_examples(facts)
    with torch.no_grad():
        return target_nll(lm.model, encode_pairs(lm.tokenizer, ex.prompts, ex.targets)).item()


def _forget_logprob(lm, task):
    return sequence_logprob(lm, [qa_prompt(f.question) for f in task.forget], [" " + f.answer for f in task.forget])


@pytest.mark.parametrize("name", GRADIENT)
def test_gradient_method_forgets_in_the_right_direction(name, taught, small):
    lr, settings = BUDGET.get(name, (1e-3, {}))
    lm = _copy(taught)
    before = {k: v.detach().clone() for k, v in lm.model.named_parameters()}
    forget0, retain0 = _nll(lm, small.forget), _nll(lm, small.retain + small.neighbours)
    run = unlearn(lm, small, name, train=TrainConfig(steps=4, lr=lr, batch_size=4, progress=False), **settings)
    forget1, retain1 = _nll(run.lm, small.forget), _nll(run.lm, small.retain + small.neighbours)
    assert run.steps == 4 and all(math.isfinite(v) for row in run.history for v in row.values())
    assert all(p.requires_grad for p in run.lm.model.parameters()), f"{name} left parameters frozen"
    assert any(not torch.equal(v, before[k]) for k, v in run.lm.model.named_parameters())
    assert forget1 > forget0 + 0.2, f"{name}: forget NLL {forget0:.3f} -> {forget1:.3f} did not rise"
    if name not in NO_RETAIN_TERM:  # the retain term must make it selective: retain rises less than forget
        assert retain1 - retain0 < 0.75 * (forget1 - forget0), (
            f"{name}: retain NLL {retain0:.3f} -> {retain1:.3f} against forget {forget0:.3f} -> {forget1:.3f}")


@pytest.mark.parametrize("name", TRAINING_FREE)
def test_training_free_method_lowers_the_forget_answers(name, taught, small):
    if name in ON_REAL_MODEL_ONLY:
        pytest.skip(ON_REAL_MODEL_ONLY[name])
    before = _forget_logprob(taught, small)
    run = unlearn(_copy(taught), small, name)
    after = _forget_logprob(run.lm, small)
    assert run.steps == 0
    assert after.mean() < before.mean() - 0.1, f"{name}: forget log-prob {before.mean():.3f} -> {after.mean():.3f}"


def test_npo_at_log_ratio_zero_is_2_over_beta_log2():
    assert npo_loss(torch.zeros(3), beta=0.1).item() == pytest.approx(20 * math.log(2))


def test_catnip_token_loss_values_and_weight():
    # p = 0.5 -> r = 0.5 -> (2/β)·softplus(0) = (2/β)·log 2
    assert catnip_token_loss(torch.tensor([math.log(0.5)]), beta=2.0).item() == pytest.approx(math.log(2))
    # gradient wrt log p is 2σ(β·logit p): 2p at β = 1
    for p in (0.1, 0.9):
        logp = torch.tensor(math.log(p), requires_grad=True)
        catnip_token_loss(logp, beta=1.0).backward()
        assert logp.grad.item() == pytest.approx(2 * p, rel=1e-4)
    assert torch.isfinite(catnip_token_loss(torch.tensor([0.0, -1e-9]), beta=1.0)).all()  # p = 1 is safe


def test_npo_loss_and_gradient_away_from_zero():
    """(2/β)·mean log(1 + e^{β r}), with gradient 2σ(β r)/n per row: the push fades as r falls (NPO Eq. 3)."""
    r = torch.tensor([0.7, -1.3, 2.0], requires_grad=True)
    beta = 0.5
    loss = npo_loss(r, beta)
    assert loss.item() == pytest.approx((2 / beta) * sum(math.log1p(math.exp(beta * x)) for x in (0.7, -1.3, 2.0)) / 3)
    loss.backward()
    expected = [2 / (1 + math.exp(-beta * x)) / 3 for x in (0.7, -1.3, 2.0)]
    assert r.grad.tolist() == pytest.approx(expected, rel=1e-5)


def _batch_of(lm, facts):
    from obliviate.train import TrainBatch

    ex = fact_examples(facts)
    return ex, TrainBatch(encode_pairs(lm.tokenizer, ex.prompts, ex.targets), None, None, 0, list(range(len(ex))))


def test_idkpo_loss_matches_dpo_where_the_model_differs_from_its_reference(task):
    """With a reference that is another model, both log-ratios are far from 0 and the loss is DPO's Eq. 7."""
    from obliviate.methods._common import refusal_for
    from obliviate.train import TrainContext, reference_logprobs

    lm, ref = tiny_model(seed=0), tiny_model(seed=1)
    method = METHODS.get("idkpo")(beta=0.5, retain_weight=0.0)
    ex, batch = _batch_of(lm, task.forget[:3])
    batch.forget_ref_logprob = reference_logprobs(ref.model, ref.tokenizer, ex, 128)
    ctx = TrainContext(lm.model, TrainConfig(), lm.tokenizer, lambda p: target_logits(ref.model, p))
    method.setup(ctx, batch)
    with torch.no_grad():
        loss, logs = method.loss(ctx, batch)
    refusals = [refusal_for(p) for p in prompt_ids(batch.forget)]
    chosen = sequence_logprob(lm, ex.prompts, refusals) - sequence_logprob(ref, ex.prompts, refusals)
    rejected = sequence_logprob(lm, ex.prompts, ex.targets) - sequence_logprob(ref, ex.prompts, ex.targets)
    assert rejected.abs().min() > 0.1 and chosen.abs().min() > 0.1  # away from the symmetric point
    expected = -torch.nn.functional.logsigmoid(0.5 * (chosen - rejected)).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)


def test_simnpo_loss_matches_eq_4_with_a_margin(task):
    """-(2/β)·mean logσ(-β·log π(y|x)/|y| - γ) at γ = 0.3 on a random model (log-probs far from 0)."""
    from obliviate.train import TrainContext

    lm = tiny_model()
    method = METHODS.get("simnpo")(beta=2.5, gamma=0.3, retain_weight=0.0)
    ex, batch = _batch_of(lm, task.forget[:3])
    with torch.no_grad():
        loss, _ = method.loss(TrainContext(lm.model, TrainConfig(), lm.tokenizer), batch)
    lengths = torch.tensor([len(lm.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in ex.targets])
    mean_lp = sequence_logprob(lm, ex.prompts, ex.targets) / lengths
    expected = -(2 / 2.5) * torch.nn.functional.logsigmoid(-2.5 * mean_lp - 0.3).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)


def test_refusal_pairs_keep_prompts_and_swap_targets(task):
    lm = tiny_model()
    pairs = encode_pairs(lm.tokenizer, [qa_prompt(f.question) for f in task.forget[:2]], [" A", " Bcd efg"])
    idk = refusal_pairs(lm.tokenizer, pairs)
    assert prompt_ids(idk) == prompt_ids(pairs)
    for row, m in zip(idk.input_ids, idk.target_mask):
        assert lm.tokenizer.decode(row[m]) in REFUSALS
    same = with_targets(pairs, [[7], [8, 9]], pad_id=0)
    assert same.target_mask.sum().item() == 3


def test_rmu_trains_only_the_chosen_mlps(task):
    lm = tiny_model()
    before = {k: v.detach().clone() for k, v in lm.model.named_parameters()}
    unlearn(lm, task, "rmu", train=TrainConfig(steps=2, lr=1e-3, batch_size=4, progress=False))
    changed = {k for k, v in lm.model.named_parameters() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("model.layers.0.mlp.") for k in changed)


def test_in_context_wrapper_equals_prefix_tokens_on_the_bare_model(task):
    """The wrapper's logits are the bare model's on [prefix ids, prompt ids], minus the prefix positions."""
    lm = tiny_model()
    run = unlearn(lm, task, "in_context", n_correct=1)
    wrapper = run.lm.model
    ids = lm.tokenizer([qa_prompt(task.forget[0].question)], return_tensors="pt").input_ids
    n = wrapper.prefix_ids.numel()
    plain = lm.model(input_ids=torch.cat([wrapper.prefix_ids[None], ids], 1)).logits[:, n:]
    assert torch.allclose(wrapper(input_ids=ids).logits, plain, atol=1e-5)
    assert run.lm.model.config is lm.model.config


def test_klue_changes_only_the_selected_down_proj_columns(task):
    lm = tiny_model()
    before = {k: v.detach().clone() for k, v in lm.model.named_parameters()}
    unlearn(lm, task, "klue", train=TrainConfig(steps=2, lr=1e-2, batch_size=4, progress=False), neuron_fraction=0.05)
    changed = {k for k, v in lm.model.named_parameters() if not torch.equal(v, before[k])}
    assert changed and all("mlp.down_proj" in k for k in changed)
    for k in changed:
        cols = (lm.model.get_parameter(k) != before[k]).any(0)
        assert 0 < cols.sum() <= 0.05 * 2 * cols.numel()


def test_bild_terms_vanish_when_student_equals_teacher():
    from obliviate.methods.bild import suppress_topk, topk_kl

    logits = torch.randn(5, 50)
    assert topk_kl(logits, logits, 10).item() == pytest.approx(0.0, abs=1e-6)
    assert suppress_topk(logits, logits, 10).item() == pytest.approx(0.0, abs=1e-6)
    other = logits.clone()
    other[:, 0] = 50.0  # the student is sure of a token the teacher ranks anywhere: suppressed unless shared
    assert suppress_topk(logits, other, 10).item() > 0 or (logits.topk(10).indices == 0).any()


def test_lora_ga_recipe_trains_adapters_only(task):
    """LoRA GA is `ga` with TrainConfig(lora=True): adapters move, the base weights do not."""
    lm = tiny_model()
    base = {k: v.detach().clone() for k, v in lm.model.named_parameters()}
    run = unlearn(lm, task, "ga", train=TrainConfig(steps=2, lr=1e-3, batch_size=4, lora=True, progress=False))
    params = dict(run.lm.model.named_parameters())
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in params.items())
    for k, v in base.items():
        wrapped = next(n for n in params if n.endswith(k.replace(".weight", ".base_layer.weight")) or n.endswith(k))
        assert torch.equal(params[wrapped], v)


def test_latent_attack_brings_answers_back_within_its_budget(task):
    from obliviate.hooks import add_vector, run_until
    from obliviate.methods.base import target_nll
    from obliviate.methods.lau import latent_attack
    from obliviate.unlearn import fact_examples

    lm = tiny_model()
    ex = fact_examples(task.forget[:3])
    pairs = encode_pairs(lm.tokenizer, ex.prompts, ex.targets)
    delta = latent_attack(lm.model, pairs, layer=0, eps_rel=0.5, steps=4)
    h = run_until(lm.model, "resid.0", input_ids=pairs.input_ids, attention_mask=pairs.attention_mask)
    limit = 0.5 * h.norm(dim=-1)[pairs.attention_mask.bool()].mean()
    assert (delta.norm(dim=-1) <= limit + 1e-4).all()
    with torch.no_grad():
        plain = target_nll(lm.model, pairs)
        with add_vector(lm.model, "resid.0", delta, mask=pairs.attention_mask.bool()):
            attacked = target_nll(lm.model, pairs)
    assert attacked < plain


def test_neighbour_keeping_methods_pair_forget_with_neighbours():
    task = people_task("test")
    assert task.neighbours, "the people task has look-alike neighbours"
    neighbours, retain = (keep_examples(task, split).prompts for split in ("neighbours", "retain"))
    assert neighbours and set(neighbours).isdisjoint(retain)
    assert keep_examples(task, "neighbours+retain").prompts == neighbours + retain
    assert METHODS.get("icu").keep_split == "neighbours" and METHODS.get("roka").keep_split == "neighbours+retain"
    assert keep_examples(replace(task, neighbours=[]), "neighbours").prompts == retain  # falls back


@pytest.mark.parametrize("scale", [0.1, 1.0, 10.0, 100.0])
def test_rocr_writes_the_documented_share_of_the_residual_at_any_key_scale(scale, task, monkeypatch, tmp_path):
    """One subject, one edited block: Δk = R/(1 + l2) whatever the key norm (up_proj × scale scales the keys).
    The ridge used to be scaled by ‖P k‖² twice, which wrote 100 % of R at scale 0.1 and 4 % at scale 100."""
    from obliviate.methods.rocr import template_mean

    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path))  # key statistics of this scaled model stay here
    lm = tiny_model()
    with torch.no_grad():
        lm.model.model.layers[1].mlp.up_proj.weight.mul_(scale)
    subject = task.forget[0].subject
    one = Task("one", forget=[f for f in task.forget if f.subject == subject])
    key = template_mean(lm, [subject], "mlp_in.1")[:, 0]
    resid = (template_mean(lm, ["a person"], "resid.1") - template_mean(lm, [subject], "resid.1"))[:, 0]
    weight = lm.model.model.layers[1].mlp.down_proj.weight
    before = weight.detach().clone()
    unlearn(lm, one, "rocr", layers="1", l2=0.5)
    written = (weight.detach() - before) @ key
    assert torch.allclose(written, resid / 1.5, atol=1e-4 * resid.norm().item())


@pytest.mark.parametrize("value, expected", [("false", False), ("0", False), ("off", False), ("True", True),
                                             ("yes", True), (False, False)])
def test_bool_settings_parse_false_as_false(value, expected):
    assert METHODS.get("catnip")(detach_reverse=value).config.detach_reverse is expected


def test_settings_parse_numbers_and_reject_bad_values_in_one_line():
    m = METHODS.get("npo")(beta="0.05", retain_weight="2")
    assert m.config.beta == 0.05 and m.config.retain_weight == 2.0
    assert METHODS.get("klue")(neuron_fraction="0.5").config.neuron_fraction == 0.5
    assert METHODS.get("rmu")(layer="3").config.layer == 3
    for bad, match in [(dict(detach_reverse="maybe"), "detach_reverse='maybe' is not a valid bool"),
                       (dict(beta="x"), "beta='x' is not a valid float")]:
        with pytest.raises(ConfigError, match=match) as e:
            METHODS.get("catnip")(**bad)
        assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="rmu setting layer='1.5' is not a valid int"):
        METHODS.get("rmu")(layer="1.5")
    with pytest.raises(ConfigError, match="npo has no setting 'betta'; its settings: beta, retain_weight"):
        METHODS.get("npo")(betta="1")


def test_tuple_settings_parse_comma_separated_lists():
    from obliviate.methods.base import parse_setting

    assert parse_setting("x", "layers", "4, 5,6", tuple[int, ...]) == (4, 5, 6)
    with pytest.raises(ConfigError, match="layers"):
        parse_setting("x", "layers", "4,a", tuple[int, ...])


def test_klue_refuses_lora_in_one_line(task):
    with pytest.raises(ConfigError, match="klue .*without lora") as e:
        unlearn(tiny_model(), task, "klue", train=TrainConfig(steps=1, lr=1e-3, batch_size=4, lora=True, progress=False))
    assert "\n" not in str(e.value)


def test_tru_reports_matches_and_refuses_a_file_that_matches_nothing(task, tmp_path):
    import json

    rows = [{"question": f.question.upper(), "reasoning": "I must not say.", "refusal": "No."} for f in task.forget[:2]]
    good = tmp_path / "traces.jsonl"
    good.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.warns(UserWarning, match=f"tru: 2 of {len(task.forget)} forget prompts matched"):
        run = unlearn(tiny_model(), task, "tru", train=TrainConfig(steps=1, lr=1e-3, batch_size=4, progress=False),
                      targets_file=str(good))
    assert run.config["method_notes"] == {"targets_matched": 2, "forget_prompts": len(task.forget)}
    bad = tmp_path / "other.jsonl"
    bad.write_text(json.dumps({"question": "Who painted the moon?", "reasoning": "r", "refusal": "s"}))
    with pytest.raises(ConfigError, match="none of the .* forget prompts matches"):
        unlearn(tiny_model(), task, "tru", train=TrainConfig(steps=1, lr=1e-3, batch_size=4, progress=False),
                targets_file=str(bad))


def test_in_context_demonstrations_are_facts_no_split_evaluates(task):
    from obliviate.data.realfacts import real_facts
    from obliviate.methods.in_context import DEMONSTRATIONS

    asked = {f.question for split in ("forget", "retain", "neighbours", "general", "holdout") for f in task.split(split)}
    asked |= {f.question for f in real_facts()} | {f.question for f in people_task("small").retain}
    assert not asked & {q for q, _ in DEMONSTRATIONS}
    run = unlearn(tiny_model(), task, "in_context", n_correct=3)
    prefix = run.lm.model.prefix_text
    assert not any(f.question in prefix for f in task.retain + task.neighbours)
    assert run.config["method_notes"]["demonstrations"] == [q for q, _ in DEMONSTRATIONS[:3]]
    clash = replace(task, retain=[replace(task.retain[0], question=DEMONSTRATIONS[0][0])] + task.retain[1:])
    assert METHODS.get("in_context")(n_correct=3).demonstrations(clash) == list(DEMONSTRATIONS[1:4])


def test_idkpo_reference_cache_belongs_to_one_run(task):
    """Two runs with two different reference models: the second must not reuse the first's cached log-probs."""
    method = METHODS.get("idkpo")(retain_weight=0.0)
    config = TrainConfig(steps=1, lr=1e-6, batch_size=4, progress=False)
    first = unlearn(tiny_model(seed=0), task, method, train=config).history[0]
    second = unlearn(tiny_model(seed=1), task, method, train=config).history[0]
    assert first["chosen_ratio"] == pytest.approx(0.0, abs=1e-5)
    assert second["chosen_ratio"] == pytest.approx(0.0, abs=1e-5)  # model == its own reference at step 0


def test_task_vector_fine_tune_follows_the_training_seed(task):
    """The fine-tune's batches come from the caller's seed: two seeds, two task vectors."""
    def edited(seed):
        return unlearn(tiny_model(), task, "task_vector", train=TrainConfig(seed=seed, progress=False),
                       steps=2, batch_size=2).lm.model.model.layers[0].mlp.down_proj.weight.detach().clone()

    assert torch.equal(edited(0), edited(0))
    assert not torch.equal(edited(0), edited(1))
