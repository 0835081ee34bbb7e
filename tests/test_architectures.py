"""The architectures obliviate.hooks claims, as tiny random models built locally (no downloads): shorthands
resolve to each one's own module names; the methods that edit named modules (RMU, KLUE, concept ablation,
ROCR, editing) run and touch the right parameters; unlearn → card → the attacks that hook layers (steering,
latent perturbation, directional ablation) run end to end; any other architecture fails with one line naming
the supported ones.
"""

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    BloomConfig,
    GemmaConfig,
    GPT2Config,
    GPTNeoXConfig,
    LlamaConfig,
    MistralConfig,
    OlmoConfig,
    PhiConfig,
    Qwen2Config,
)

from obliviate.data.people import people_task
from obliviate.errors import ConfigError
from obliviate.hooks import LAYOUTS, block_path, capture, final_norm_scale, mlp_out, resolve, run_until, value_vectors
from obliviate.models import LoadedModel, tiny_tokenizer
from obliviate.train import TrainConfig
from obliviate.unlearn import unlearn

SIZE = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=128)
CONFIGS = {
    "llama": lambda v: LlamaConfig(vocab_size=v, num_key_value_heads=2, **SIZE),
    "qwen2": lambda v: Qwen2Config(vocab_size=v, num_key_value_heads=2, **SIZE),
    "mistral": lambda v: MistralConfig(vocab_size=v, num_key_value_heads=2, **SIZE),
    "gemma": lambda v: GemmaConfig(vocab_size=v, num_key_value_heads=2, head_dim=8, **SIZE),
    "olmo": lambda v: OlmoConfig(vocab_size=v, **SIZE),
    "phi": lambda v: PhiConfig(vocab_size=v, **SIZE),
    "gpt_neox": lambda v: GPTNeoXConfig(vocab_size=v, **SIZE),
    "gpt2": lambda v: GPT2Config(vocab_size=v, n_embd=32, n_inner=64, n_layer=2, n_head=4, n_positions=128),
}
# the MLP output projection and self-attention of block 1 in each architecture's own names
EXPECTED = {
    "llama": ("model.layers.1.mlp.down_proj", "model.layers.1.self_attn"),
    "qwen2": ("model.layers.1.mlp.down_proj", "model.layers.1.self_attn"),
    "mistral": ("model.layers.1.mlp.down_proj", "model.layers.1.self_attn"),
    "gemma": ("model.layers.1.mlp.down_proj", "model.layers.1.self_attn"),
    "olmo": ("model.layers.1.mlp.down_proj", "model.layers.1.self_attn"),
    "phi": ("model.layers.1.mlp.fc2", "model.layers.1.self_attn"),
    "gpt_neox": ("gpt_neox.layers.1.mlp.dense_4h_to_h", "gpt_neox.layers.1.attention"),
    "gpt2": ("transformer.h.1.mlp.c_proj", "transformer.h.1.attn"),
}

pytestmark = pytest.mark.usefixtures("one_thread")


def build(kind: str, config=None) -> LoadedModel:
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    cfg = config or CONFIGS[kind](len(tok))
    cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id = tok.pad_token_id, tok.bos_token_id, tok.eos_token_id
    return LoadedModel(AutoModelForCausalLM.from_config(cfg).eval(), tok, f"tiny-{kind}")


def test_every_claimed_architecture_has_a_tiny_model_here():
    assert set(CONFIGS) == set(LAYOUTS)


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_shorthands_resolve_to_the_architectures_own_names(kind):
    lm = build(kind)
    out, attn = EXPECTED[kind]
    assert lm.model.config.model_type == kind
    assert resolve(lm.model, "mlp_in.1") == (out, True)
    assert resolve(lm.model, "layers.1.attn") == (attn, False)
    assert block_path(lm.model, 1, "mlp_out") == out
    ids = lm.tokenizer(["Mara Quill was born in"], return_tensors="pt").input_ids
    with capture(lm.model, "mlp_in.1", "resid.1") as acts:
        lm.model(input_ids=ids)
    assert acts["mlp_in.1"].shape[-1] == 64  # the MLP keys are d_ff wide
    assert torch.allclose(run_until(lm.model, "resid.1", input_ids=ids), acts["resid.1"])
    assert value_vectors(lm.model, 1).shape == (32, 64)  # (d, d_ff) whatever the storage (GPT-2 stores d_ff x d)
    assert mlp_out(lm.model, 1)[1] == (kind == "gpt2")
    gamma = final_norm_scale(lm.model)
    assert gamma is None if kind == "olmo" else gamma.shape == (32,)


