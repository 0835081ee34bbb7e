"""Forget card, unlearning orchestration and the CLI on tiny models / small inputs."""

import json

import pytest
from typer.testing import CliRunner

from obliviate.card import Card, evaluate
from obliviate.cli import app
from obliviate.data.people import people_task
from obliviate.errors import ConfigError, UnknownNameError
from obliviate.metrics import METRICS, EvalConfig
from obliviate.models import load_model, tiny_model
from obliviate.train import TrainConfig
from obliviate.unlearn import fact_examples, unlearn


def test_card_has_every_form_and_split_in_range(tmp_path):
    task = people_task("test")
    card = evaluate(tiny_model(), task, ["forms"], config=EvalConfig(max_facts=4))
    values = card.value("forms")
    assert set(values) == {"forget", "retain", "neighbours", "holdout"}
    for form in ("qa", "cloze", "mcq", "true_false", "paraphrase"):
        stats = values["forget"][form]
        assert 0 <= stats["accuracy"] <= 1 and 0 < stats["probability"] <= 1 and stats["n"] > 0
    card.save(tmp_path / "card.json")
    assert Card.load(tmp_path / "card.json").value("forms", "forget", "qa", "n") == values["forget"]["qa"]["n"]
    assert card.metrics["forms"]["version"] and card.config["eval"]["max_facts"] == 4
    assert card.config["dtype"] == "float32"  # the compute dtype changes numbers, so the card records it


def test_card_is_reproducible():
    task = people_task("test")
    a = evaluate(tiny_model(seed=2), task, ["forms"], config=EvalConfig(max_facts=3))
    b = evaluate(tiny_model(seed=2), task, ["forms"], config=EvalConfig(max_facts=3))
    assert a.metrics["forms"]["values"] == b.metrics["forms"]["values"]


def test_unknown_metric_and_method_suggest_names():
    with pytest.raises(UnknownNameError, match="Did you mean forms"):
        evaluate(tiny_model(), people_task("test"), ["form"])
    with pytest.raises(UnknownNameError, match="npo"):
        unlearn(tiny_model(), people_task("test"), "npoo")


def test_fact_examples_forms_and_documents():
    task = people_task("test")
    ex = fact_examples(task.forget, ("qa", "paraphrase"))
    assert len(ex) == len(task.forget) * 3 and all(t.startswith(" ") for t in ex.targets)
    with pytest.raises(ConfigError, match="generative"):
        fact_examples(task.forget, ("mcq",))


def test_unlearn_run_saves_a_plain_hf_model(tmp_path):
    from transformers import AutoModelForCausalLM

    run = unlearn(tiny_model(), people_task("test"), "npo", train=TrainConfig(steps=2, progress=False))
    run.save(tmp_path)
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "model") is not None
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["method"] == "npo" and config["train"]["steps"] == 2 and config["method_config"]["beta"] == 0.1
    assert len(json.loads((tmp_path / "history.json").read_text())) == 2


def test_unlearn_forms_auto_trains_every_direct_form_and_records_them():
    from obliviate.data.forms import direct_forms

    lm = tiny_model()
    run = unlearn(lm, people_task("test"), "ga", forms="auto", train=TrainConfig(steps=1, progress=False))
    assert run.config["forms"] == list(direct_forms(lm.tokenizer)) == ["qa", "cloze"]  # no chat template
    lm.tokenizer.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
                                  "{% if add_generation_prompt %}<assistant>{% endif %}")
    run = unlearn(lm, people_task("test"), "ga", forms="auto", train=TrainConfig(steps=1, progress=False))
    assert run.config["forms"] == ["qa", "chat", "cloze"]


def test_method_overrides_are_checked():
    with pytest.raises(ConfigError, match="no setting"):
        unlearn(tiny_model(), people_task("test"), "npo", train=TrainConfig(steps=1, progress=False), betta=1)
    with pytest.raises(ConfigError, match="beta"):
        unlearn(tiny_model(), people_task("test"), "npo", train=TrainConfig(steps=1, progress=False), beta=-1)


