"""The training loop: it learns, resumes exactly, honours accumulation, prunes, and detects collapse."""

import pytest
import torch

from obliviate.errors import ConfigError, TrainingCollapseError
from obliviate.methods.base import sequence_logprob, target_nll
from obliviate.models import tiny_model
from obliviate.train import Examples, TrainConfig, batch_indices, lr_at, run_training

DATA = Examples(["Question: Where was Mara born?\nAnswer:", "Question: Who is Tor?\nAnswer:", "Q: x\nA:"],
                [" Velmora", " a potter", " y"])


def sft(ctx, batch):
    return target_nll(ctx.model, batch.forget), {}


def _params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_learning_lowers_the_loss():
    lm = tiny_model(seed=0)
    result = run_training(lm, sft, DATA, config=TrainConfig(steps=30, lr=3e-3, batch_size=3, progress=False))
    assert result.history[-1]["loss"] < 0.5 * result.history[0]["loss"]


def test_batch_schedule_is_a_pure_function_and_covers_epochs():
    a = [batch_indices(10, 4, s, seed=1) for s in range(5)]
    assert a == [batch_indices(10, 4, s, seed=1) for s in range(5)]
    first_epoch = [i for b in a for i in b][:10]
    assert sorted(first_epoch) == list(range(10))
    assert a != [batch_indices(10, 4, s, seed=2) for s in range(5)]


def test_resume_from_checkpoint_matches_an_uninterrupted_run(tmp_path):
    config = TrainConfig(steps=6, lr=1e-3, batch_size=2, checkpoint_every=3, progress=False)
    full = run_training(tiny_model(seed=0), sft, DATA, config=config, out_dir=tmp_path / "a")
    # Interrupted run: stop after 3 steps (the checkpoint), then resume to 6 in a fresh process-like start.
    run_training(tiny_model(seed=0), sft, DATA, config=TrainConfig(**{**config.__dict__, "steps": 3}),
                 out_dir=tmp_path / "b")
    resumed = run_training(tiny_model(seed=0), sft, DATA, config=config, out_dir=tmp_path / "b", resume=True)
    assert [round(h["loss"], 5) for h in resumed.history] == [round(h["loss"], 5) for h in full.history]
    for (n, p), q in zip(full.lm.model.named_parameters(), resumed.lm.model.parameters()):
        assert torch.allclose(p, q, atol=1e-6), n


def test_grad_accumulation_matches_one_big_batch():
    def per_example_mean(ctx, batch):  # mean over examples, so two micro-batches of one average to the same
        return -sequence_logprob(ctx.model, batch.forget).mean(), {}

    base = dict(steps=2, lr=1e-3, batch_size=2, progress=False)
    one = run_training(tiny_model(seed=0), per_example_mean, DATA, config=TrainConfig(**base))
    acc = run_training(tiny_model(seed=0), per_example_mean, DATA, config=TrainConfig(**base, grad_accum=2))
    assert one.history[0]["loss"] == pytest.approx(acc.history[0]["loss"], rel=1e-5)
    for p, q in zip(one.lm.model.parameters(), acc.lm.model.parameters()):
        assert torch.allclose(p, q, atol=1e-5)


def test_lora_trains_only_adapters_and_merges():
    lm = tiny_model(seed=0)
    before = _params(lm.model)
    result = run_training(lm, sft, DATA, config=TrainConfig(steps=3, lr=1e-2, batch_size=3, lora=True, progress=False))
    assert hasattr(result.lm.model, "merge_and_unload")
    merged = result.lm.model.merge_and_unload()
    changed = [n for n, p in merged.named_parameters() if not torch.equal(p, before[n])]
    assert changed and all("proj" in n for n in changed)


def test_ignore_k_reverts_the_largest_updates():
    lm = tiny_model(seed=0)
    before = _params(lm.model)
    result = run_training(lm, sft, DATA, config=TrainConfig(steps=3, lr=1e-2, batch_size=3, ignore_k=0.2, progress=False))
    w = dict(result.lm.model.named_parameters())["model.layers.0.mlp.down_proj.weight"]
    delta = (w - before["model.layers.0.mlp.down_proj.weight"]).abs()
    assert (delta == 0).float().mean() >= 0.19


def test_collapse_is_detected():
    def exploding(ctx, batch):
        return target_nll(ctx.model, batch.forget) * float("nan"), {}

    with pytest.raises(TrainingCollapseError, match="collapsed"):
        run_training(tiny_model(), exploding, DATA, config=TrainConfig(steps=2, progress=False))


def test_stop_check_ends_early():
    result = run_training(tiny_model(), sft, DATA, config=TrainConfig(steps=10, check_every=2, progress=False),
                          stop_check=lambda lm: True)
    assert result.stopped_early and result.steps_done == 2


@pytest.mark.parametrize("bad", [dict(steps=0), dict(lr=0), dict(batch_size=3, grad_accum=2), dict(ignore_k=1.0)])
def test_bad_config_is_rejected(bad):
    with pytest.raises(ConfigError):
        TrainConfig(**bad)


def test_warmup_schedule():
    c = TrainConfig(lr=1.0, warmup_steps=4)
    assert [lr_at(s, c) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]


def test_gibberish_answers_stop_the_run():
    """A model that answered in words and now answers in noise has collapsed, even with a finite loss."""
    from obliviate.train import _gibberish

    lm = run_training(tiny_model(seed=0), sft, DATA, config=TrainConfig(steps=40, lr=3e-3, batch_size=3,
                                                                        progress=False)).lm
    assert _gibberish(lm, DATA.prompts)[0] < 0.5, "the taught tiny model should answer in words"

    def ascent(ctx, batch):
        return -target_nll(ctx.model, batch.forget), {}

    config = TrainConfig(steps=20, lr=0.05, batch_size=3, gibberish_every=2, collapse_loss=1e9, progress=False)
    with pytest.raises(TrainingCollapseError, match="gibberish"):
        run_training(lm, ascent, DATA, config=config)
