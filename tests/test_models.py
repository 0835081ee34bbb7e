"""Model loading: tiny models, local directories, clear errors."""

import pytest
import torch

from obliviate.errors import ConfigError, ModelLoadError
from obliviate.models import load_model, save_model, tiny_model


def test_tiny_model_is_deterministic():
    a, b = tiny_model(seed=3), tiny_model(seed=3)
    ids = torch.tensor([[5, 6, 7]])
    assert torch.equal(a.model(ids).logits, b.model(ids).logits)
    assert a.tokenizer.pad_token is not None and a.tokenizer.padding_side == "left"


def test_save_and_reload_roundtrip(tmp_path):
    lm = tiny_model(seed=4)
    save_model(lm, tmp_path / "m")
    back = load_model(str(tmp_path / "m"), device="cpu")
    ids = torch.tensor([[5, 6, 7]])
    assert torch.allclose(lm.model(ids).logits, back.model(ids).logits, atol=1e-6)
    assert back.model.dtype == torch.float32


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="could not load model"):
        load_model(str(tmp_path / "nowhere"))


def test_dtype_is_chosen_at_load_and_bad_names_are_clear():
    lm = load_model("tiny", dtype="bfloat16")
    assert next(lm.model.parameters()).dtype == torch.bfloat16
    assert next(load_model("tiny").model.parameters()).dtype == torch.float32
    with pytest.raises(ConfigError, match="unknown dtype 'int3'"):
        load_model("tiny", dtype="int3")