runner = CliRunner()


@pytest.mark.parametrize("command", [["--help"], *([c, "--help"] for c in ("unlearn", "eval", "demo", "attack", "audit", "bench", "report", "edit"))])
def test_help_shows_examples(command):
    result = runner.invoke(app, command)
    assert result.exit_code == 0
    if command != ["--help"]:
        assert "Examples" in result.output


def test_cli_lists_and_shows(tmp_path):
    assert "npo" in runner.invoke(app, ["methods"]).output
    assert "forms" in runner.invoke(app, ["metrics"]).output
    assert "builtin:people" in runner.invoke(app, ["tasks", "list"]).output
    shown = runner.invoke(app, ["tasks", "show", "builtin:people:test"])
    assert shown.exit_code == 0 and "forget" in shown.output


def test_card_does_not_depend_on_the_batch_size():
    """Wider batches only make decoding faster: in fp32 every answer and score is the same."""
    task = people_task("test")
    one = evaluate(tiny_model(seed=3), task, ["forms"], config=EvalConfig(max_facts=4, batch_size=1))
    wide = evaluate(tiny_model(seed=3), task, ["forms"], config=EvalConfig(max_facts=4))
    assert EvalConfig().batch_size == 64
    for split, forms in one.value("forms").items():
        for form, row in forms.items():
            other = wide.value("forms")[split][form]
            assert row["facts"] == other["facts"] and row["outcomes"] == other["outcomes"], (split, form)
            assert row["probability"] == pytest.approx(other["probability"], abs=1e-5), (split, form)
    with pytest.raises(ConfigError, match="batch size"):
        EvalConfig(batch_size=0)
    refused = CliRunner().invoke(app, ["eval", "--model", "no-such-model", "--task", "builtin:people:test",
                                       "--batch-size", "0"])
    # the batch size is refused before the (missing) model is looked up
    assert isinstance(refused.exception, ConfigError) and "batch size must be >= 1" in str(refused.exception)


def test_cli_bad_input_is_one_line(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "obliviate", "eval", "--model", "tiny", "--task",
                           str(tmp_path / "missing.yaml")], capture_output=True, text=True)
    assert done.returncode == 2
    assert "error:" in done.stdout and "missing.yaml" in done.stdout and "Traceback" not in done.stdout + done.stderr


def test_every_default_metric_runs_in_bfloat16():
    """`eval --dtype bfloat16`: metrics that feed float32 states back into the model must cast them."""
    lm, other = load_model("tiny", dtype="bfloat16"), load_model("tiny", dtype="bfloat16")
    names = [name for name, cls in METRICS.items() if cls.default]
    card = evaluate(lm, people_task("test"), names, reference=other, original=other, config=EvalConfig(max_facts=4))
    assert card.config["dtype"] == "bfloat16"
    assert 0 <= card.value("logit_lens", "forget", "mrr_best") <= 1
    assert 0 <= card.value("forms", "forget", "qa", "accuracy") <= 1


def test_demo_rejects_an_unknown_task_before_loading_a_model(tmp_path):
    from obliviate.pipeline import run_demo

    with pytest.raises(ConfigError, match="realfacts or people"):
        run_demo(tmp_path / "demo", task="tofu")


def test_demo_rejects_an_unknown_dtype_before_loading_a_model(tmp_path):
    from obliviate.pipeline import run_demo

    with pytest.raises(ConfigError, match="auto, float32 or bfloat16"):
        run_demo(tmp_path / "demo", dtype="int8")


def test_a_card_notes_the_chat_form_it_could_not_ask():
    """A model without a chat template: the chat form is skipped with a note in the card, not an error."""
    card = evaluate(tiny_model(), people_task("test"), ["forms"], config=EvalConfig(max_facts=2))
    assert card.config["notes"] == ["chat form skipped: tiny has no chat template"]
    assert "chat" not in card.metrics["forms"]["values"]["forget"]
