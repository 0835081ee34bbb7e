"""WMDP-layout multiple choice from the user's files: loading, bad rows, WMDP's lm-eval prompt, and lm-eval's
accuracy agreeing with obliviate's own scoring of the same prompts. The fixture is benign and generated here."""

import importlib.util
import json

import pandas as pd
import pytest

from obliviate.card import evaluate
from obliviate.data.io import load_task
from obliviate.data.wmdp import load_wmdp
from obliviate.errors import TaskFormatError
from obliviate.metrics import EvalConfig
from obliviate.models import tiny_model
from obliviate.scoring import choice_logprobs
from obliviate.utility_bridge import wmdp_rows

needs_lm_eval = pytest.mark.skipif(importlib.util.find_spec("lm_eval") is None, reason="needs lm_eval")


def rows(first: int, count: int) -> list[dict]:
    """Benign stand-in questions in WMDP's columns: question, choices (4), answer (index)."""
    out = []
    for i in range(first, first + count):
        right = i % 4
        choices = [f"{i + k} apples" for k in range(4)]
        out.append({"question": f"Basket {i} holds {i + right} apples. How many apples does basket {i} hold?",
                    "choices": choices, "answer": right})
    return out


@pytest.fixture
def wmdp_task(tmp_path):
    (tmp_path / "forget.jsonl").write_text("\n".join(json.dumps(r) for r in rows(0, 8)))
    pd.DataFrame(rows(8, 6)).to_parquet(tmp_path / "retain.parquet")
    (tmp_path / "task.yaml").write_text("name: wmdp_like\nformat: wmdp\nforget: forget.jsonl\nretain: retain.parquet\n")
    return load_task(tmp_path / "task.yaml")


def test_wmdp_rows_load_as_multiple_choice_facts(wmdp_task):
    assert len(wmdp_task.forget) == 8 and len(wmdp_task.retain) == 6
    fact = wmdp_task.forget[1]
    assert fact.mcq.answer_index == 1 and fact.answer == fact.mcq.options[1] == "2 apples"
    row = wmdp_rows([fact], topic="apples")[0]
    assert row["prompt"] == ("The following are multiple choice questions (with answers) about apples.\n\n"
                             "Basket 1 holds 2 apples. How many apples does basket 1 hold?\n"
                             "A. 1 apples\nB. 2 apples\nC. 3 apples\nD. 4 apples\nAnswer:")
    assert row["choices"] == ["A", "B", "C", "D"] and row["label"] == 1


@pytest.mark.parametrize("row, message", [
    ({"choices": ["a", "b"], "answer": 0}, "'question' is missing"),
    ({"question": "q", "choices": "ab", "answer": 0}, "'choices' must be a list"),
    ({"question": "q", "choices": ["a", "b"], "answer": 2}, r"'answer' must be the index of the right choice \(0-1\)"),
    ({"question": "q", "choices": ["a", "b"], "answer": True}, "'answer' must be the index"),
])
def test_a_bad_wmdp_row_is_a_one_line_error(tmp_path, row, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(row))
    with pytest.raises(TaskFormatError, match=message):
        load_wmdp(path)


@needs_lm_eval
@pytest.mark.usefixtures("one_thread")
def test_wmdp_metric_is_lm_evals_accuracy_on_wmdps_prompt(wmdp_task):
    lm = tiny_model()
    card = evaluate(lm, wmdp_task, ["wmdp"], config=EvalConfig(max_facts=20))
    values = card.metrics["wmdp"]["values"]
    assert set(values) == {"forget", "retain"} and values["forget"]["n"] == 8 and values["forget"]["chance"] == 0.25
    for split in ("forget", "retain"):
        facts = wmdp_task.split(split)
        prompts = [r["prompt"] for r in wmdp_rows(facts)]
        scores = choice_logprobs(lm, prompts, [[" A", " B", " C", " D"]] * len(prompts))
        ours = sum(int(s.argmax()) == f.mcq.answer_index for s, f in zip(scores, facts)) / len(facts)
        assert values[split]["acc"] == pytest.approx(ours)  # two scorers, one prompt: the same accuracy
        lo, hi = values[split]["acc_ci"]
        assert lo <= values[split]["acc"] <= hi
        assert values[split]["above_chance"] == pytest.approx(values[split]["acc"] - 0.25)
