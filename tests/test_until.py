"""Stop when forgotten (obliviate.until): the rule, the stop, the best checkpoint put back, the curve saved."""

from dataclasses import replace

import pytest
import torch

from obliviate.data.people import people_task
from obliviate.errors import ConfigError
from obliviate.models import tiny_model
from obliviate.runs import read_json
from obliviate.train import TrainConfig
from obliviate.unlearn import unlearn
from obliviate.until import Check, UntilConfig, UntilForgotten

pytestmark = pytest.mark.usefixtures("one_thread")
TRAIN = TrainConfig(steps=6, progress=False, gibberish_every=0)


def _scores(forget: float, control: float = 0.0, retain: float = 0.9, neighbours: float = 0.9) -> dict:
    return {"forget": {"qa": forget, "cloze": forget, "mean": forget},
            "holdout": {"qa": control, "cloze": control, "mean": control},
            "retain": {"qa": retain, "cloze": retain, "mean": retain},
            "neighbours": {"qa": neighbours, "cloze": neighbours, "mean": neighbours}}


def _rule(**config) -> UntilForgotten:
    until = UntilForgotten(people_task("test"), tiny_model().tokenizer, UntilConfig(**config))
    until.forms = ("qa", "cloze")
    until.baseline = Check(0, _scores(0.9))
    return until


@pytest.mark.parametrize("forget, control, retain, neighbours, forgotten, kept, shortfall", [
    (0.05, 0.0, 0.9, 0.9, True, True, 0.0),      # within the tolerance of the control
    (0.30, 0.25, 0.9, 0.9, True, True, 0.0),     # a control that rose lets forget rise with it
    (0.20, 0.0, 0.9, 0.9, False, True, 0.15),    # 0.20 above a 0 control, tolerance 0.05
    (0.0, 0.0, 0.80, 0.9, True, False, 0.10),    # retain fell 0.10 in both forms, bound 0.05: 2 x 0.05 short
    (0.0, 0.0, 0.9, 0.75, True, False, 0.10),    # neighbours fell 0.15 in both forms, bound 0.10
])
def test_the_rule_reads_forget_against_the_control_and_keeps_retain(forget, control, retain, neighbours, forgotten,
                                                                     kept, shortfall):
    check = _rule()._judge(Check(5, _scores(forget, control, retain, neighbours)))
    assert (check.forgotten, check.kept) == (forgotten, kept)
    assert check.shortfall == pytest.approx(shortfall)


def test_a_gain_in_one_retain_form_does_not_hide_a_loss_in_another():
    scores = _scores(0.0)
    scores["retain"].update(qa=1.0, cloze=0.7)  # mean 0.85, within 0.05 of 0.9; cloze alone fell 0.2
    check = _rule()._judge(Check(5, scores))
    assert not check.kept and check.shortfall == pytest.approx(0.15)


def test_one_form_above_the_control_is_not_forgotten():
    scores = _scores(0.0)
    scores["forget"]["cloze"] = 0.4
    assert not _rule()._judge(Check(5, scores)).forgotten


def test_a_task_without_a_control_is_refused():
    task = replace(people_task("test"), holdout=[])
    with pytest.raises(ConfigError, match="holdout"):
        unlearn(tiny_model(), task, "ga", train=TRAIN, until=UntilConfig(every=2))


def test_a_training_free_method_has_no_steps_to_check_between():
    with pytest.raises(ConfigError, match="training-free"):
        unlearn(tiny_model(), people_task("test"), "in_context", until=UntilConfig(every=2))


def test_an_interrupted_until_run_resumes_to_the_same_curve_and_weights(monkeypatch, tmp_path):
    """A run stopped at step 4 (its checkpoint holds the checks at 2 and 4 and the best weights) and resumed to 6
    ends where an uninterrupted run ends: the same curve, the same best step, the same weights put back."""
    _scripted(monkeypatch, {2: 0.5, 4: 0.2, 6: 0.6})
    task, until = people_task("test"), UntilConfig(every=2)
    whole = unlearn(tiny_model(), task, "ga", train=TRAIN, until=until)
    train = replace(TRAIN, checkpoint_every=2)
    unlearn(tiny_model(), task, "ga", train=replace(train, steps=4), until=until, out_dir=tmp_path)
    started = []
    monkeypatch.setattr(UntilForgotten, "start", lambda self, lm: started.append(lm))
    resumed = unlearn(tiny_model(), task, "ga", train=train, until=until, out_dir=tmp_path, resume=True)
    assert not started  # the baseline came from the checkpoint, not from the resumed (untrained) model
    assert resumed.config["until"] == whole.config["until"] and resumed.steps == 4
    for (name, a), b in zip(resumed.lm.model.named_parameters(), whole.lm.model.parameters()):
        assert torch.equal(a, b), name
    with pytest.raises(ConfigError, match="another run"):  # another rule is another run
        unlearn(tiny_model(), task, "ga", train=train, until=UntilConfig(every=2, tolerance=0.2), out_dir=tmp_path,
                resume=True)


