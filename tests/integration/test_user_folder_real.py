"""Issue 18's user: a folder of real facts the default model knows, written as a user writes them (question,
answer, cloze, subject per line; no ids, no paraphrases, no neighbours), unlearned from the command line with
`--until forgotten` and the method's defaults, the way the README tells a user to.

The folder is built from builtin:realfacts: forget.jsonl (the 20 forget facts of forget20), retain.jsonl (its 122
retain facts) and holdout.jsonl (60 facts the model does not know: the control). A benchmark (~13-20 min a
method on 2 cores; docs/methods.md, "A user's folder"). On the draw of 2026-12-06, with SAND's answer located by
substring, neither NPO nor SAND met the rule; on the stratified draw (2026-12-07) both did: SAND at step 40 (55 with
the probe on the card's facts), NPO at step 50.
"""

import json

import pytest
from typer.testing import CliRunner

from obliviate.cli import app
from obliviate.pipeline import load_task
from obliviate.runs import read_json

pytestmark = pytest.mark.benchmark
USER_FIELDS = ("question", "answer", "cloze", "subject")


@pytest.fixture(scope="module")
def folder(base, tmp_path_factory):
    task = load_task("builtin:realfacts:forget20", base)
    out = tmp_path_factory.mktemp("user-task")
    for name, facts in (("forget", task.forget), ("retain", task.retain), ("holdout", task.holdout[:60])):
        rows = [{k: getattr(f, k) for k in USER_FIELDS if getattr(f, k)} for f in facts]
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def obliviate(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def unlearn_folder(folder, method: str, out) -> dict:
    """The user's three commands: unlearn until forgotten (a 60-step budget), the card, the report."""
    print(obliviate("unlearn", "--model", "default", "--task", str(folder), "--method", method,
                    "--until", "forgotten", "--steps", "60", "--out", str(out)))
    print(obliviate("eval", "--model", str(out / "model"), "--task", str(folder), "--original", "default",
                    "--metrics", "forms", "--out", str(out)))
    obliviate("report", str(out))
    return read_json(out / "config.json")["until"]


def kept_scores(until: dict) -> dict:
    return next(c["scores"] for c in until["curve"] if c["step"] == until["step"])


@pytest.mark.parametrize("method", ["npo", "sand"])
def test_until_forgotten_on_a_users_folder_trains_and_probes_the_chat_form(folder, method, tmp_path):
    until = unlearn_folder(folder, method, tmp_path / method)
    kept, before = kept_scores(until), until["baseline"]
    print(method, json.dumps({"before": before, "kept": kept, "met": until["met"]}))
    assert until["forms"] == ["qa", "chat", "cloze"]  # the chat form came from the template, not the user
    assert before["forget"]["chat"] >= 0.7 and before["holdout"]["chat"] <= 0.1
    assert "## Stop when forgotten" in (tmp_path / method / "report.md").read_text()  # the curve, per form
    # Measured 2026-12-06 on the earlier draw (probe, n = 20; neither met the rule in 60 steps): forget chat 0.90 ->
    # NPO 0.30 (step 60 kept), SAND 0.25 (step 15 kept); retain chat 0.80 -> NPO 0.60, SAND 0.70. 2026-12-07, SAND
    # on today's draw: met at step 40, probe forget chat 0.90 -> 0.05, cloze 0.70 -> 0.05, retain chat 0.85 -> 0.90
    # (the card on 60 retain facts: 0.80). With the probe on the card's facts (later that day): met at step 55, forget
    # chat 0.90 -> 0.00, cloze 0.70 -> 0.05, retain chat 0.87 -> 0.82 (60 facts). NPO, same probe: met at step 50, forget
    # chat 0.90 -> 0.10, cloze 0.70 -> 0.00, retain chat 0.87 -> 0.83 (its holdout chat rose 0.02 -> 0.23).
    assert kept["forget"]["chat"] <= before["forget"]["chat"] - 0.5, (before, kept)
    assert kept["retain"]["chat"] >= before["retain"]["chat"] - (0.3 if method == "npo" else 0.2), (before, kept)
    if method == "sand":  # QA and cloze at the control's level
        for form in ("qa", "cloze"):
            assert kept["forget"][form] <= kept["holdout"][form] + 0.1, (form, kept)
