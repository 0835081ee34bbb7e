"""builtin:realfacts is split by what the ORIGINAL model knows, never by what an unlearned model still answers
(a split by the unlearned model turns the facts it forgot into its holdout and reads "not forgotten")."""

import json

import pytest

from obliviate import pipeline


@pytest.fixture
def run_dir(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "config.json").write_text(json.dumps({"model": "the-original"}))
    return tmp_path


def test_known_base_prefers_the_given_original_then_the_recorded_one_then_the_model(run_dir, monkeypatch):
    monkeypatch.setattr(pipeline, "resolve_model", lambda spec, dtype=None: f"loaded {spec}")
    assert pipeline.known_base(str(run_dir / "model"), "unlearned", "given") == "given"
    assert pipeline.known_base(str(run_dir / "model"), "unlearned", None) == "loaded the-original"
    assert pipeline.known_base(str(run_dir), "itself", None) == "itself"  # not a run's model/ folder
    assert pipeline.recorded_original("default") is None


class TaskLoaded(Exception):
    """Raised by the stand-in load_task, to stop run_eval once the task's base is known."""


def test_eval_splits_the_task_by_the_original(run_dir, monkeypatch):
    def load_task(spec, base):
        raise TaskLoaded(base)

    monkeypatch.setattr(pipeline, "resolve_model", lambda spec, dtype=None: f"loaded {spec}")
    monkeypatch.setattr(pipeline, "load_task", load_task)
    with pytest.raises(TaskLoaded) as stopped:
        pipeline.run_eval(str(run_dir / "model"), "builtin:realfacts", None, None, None, 10, 0, None)
    assert stopped.value.args == ("loaded the-original",)