@pytest.mark.parametrize("kind", sorted(CONFIGS))
@pytest.mark.parametrize("method", ["rmu", "klue"])
def test_methods_that_train_named_modules_run_on_each_architecture(kind, method):
    lm = build(kind)
    before = {n: p.detach().clone() for n, p in lm.model.named_parameters()}
    settings = {"neuron_fraction": 0.1} if method == "klue" else {}
    unlearn(lm, people_task("test"), method, train=TrainConfig(steps=2, lr=1e-2, batch_size=4, progress=False),
            **settings)
    changed = {n for n, p in lm.model.named_parameters() if not torch.equal(p, before[n])}
    # RMU trains block 0's MLP (the steered block of a 2-block model); KLUE the output weights of chosen neurons
    allowed = (block_path(lm.model, 0, "mlp") + ".",) if method == "rmu" else tuple(
        mlp_out(lm.model, i)[0] for i in range(2))
    assert changed and all(n.startswith(allowed) for n in changed), changed


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_concept_ablation_zeroes_value_vectors_on_each_architecture(kind):
    lm = build(kind)
    unlearn(lm, people_task("test"), "concept_ablation", n_vectors=2)
    zero_columns = sum(int((value_vectors(lm.model, i) == 0).all(0).sum()) for i in range(2))
    assert zero_columns >= 2


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_a_shared_prompt_prefix_run_once_changes_no_number_on_each_architecture(kind, monkeypatch):
    """The scoring engine runs a prefix all prompts share once and copies its cache to every row: each
    architecture's cache and positions must give the same log-probs and greedy text as whole prompts."""
    from obliviate import scoring

    lm = build(kind)
    header = "System: answer in one short line, please, and be kind.\nUser: "
    prompts = [header + q + "\nAssistant:" for q in ("Where was Mara Quill born?", "Hi", "What is red?")]
    ids = [lm.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    assert scoring._shared_prefix(ids) >= scoring.SHARED_PREFIX_MIN

    def outputs():
        return (scoring.answer_logprobs(lm, prompts, [" Velmora", " there", " a colour"]),
                scoring.generate(lm, prompts, 8, stop_at_newline=False))

    once = outputs()
    monkeypatch.setattr(scoring, "SHARED_PREFIX_MIN", 10**6)
    whole = outputs()
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(once[0], whole[0])) and once[1] == whole[1]


def test_an_unsupported_architecture_fails_in_one_line():
    tok = tiny_tokenizer()
    lm = build("bloom", BloomConfig(vocab_size=len(tok), hidden_size=32, n_layer=2, n_head=4))
    with pytest.raises(ConfigError, match="architecture 'bloom' .*not supported.*supported: gemma, gpt2") as e:
        unlearn(lm, people_task("test"), "rmu", train=TrainConfig(steps=1, progress=False))
    assert "\n" not in str(e.value)


LAYER_ATTACKS = ["activation_steering", "latent_perturbation", "directional_ablation"]


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_unlearn_eval_and_the_layer_addressing_attacks_run_end_to_end_on_each_architecture(kind):
    """What a user runs on their own model directory: unlearn → card → attacks that hook named layers."""
    from obliviate.attacks import Budget
    from obliviate.card import evaluate
    from obliviate.metrics import EvalConfig
    from obliviate.redteam import attack
    from obliviate.teach import copy_model

    task = people_task("test")
    original = build(kind)
    lm = unlearn(copy_model(original), task, "ga", train=TrainConfig(steps=1, lr=1e-3, batch_size=4, progress=False)).lm
    card = evaluate(lm, task, ["forms", "logit_lens"], config=EvalConfig(max_facts=2))
    assert 0 <= card.value("forms", "forget", "qa", "accuracy") <= 1
    report = attack(lm, task, original, LAYER_ATTACKS, Budget(steps=1, samples=1, seconds=60.0, max_facts=2),
                    progress=False)
    for name in LAYER_ATTACKS:
        assert "error" not in report.results[name].details, (kind, name, report.results[name].notes)


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_rank_one_edits_write_the_mlp_output_of_each_architecture(kind):
    """ROCR (unlearning by redirection) and ROME-style editing both write one block's MLP output projection."""
    from obliviate.editing import EditConfig, EditRequest, edit

    lm = build(kind)
    before = {n: p.detach().clone() for n, p in lm.model.named_parameters()}
    unlearn(lm, people_task("test"), "rocr", layers="1")
    changed = {n for n, p in lm.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {mlp_out(lm.model, 1)[0]}, changed
    lm = build(kind)
    request = EditRequest("Mara Quill", ("{} was born in",), "Paris", "Velmora")
    config = dict(steps=2, n_prefixes=1, prefix_tokens=4, kl_factor=0.0,
                  corpus=tuple(f"Sentence {i} is about bread." for i in range(6)))
    with pytest.raises(ConfigError, match="end at the last block"):  # its residual reaches no later token
        edit(lm, [request], EditConfig(layers=(1,), **config))
    edit(lm, [request], EditConfig(layers=(0,), **config))
    changed = {n for n, p in lm.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {mlp_out(lm.model, 0)[0]}, changed