@pytest.mark.parametrize("bad", [dict(every=0), dict(max_facts=0), dict(tolerance=1.5), dict(keep_within=-0.1)])
def test_bad_until_settings_are_refused(bad):
    with pytest.raises(ConfigError):
        UntilConfig(**bad)


def _scripted(monkeypatch, forget_by_step: dict[int, float]) -> None:
    """Make the probe read `forget_by_step[step]` (0.9 before training) instead of scoring the tiny model."""
    def measure(self, lm, step):
        return Check(step, _scores(forget_by_step.get(step, 0.9)))
    monkeypatch.setattr(UntilForgotten, "measure", measure)


def test_training_stops_at_the_first_check_that_meets_the_rule(monkeypatch):
    _scripted(monkeypatch, {2: 0.5, 4: 0.0, 6: 0.0})
    run = unlearn(tiny_model(), people_task("test"), "ga", train=TRAIN, until=UntilConfig(every=2))
    assert run.steps == 4 and [h["step"] for h in run.history] == [1, 2, 3, 4]
    assert [h["probe"]["step"] for h in run.history if "probe" in h] == [2, 4]
    assert run.config["until"]["met"] and run.config["until"]["step"] == 4
    assert run.config["until"]["baseline"]["forget"]["qa"] == 0.9


def test_when_the_rule_is_not_met_the_best_checkpoint_is_put_back(monkeypatch):
    _scripted(monkeypatch, {2: 0.5, 4: 0.2, 6: 0.6})
    run = unlearn(tiny_model(), people_task("test"), "ga", train=TRAIN, until=UntilConfig(every=2))
    summary = run.config["until"]
    assert not summary["met"] and summary["step"] == 4 and summary["steps_trained"] == 6
    assert "NOT met" in summary["message"] and [c["step"] for c in summary["curve"]] == [2, 4, 6]
    assert run.steps == 4
    # training is deterministic: a plain 4-step run must hold the same weights as the checkpoint put back
    four = unlearn(tiny_model(), people_task("test"), "ga", train=replace(TRAIN, steps=4))
    for (name, a), b in zip(run.lm.model.named_parameters(), four.lm.model.parameters()):
        assert torch.equal(a, b), name


def test_the_probe_scores_every_split_in_every_shared_direct_form():
    lm = tiny_model()
    until = UntilForgotten(people_task("test"), lm.tokenizer, UntilConfig(max_facts=3))
    check = until.measure(lm, 0)
    assert set(check.scores) == {"forget", "holdout", "retain", "neighbours"}
    assert until.forms == ("qa", "cloze")  # the tiny tokenizer has no chat template
    for split in check.scores.values():
        assert set(split) == {"qa", "cloze", "mean"} and all(0.0 <= v <= 1.0 for v in split.values())
    assert {s: len(f) for s, f in until.facts.items()} == {"forget": 3, "holdout": 3, "retain": 3, "neighbours": 3}


def test_the_probe_reads_the_facts_the_card_reads():
    from obliviate.metrics import EvalConfig
    from obliviate.metrics.base import EvalContext

    task = people_task("test")
    card = EvalContext(task, EvalConfig(max_facts=4))
    until = UntilForgotten(task, tiny_model().tokenizer, UntilConfig(max_facts=4))
    for split in ("forget", "holdout", "retain", "neighbours"):
        assert [f.id for f in until.facts[split]] == [f.id for f in card.facts(split)], split


def test_keep_picks_the_retain_stream_and_is_recorded(monkeypatch):
    import obliviate.unlearn as module

    asked = []
    real = module.keep_examples
    monkeypatch.setattr(module, "keep_examples", lambda task, split, *a, **k: asked.append(split) or real(task, split, *a, **k))
    run = unlearn(tiny_model(), people_task("test"), "graddiff", train=replace(TRAIN, steps=1), keep="neighbours+retain")
    assert asked == ["neighbours+retain"] and run.config["keep_split"] == "neighbours+retain"
    with pytest.raises(ConfigError, match="keep must be one of"):
        unlearn(tiny_model(), people_task("test"), "graddiff", train=TRAIN, keep="everything")


def test_the_cli_stops_when_forgotten_and_says_so(tmp_path):
    from typer.testing import CliRunner

    from obliviate.cli import app

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["unlearn", "--model", "tiny", "--task", "builtin:people:test", "--method", "ga",
                                      "--steps", "4", "--until", "forgotten", "--check-every", "2", "--probe-facts", "5",
                                      "--out", str(out)],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    until = read_json(out / "config.json")["until"]
    # the random tiny model answers no forget and no holdout fact: forgotten (at the control) at the first check
    assert until["met"] and until["step"] == 2 and "until forgotten" in result.output
    assert until["rule"]["max_facts"] == 5 and until["n"] == {"forget": 5, "holdout": 5, "retain": 5, "neighbours": 5}
    assert [h["step"] for h in read_json(out / "history.json") if "probe" in h] == [2]
    bad = CliRunner().invoke(app, ["unlearn", "--model", "tiny", "--task", "builtin:people:test", "--until", "never"])
    assert bad.exit_code != 0 and "forgotten" in bad.output
