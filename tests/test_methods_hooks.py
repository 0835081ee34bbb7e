"""hooks.py: names resolve, hooks always come off, capture/steer/stop-early agree with HF hidden states."""

import pytest
import torch

from obliviate.hooks import add_vector, capture, hooks, resolve, run_until, trainable_only


def _ids(lm):
    return lm.tokenizer(["Question: Where was Mara Quill born?"], return_tensors="pt").input_ids


def test_shorthands_resolve(lm):
    m = lm.model
    assert resolve(m, "resid.1") == ("model.layers.1", False)
    assert resolve(m, "layers.-1") == ("model.layers.1", False)
    assert resolve(m, "layers.0.attn") == ("model.layers.0.self_attn", False)
    assert resolve(m, "mlp_in.0") == ("model.layers.0.mlp.down_proj", True)
    assert resolve(m, "model.norm:in") == ("model.norm", True)
    assert resolve(m, "embed")[0] == "model.embed_tokens"
    with pytest.raises(ValueError, match="shorthand"):
        resolve(m, "layers.0.nonsense")


def test_hooks_removed_even_after_exception(lm):
    def boom(act, name):
        raise RuntimeError("inside hook")

    with pytest.raises(RuntimeError, match="inside hook"):
        with hooks(lm.model, ("resid.0", boom)):
            lm.model(input_ids=_ids(lm))
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in lm.model.modules())


def test_capture_matches_hf_hidden_states(lm):
    ids = _ids(lm)
    with capture(lm.model, "resid.0", "embed") as acts:
        out = lm.model(input_ids=ids, output_hidden_states=True)
    assert torch.allclose(acts["embed"], out.hidden_states[0])
    assert torch.allclose(acts["resid.0"], out.hidden_states[1])


def test_predicate_targets_every_matching_module(lm):
    seen = []
    with hooks(lm.model, (lambda n: n.endswith("mlp"), lambda a, name: seen.append(name))):
        lm.model(input_ids=_ids(lm))
    assert seen == ["model.layers.0.mlp", "model.layers.1.mlp"]


def test_add_vector_changes_output_and_mask_limits_it(lm):
    ids = _ids(lm)
    base = lm.model(input_ids=ids).logits
    with add_vector(lm.model, "resid.0", torch.full((64,), 3.0)):
        steered = lm.model(input_ids=ids).logits
    assert not torch.allclose(base, steered)
    mask = torch.zeros(ids.shape, dtype=torch.bool)
    mask[:, -1] = True  # only the last position: earlier logits are untouched (causal)
    with add_vector(lm.model, "resid.0", torch.full((64,), 3.0), mask=mask):
        masked = lm.model(input_ids=ids).logits
    assert torch.allclose(base[:, :-1], masked[:, :-1], atol=1e-5)
    assert not torch.allclose(base[:, -1], masked[:, -1])


def test_run_until_returns_differentiable_activation(lm):
    ids = _ids(lm)
    h = run_until(lm.model, "resid.0", input_ids=ids)
    with capture(lm.model, "resid.0") as acts:
        lm.model(input_ids=ids)
    assert torch.allclose(h, acts["resid.0"])
    h.pow(2).sum().backward()
    assert lm.model.model.layers[0].mlp.down_proj.weight.grad is not None
    assert lm.model.model.layers[1].mlp.down_proj.weight.grad is None  # never reached
    lm.model.zero_grad(set_to_none=True)


def test_trainable_only_restores_flags(lm):
    with trainable_only(lm.model, lambda n: "layers.0.mlp" in n):
        loss = lm.model(input_ids=_ids(lm)).logits.sum()
    loss.backward()
    grads = {n for n, p in lm.model.named_parameters() if p.grad is not None}
    assert grads and all("layers.0.mlp" in n for n in grads)
    assert all(p.requires_grad for p in lm.model.parameters())
    lm.model.zero_grad(set_to_none=True)
