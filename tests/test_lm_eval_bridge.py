"""The lm-evaluation-harness bridge on the tiny model (seconds): generated task files load in lm-eval, its
accuracy equals obliviate's own MCQ scoring item by item, a model taught the answers scores higher, the metric
is opt-in, and a missing lm_eval is one clear error.
"""

import importlib.util
import re
import sys

import pytest
import torch

from obliviate.card import evaluate
from obliviate.data.forms import probes
from obliviate.data.people import people_task
from obliviate.data.realfacts import real_facts
from obliviate.data.schema import Fact
from obliviate.errors import ConfigError
from obliviate.methods.base import target_nll
from obliviate.metrics import METRICS, EvalConfig
from obliviate.models import tiny_model
from obliviate.scoring import choice_logprobs, score_probes
from obliviate.train import Examples, TrainConfig, run_training
from obliviate.utility_bridge import INSTALL_HINT, evaluate_raw, run_lm_eval, scores, write_mcq_tasks

pytestmark = pytest.mark.usefixtures("one_thread")

needs_lm_eval = pytest.mark.skipif(importlib.util.find_spec("lm_eval") is None, reason=f"needs {INSTALL_HINT}")
TASK = "obliviate_realfacts_mcq"
FACTS = real_facts()[:12]




@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lmeval_tasks")
    assert write_mcq_tasks(folder, {TASK: FACTS, "obliviate_empty_mcq": [Fact("x", "q?", "a")]}) == [TASK]
    return folder


@needs_lm_eval
def test_generated_task_loads_with_obliviates_prompts(folder):
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(folder), include_defaults=False)
    assert TASK in manager.all_tasks and "obliviate_empty_mcq" not in manager.all_tasks  # no MCQ: no file
    task = manager.load([TASK])["tasks"][TASK]
    docs = list(task.test_docs())
    mcq = [p for f in FACTS for p in probes(f, "mcq")]
    assert len(docs) == len(mcq) == len(FACTS)
    for doc, p in zip(docs, mcq):
        assert task.doc_to_text(doc) == p.prompt
        # lm-eval scores context + delimiter + option: exactly obliviate's prompt + choice.
        assert [task.config.target_delimiter + c for c in task.doc_to_choice(doc)] == list(p.choices)
        assert task.doc_to_target(doc) == p.correct


@needs_lm_eval
def test_lm_eval_accuracy_equals_obliviate_mcq_scoring(folder):
    lm = tiny_model()
    raw = evaluate_raw(lm, [TASK], folder, include_defaults=False, log_samples=True)
    acc = scores(raw)[TASK]
    assert 0.0 <= acc["acc"] <= 1.0 and acc["n"] == len(FACTS)

    mcq = [p for f in FACTS for p in probes(f, "mcq")]
    ours = score_probes(lm, mcq)
    assert acc["acc"] == pytest.approx(sum(r.correct for r in ours) / len(ours))
    # Item by item: every option's log-likelihood agrees, not just the average.
    expected = choice_logprobs(lm, [p.prompt for p in mcq], [p.choices for p in mcq])
    for sample in sorted(raw["samples"][TASK], key=lambda s: s["doc_id"]):
        got = torch.tensor([ll for ll, _ in sample["filtered_resps"]])
        assert torch.allclose(got, expected[sample["doc_id"]], atol=1e-3), sample["doc"]["id"]


@needs_lm_eval
def test_a_model_taught_the_answers_scores_higher(folder):
    lm = tiny_model(seed=3)
    before = run_lm_eval(lm, [TASK], folder, include_defaults=False)[TASK]["acc"]
    mcq = [p for f in FACTS for p in probes(f, "mcq")]

    def sft(ctx, batch):
        return target_nll(ctx.model, batch.forget), {}

    taught = run_training(lm, sft, Examples([p.prompt for p in mcq], [p.answer for p in mcq]),
                          config=TrainConfig(steps=40, lr=3e-3, batch_size=len(mcq), progress=False)).lm
    after = run_lm_eval(taught, [TASK], folder, include_defaults=False)[TASK]["acc"]
    assert after >= 0.9 and after > before + 0.3, (before, after)


@needs_lm_eval
def test_results_repeat_with_the_same_seed(folder):
    a = run_lm_eval(tiny_model(), [TASK], folder, include_defaults=False, seed=1)
    b = run_lm_eval(tiny_model(), [TASK], folder, include_defaults=False, seed=1)
    assert a == b


@needs_lm_eval
def test_unknown_task_names_the_folders_searched(folder):
    with pytest.raises(ConfigError, match="does not know task"):
        run_lm_eval(tiny_model(), ["no_such_task"], folder, include_defaults=False)


@needs_lm_eval
def test_metric_is_opt_in_and_agrees_with_the_forms_metric():
    assert not METRICS.get("lm_eval_utility").default
    assert not METRICS.get("wmdp").default  # lm-eval too (tests/test_wmdp.py)
    assert all(cls.default for name, cls in METRICS.items() if name not in ("lm_eval_utility", "wmdp"))
    task = people_task("test")
    card = evaluate(tiny_model(), task, ["forms", "lm_eval_utility"], config=EvalConfig(max_facts=6))
    values = card.value("lm_eval_utility")
    assert set(values) == {"general", "retain"}  # general: realfacts, as people_task has no general split
    assert card.metrics["lm_eval_utility"]["section"] == "keeping"
    assert card.metrics["lm_eval_utility"]["higher_is_better"] is True
    for split in values:
        assert 0.0 <= values[split]["acc"] <= 1.0
    assert values["retain"]["acc"] == pytest.approx(card.value("forms", "retain", "mcq", "accuracy"))
    assert values["retain"]["n"] == card.value("forms", "retain", "mcq", "n")


def test_missing_lm_eval_is_one_clear_error_before_any_metric_runs(monkeypatch):
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # `import lm_eval` now fails, find_spec finds nothing
    forms = METRICS.get("forms")
    monkeypatch.setattr(forms, "compute", lambda self, lm, ctx: pytest.fail("forms ran before the check"))
    with pytest.raises(ConfigError, match=re.escape(INSTALL_HINT)):
        evaluate(tiny_model(), people_task("test"), ["forms", "lm_eval_utility"], config=EvalConfig(max_facts=2))
