"""Resuming is exact: a run that dies mid-way and is resumed from its checkpoint ends where an uninterrupted run
ends, for every method that keeps state of its own (RMU's original activations and c·u, KLUE's neurons, TRU's
traces, IdkPO's reference cache) and for losses that draw random numbers; a checkpoint of another run is refused.
"""

import pytest
import torch

from obliviate.errors import ConfigError
from obliviate.methods import METHODS, Method
from obliviate.methods.base import target_nll
from obliviate.models import tiny_model
from obliviate.train import Examples, TrainConfig, run_training
from obliviate.unlearn import unlearn

STATEFUL = [n for n, m in METHODS.items() if not m.training_free and m.setup is not Method.setup]
CONFIG = TrainConfig(steps=6, lr=1e-2, batch_size=4, checkpoint_every=3, gibberish_every=0, progress=False)

pytestmark = pytest.mark.usefixtures("one_thread")


class Crash(Exception):
    """Stands in for a killed process."""


def _crash_at(method: Method, step: int) -> Method:
    """The method with a loss that raises at `step` (after the checkpoint of step 3 is on disk)."""
    loss = method.loss

    def crashing(ctx, batch):
        if batch.step == step:
            raise Crash
        return loss(ctx, batch)

    method.loss = crashing
    return method


def test_every_method_with_state_is_covered():
    assert {"rmu", "klue", "tru", "idkpo"} <= set(STATEFUL)


@pytest.mark.parametrize("name", STATEFUL)
def test_crash_and_resume_equals_an_uninterrupted_run(name, task, tmp_path):
    settings = {"neuron_fraction": 0.05} if name == "klue" else {}
    full = unlearn(tiny_model(), task, name, train=CONFIG, out_dir=tmp_path / "a", **settings)
    with pytest.raises(Crash):
        unlearn(tiny_model(), task, _crash_at(METHODS.get(name)(**settings), 4), train=CONFIG, out_dir=tmp_path / "b")
    # a new process: a fresh method object and the starting model again, pointed at the checkpoint of step 3
    resumed = unlearn(tiny_model(), task, name, train=CONFIG, out_dir=tmp_path / "b", resume=True, **settings)
    assert [h["step"] for h in resumed.history] == list(range(1, 7))
    assert [round(h["loss"], 5) for h in resumed.history] == [round(h["loss"], 5) for h in full.history]
    for (n, p), q in zip(full.lm.model.named_parameters(), resumed.lm.model.parameters()):
        assert torch.allclose(p, q, atol=1e-6), n


DATA = Examples(["Question: Where was Mara born?\nAnswer:", "Question: Who is Tor?\nAnswer:", "Q: x\nA:"],
                [" Velmora", " a potter", " y"])


def noisy(ctx, batch):
    """A loss that draws random numbers (as dropout does): a resume must continue the same random stream."""
    return target_nll(ctx.model, batch.forget) * (1 + torch.rand(())), {}


def test_resume_continues_the_random_stream(tmp_path):
    config = TrainConfig(steps=6, lr=1e-3, batch_size=2, checkpoint_every=3, gibberish_every=0, progress=False)
    full = run_training(tiny_model(), noisy, DATA, config=config, out_dir=tmp_path / "a")

    def crashing(ctx, batch):
        if batch.step == 4:
            raise Crash
        return noisy(ctx, batch)

    with pytest.raises(Crash):
        run_training(tiny_model(), crashing, DATA, config=config, out_dir=tmp_path / "b")
    torch.manual_seed(123)  # whatever the new process's generator holds, the checkpoint's state wins
    resumed = run_training(tiny_model(), noisy, DATA, config=config, out_dir=tmp_path / "b", resume=True)
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in full.history], rel=1e-6)


def test_a_checkpoint_of_another_run_is_refused(task, tmp_path):
    unlearn(tiny_model(), task, "npo", train=CONFIG, out_dir=tmp_path)
    for other in (dict(method="npo", beta=0.5), dict(method="graddiff"), dict(method="npo", seed=1)):
        seed = other.pop("seed", 0)
        train = TrainConfig(**{**CONFIG.__dict__, "seed": seed})
        with pytest.raises(ConfigError, match="belongs to another run") as e:
            unlearn(tiny_model(), task, other.pop("method"), train=train, out_dir=tmp_path, resume=True, **other)
        assert "\n" not in str(e.value)
    longer = TrainConfig(**{**CONFIG.__dict__, "steps": 8})  # more steps of the same run: allowed
    assert unlearn(tiny_model(), task, "npo", train=longer, out_dir=tmp_path, resume=True).steps == 8
