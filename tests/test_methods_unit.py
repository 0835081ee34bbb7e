"""Every registered method on a tiny model: gradient methods train 2 steps, change weights, keep finite losses;
training-free methods change behaviour on the forget prompts. Plus loss values where a formula pins them.
"""

import math
from dataclasses import replace

import pytest
import torch

from obliviate.data.forms import qa_prompt
from obliviate.data.people import people_task
from obliviate.methods import METHODS
from obliviate.methods._common import REFUSALS, prompt_ids, refusal_pairs, with_targets
from obliviate.methods.base import npo_loss
from obliviate.methods.catnip import catnip_token_loss
from obliviate.models import tiny_model
from obliviate.scoring import encode_pairs, sequence_logprob
from obliviate.train import TrainConfig
from obliviate.unlearn import keep_examples, unlearn

GRADIENT = [n for n, m in METHODS.items() if not m.training_free]
TRAINING_FREE = [n for n, m in METHODS.items() if m.training_free]


def _forget_logprob(lm, task):
    return sequence_logprob(lm, [qa_prompt(f.question) for f in task.forget], [" " + f.answer for f in task.forget])


@pytest.mark.parametrize("name", GRADIENT)
def test_gradient_method_trains_two_steps(name, task):
    lm = tiny_model()
    before = {k: v.detach().clone() for k, v in lm.model.named_parameters()}
    run = unlearn(lm, task, name, train=TrainConfig(steps=2, lr=1e-3, batch_size=4, progress=False))
    assert run.steps == 2 and len(run.history) == 2
    assert all(math.isfinite(v) for row in run.history for v in row.values())
    changed = [k for k, v in run.lm.model.named_parameters() if not torch.equal(v, before[k])]
    assert changed, f"{name} did not change any parameter"
    assert all(p.requires_grad for p in run.lm.model.parameters()), f"{name} left parameters frozen"


@pytest.mark.parametrize("name", TRAINING_FREE)
def test_training_free_method_changes_forget_behaviour(name, task):
    lm = tiny_model()
    before = _forget_logprob(lm, task)
    run = unlearn(lm, task, name)
    after = _forget_logprob(run.lm, task)
    assert run.steps == 0
    assert (after - before).abs().max() > 1e-3, f"{name} left the forget answers' log-probs unchanged"


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


def test_idkpo_loss_is_log2_at_start(task):
    """At step 0 the model equals the reference, so both ratios are 0 and the DPO term is -log σ(0) = log 2."""
    from obliviate.train import TrainBatch, TrainContext, reference_logprobs
    from obliviate.unlearn import fact_examples

    lm = tiny_model()
    method = METHODS.get("idkpo")(retain_weight=0.0)
    ex = fact_examples(task.forget[:3])
    pairs = encode_pairs(lm.tokenizer, ex.prompts, ex.targets)
    ref = reference_logprobs(lm.model, lm.tokenizer, ex, 128)
    ctx = TrainContext(lm.model, TrainConfig(), lm.tokenizer, lambda p: lm.model(input_ids=p.input_ids,
                                                                   attention_mask=p.attention_mask).logits)
    loss, _ = method.loss(ctx, TrainBatch(pairs, None, ref, 0))
    assert loss.item() == pytest.approx(math.log(2), abs=1e-4)


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
