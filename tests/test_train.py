"""The training loop: it learns, resumes exactly, honours accumulation, prunes, and detects collapse."""

import pytest
import torch

from obliviate.errors import ConfigError, TrainingCollapseError
from obliviate.methods.base import sequence_logprob, target_nll
from obliviate.models import tiny_model
from obliviate.train import Examples, TrainConfig, _gibberish, batch_indices, lr_at, run_training, watch_prompts

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
                          stop_check=lambda lm, step: True)
    assert result.stopped_early and result.steps_done == 2


@pytest.mark.parametrize("bad", [dict(steps=0), dict(lr=0), dict(batch_size=3, grad_accum=2), dict(ignore_k=1.0)])
def test_bad_config_is_rejected(bad):
    with pytest.raises(ConfigError):
        TrainConfig(**bad)


def test_warmup_schedule():
    c = TrainConfig(lr=1.0, warmup_steps=4)
    assert [lr_at(s, c) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]


# Answers end with a newline, so a taught tiny model's greedy answer is the word and nothing after it.
WORDS = Examples(DATA.prompts, [" Velmora\n", " a potter\n", " yes\n"])


@pytest.fixture(scope="module")
def speaking():
    """A tiny model taught to answer the WORDS prompts in words (the collapse watch can read it)."""
    lm = run_training(tiny_model(seed=0), sft, WORDS, config=TrainConfig(steps=40, lr=3e-3, batch_size=3,
                                                                         progress=False)).lm
    assert _gibberish(lm, WORDS.prompts)[1] == 1.0, "the taught tiny model should answer in words"
    return lm


def _copy(lm):
    import copy

    from obliviate.models import LoadedModel

    return LoadedModel(copy.deepcopy(lm.model), lm.tokenizer, lm.source)


def ascent(ctx, batch):
    return -target_nll(ctx.model, batch.forget), {}


def test_gibberish_stops_the_run_and_keeps_the_last_good_state_on_disk(speaking, tmp_path):
    """A model that answered in words and now answers in noise has collapsed, even with a finite loss; the last
    state that passed the watch is saved as a model directory and the message says how to go on."""
    from obliviate.models import load_model

    config = TrainConfig(steps=20, lr=3e-3, batch_size=3, gibberish_every=2, collapse_loss=1e9, progress=False)
    with pytest.raises(TrainingCollapseError, match="gibberish") as e:
        run_training(_copy(speaking), ascent, WORDS, WORDS, config=config, out_dir=tmp_path)
    message = str(e.value)
    good = int(message.split("(step ")[1].split(")")[0])
    assert good > 0, "this run passes the watch at least once before it collapses"
    assert f"--model {tmp_path / 'last-good'}" in message and "--gibberish-every 0" in message
    saved = load_model(str(tmp_path / "last-good"), device="cpu")
    assert _gibberish(saved, WORDS.prompts)[0] < config.gibberish_share  # it passed the watch
    # and it is the model of step `good` of the same run
    same = run_training(_copy(speaking), ascent, WORDS, WORDS, config=TrainConfig(**{**config.__dict__, "steps": good}))
    for (n, p), q in zip(same.lm.model.named_parameters(), saved.model.parameters()):
        assert torch.allclose(p, q, atol=1e-6), n


def test_an_empty_answer_is_not_a_collapse(speaking):
    """A model that learns to end its answer at once (an empty answer) keeps training: that is not gibberish."""
    silent = Examples(WORDS.prompts, ["\n"] * 3)
    config = TrainConfig(steps=30, lr=3e-3, batch_size=3, gibberish_every=5, progress=False)
    result = run_training(_copy(speaking), sft, silent, WORDS, config=config)
    assert result.steps_done == 30
    assert _gibberish(result.lm, WORDS.prompts)[:2] == (0.0, 0.0)  # every watched answer is now empty


def test_the_watch_reads_retain_prompts_else_neutral_ones_never_forget_prompts():
    from obliviate.text import NEUTRAL_TEXT

    retain = Examples(["Question: Who is Ada?\nAnswer:"], [" a poet"])
    assert watch_prompts(retain) == retain.prompts
    neutral = watch_prompts(None)
    assert len(neutral) == 4 and all(any(t.startswith(p) for t in NEUTRAL_TEXT) for p in neutral)
    assert not set(neutral) & set(DATA.prompts)


def test_the_watch_is_off_at_zero_and_its_settings_are_checked(speaking):
    config = TrainConfig(steps=6, lr=0.05, batch_size=3, gibberish_every=0, collapse_loss=1e9, progress=False)
    assert run_training(_copy(speaking), ascent, WORDS, WORDS, config=config).steps_done == 6
    for bad in (dict(gibberish_every=-1), dict(gibberish_share=0.0), dict(gibberish_share=1.5)):
        with pytest.raises(ConfigError, match="gibberish"):
            TrainConfig(**bad)


def test_the_cli_has_the_watch_and_precision_options():
    from typer.testing import CliRunner

    from obliviate.cli import app

    out = CliRunner().invoke(app, ["unlearn", "--help"], terminal_width=200).output
    assert "--gibberish-every" in out and "--gibberish-share" in out and "--mixed-precision" in out


def test_a_bf16_model_trains_with_fp32_master_weights():
    """An AdamW step of 1e-5 rounds away on a bf16 weight of magnitude > ~3e-3; fp32 master weights keep it."""
    lm = tiny_model(seed=0)
    lm.model.to(torch.bfloat16)
    start = {n: p.detach().float().clone() for n, p in lm.model.named_parameters()}
    result = run_training(lm, sft, DATA, config=TrainConfig(steps=3, lr=1e-5, batch_size=3, progress=False))
    assert result.precision == "bf16"
    moved = [((p.detach() != start[n]).float().mean().item()) for n, p in result.lm.model.named_parameters()
             if "norm" not in n]
    assert all(p.dtype == torch.float32 for p in result.lm.model.parameters())
    assert min(moved) > 0.9, f"share of weights that moved per tensor: {min(moved):.2f}"


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_on_an_fp32_model_learns(precision):
    result = run_training(tiny_model(seed=0), sft, DATA, config=TrainConfig(steps=30, lr=3e-3, batch_size=3,
                                                                            mixed_precision=precision, progress=False))
    assert result.precision == precision and all(p.dtype == torch.float32 for p in result.lm.model.parameters())
    assert result.history[-1]["loss"] < 0.5 * result.history[0]["loss"]
    with pytest.raises(ConfigError, match="mixed_precision"):
        TrainConfig(mixed_precision="fp8")
