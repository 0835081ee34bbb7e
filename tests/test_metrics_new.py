"""Concept-vector drift, priming and RESTOR on a tiny model (seconds): zero for an unchanged model, moving when
the weights or the knowledge change, values in range, and the RESTOR procedure end to end at a tiny budget.
"""

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from obliviate.cli import app
from obliviate.concepts import value_vector_scores
from obliviate.data.forms import qa_prompt, target
from obliviate.data.schema import Fact, MultipleChoice, Task
from obliviate.metrics import METRICS, EvalConfig, EvalContext
from obliviate.metrics.priming import THEMES, keyword_logprobs
from obliviate.models import tiny_model
from obliviate.restor import RestorConfig, recovery, restor, wrong_answer
from obliviate.teach import TeachConfig, copy_model, teach
from obliviate.train import TrainConfig
from obliviate.unlearn import unlearn

pytestmark = pytest.mark.usefixtures("one_thread")

CONFIG = EvalConfig(max_facts=6)
QUICK_TEACH = TeachConfig(epochs=20, lr=1e-2, batch_size=1, warmup_steps=0)


def _compute(name, lm, original, task):
    return METRICS.get(name)().compute(lm, EvalContext(task, CONFIG, original=original))


def _taught_one_fact(lm, task):
    """The tiny model taught the first forget fact alone (20 steps, high lr): a new fact, strongly learned."""
    one = Task("one", forget=task.forget[:1])
    return one, teach(copy_model(lm), one, QUICK_TEACH, progress=False)


# --- concept-vector drift ----------------------------------------------------------------------------------

def _in_range(split):
    assert -1 - 1e-6 <= split["cosine"] <= 1 + 1e-6
    assert 0 - 1e-6 <= split["drift"] <= 2 + 1e-6
    assert 0 <= split["top_token_jaccard"] <= 1 and split["relative_l2"] >= 0 and split["n_vectors"] > 0


def test_drift_needs_the_original(lm, task):
    metric = METRICS.get("concept_drift")()
    assert not metric.applies(EvalContext(task, CONFIG))
    assert metric.applies(EvalContext(task, CONFIG, original=lm))


def test_drift_is_zero_for_an_unchanged_model(lm, task):
    out = _compute("concept_drift", copy_model(lm), lm, task)
    for split in ("forget", "retain"):
        _in_range(out[split])
        assert out[split]["drift"] == pytest.approx(0, abs=1e-6) and out[split]["top_token_jaccard"] == 1.0
        assert out[split]["relative_l2"] == 0.0
    assert out["drift_above_retain"] == pytest.approx(0, abs=1e-6)


def test_drift_after_concept_ablation_hits_the_forget_vectors_only(lm, task):
    ablated = unlearn(copy_model(lm), task, "concept_ablation").lm
    out = _compute("concept_drift", ablated, lm, task)
    _in_range(out["forget"])
    assert out["forget"]["drift"] > 0.9 and out["forget"]["top_token_jaccard"] < 0.1  # measured 1.0 and 0.0
    assert out["retain"]["drift"] < 0.2  # measured 0.03: only vectors shared through re-scoring moved
    assert out["drift_above_retain"] > 0.7


def test_drift_after_training_is_positive(lm, task):
    ga = unlearn(copy_model(lm), task, "ga", train=TrainConfig(steps=2, lr=1e-3, batch_size=4, progress=False)).lm
    out = _compute("concept_drift", ga, lm, task)
    _in_range(out["forget"])
    assert out["forget"]["drift"] > 1e-4 and out["forget"]["top_token_jaccard"] < 1.0
    _, taught = _taught_one_fact(lm, task)
    assert _compute("concept_drift", taught, lm, task)["forget"]["drift"] > out["forget"]["drift"]


def test_value_vector_scores_of_several_concepts_match_one_at_a_time(lm):
    concepts = [[5, 17], [42], [100, 101, 102]]
    together = value_vector_scores(lm, concepts)
    assert together.shape[0] == 3
    for i, ids in enumerate(concepts):
        assert torch.allclose(together[i], value_vector_scores(lm, [ids])[0], atol=1e-5)


# --- priming -----------------------------------------------------------------------------------------------

def test_priming_needs_the_original_and_a_themed_relation(lm, task):
    metric = METRICS.get("priming")()
    assert not metric.applies(EvalContext(task, CONFIG))
    assert metric.applies(EvalContext(task, CONFIG, original=lm))
    years = Task("years", forget=[f for f in task.forget if f.relation == "birth_year"])
    assert years.forget and not metric.applies(EvalContext(years, CONFIG, original=lm))


def test_keyword_is_the_first_answer_token(lm, task):
    fact = next(f for f in task.forget if f.relation == "birth_city")
    themed, own = keyword_logprobs(lm, [fact])
    first = lm.tokenizer(target(fact.answer), add_special_tokens=False)["input_ids"][0]
    for prompt, got in ((THEMES["birth_city"][0], themed[0, 0]), (qa_prompt(fact.question), own[0])):
        ids = torch.tensor([lm.tokenizer(prompt, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            expected = lm.model(input_ids=ids).logits[0, -1].log_softmax(-1)[first]
        assert float(got) == pytest.approx(float(expected), abs=1e-4)


def test_priming_is_one_for_an_unchanged_model(lm, task):
    out = _compute("priming", copy_model(lm), lm, task)["forget"]
    assert out["log_priming"] == pytest.approx(0, abs=1e-6) and out["log_memorisation"] == pytest.approx(0, abs=1e-6)
    assert out["n_facts"] == 5 and out["n_prefixes"] == 4  # 6 relations of one person, birth_year not themed


def test_priming_moves_after_teaching_a_fact(lm, task):
    one, taught = _taught_one_fact(lm, task)
    out = _compute("priming", taught, lm, one)["forget"]
    assert all(math.isfinite(v) for v in out.values())
    assert out["log_memorisation"] > 1.0  # learned in its own context (measured 6.4)
    assert out["log_priming"] > 0.5  # and it leaks into unrelated same-theme prompts (measured 5.9)


# --- RESTOR ------------------------------------------------------------------------------------------------

def test_recovery_formula_on_constructed_numbers():
    assert recovery(1.0, 0.2, 0.6) == pytest.approx(0.5)
    assert recovery(1.0, 0.2, 1.0) == pytest.approx(1.0)
    assert recovery(1.0, 0.2, 0.2) == 0.0
    assert recovery(0.8, 0.4, 0.2) == pytest.approx(-0.5)  # unlearning made it worse than corrupted
    assert recovery(0.5, 0.5, 0.9) is None and recovery(0.4, 0.6, 0.9) is None  # the corruption did not take


def test_wrong_answer_prefers_a_perturbed_answer_then_an_mcq_option():
    fact = Fact("f", "Where?", "Velmora", perturbed_answers=("Quistal", "Brisca"))
    assert wrong_answer(fact) == "Quistal"
    mcq = MultipleChoice("Where?", ("Velmora", "Ashkelt"), 0)
    assert wrong_answer(Fact("g", "Where?", "Velmora", mcq=mcq)) == "Ashkelt"
    assert wrong_answer(Fact("h", "Where?", "Velmora", perturbed_answers=("velmora",))) is None


@pytest.fixture(scope="module")
def clean(task):
    """A tiny model that knows 8 people facts (years left out: digits take many steps to memorise)."""
    facts = [f for f in task.retain if f.relation != "birth_year"][:8]
    clean = teach(tiny_model(), Task("clean", forget=facts), TeachConfig(epochs=60, lr=1e-2, batch_size=8,
                                                                          warmup_steps=0), progress=False)
    return clean, facts


# The tiny model glues junk to its answers ("weaverldeol"), which the strict judge rightly refuses; the judge is
# tested on its own (tests/test_judge.py), so these runs read answers with the lenient one.
TINY_RESTOR = RestorConfig(method="npo", n_corrupt=2, n_context=2, progress=False, judge="contains",
                           corrupt=TeachConfig(epochs=30, lr=1e-2, batch_size=4, warmup_steps=0),
                           train=TrainConfig(steps=5, lr=1e-3, batch_size=2))


def test_restor_runs_end_to_end(clean, tmp_path):
    lm, facts = clean
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    result = restor(lm, facts, TINY_RESTOR)
    assert all(torch.equal(v, before[k]) for k, v in lm.model.state_dict().items()), "the clean model was changed"
    clean_k, corrupted, unlearned = (result.models[m] for m in ("clean", "corrupted", "unlearned"))
    assert clean_k["accuracy"] == 1.0 and clean_k["wrong_rate"] == 0.0  # only known facts are corrupted
    assert corrupted["wrong_rate"] > clean_k["wrong_rate"] and result.corruption_took  # measured 1.0 vs 0.0
    assert unlearned["wrong_rate"] < corrupted["wrong_rate"]  # the corruption was unlearned (measured 0.0)
    for k in result.models.values():
        assert all(0.0 <= v <= 1.0 for v in k.values())
    assert result.recovery == pytest.approx(recovery(1.0, corrupted["accuracy"], unlearned["accuracy"]))
    assert -1.0 <= result.recovery <= 1.0
    assert [r["true"] != r["wrong"] for r in result.facts] == [True, True] and len(result.context) == 2
    saved = json.loads(result.save(tmp_path / "restor.json").read_text())
    assert saved["config"]["method"] == "npo" and saved["config"]["train"]["steps"] == 5
    assert saved["recovery"] == result.recovery and set(saved["models"]) == {"clean", "corrupted", "unlearned"}


def test_restor_refuses_a_model_that_knows_too_few_facts(task):
    from obliviate.errors import ConfigError

    with pytest.raises(ConfigError, match="n_corrupt"):
        restor(tiny_model(), task.retain[:4], TINY_RESTOR)


def test_restor_command_writes_json_with_its_config(clean, tmp_path, monkeypatch):
    import obliviate.pipeline

    lm, facts = clean
    monkeypatch.setattr(obliviate.pipeline, "resolve_model", lambda spec: lm)
    monkeypatch.setattr(obliviate.pipeline, "load_task", lambda spec, base=None: Task("clean", retain=facts))
    result = CliRunner().invoke(app, ["restor", "-m", "tiny", "-t", "clean", "--method", "ga", "--n-corrupt", "2",
                                      "--n-context", "2", "--corrupt-epochs", "30", "--corrupt-lr", "1e-2",
                                      "--steps", "3", "--lr", "1e-3", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "restor.json").read_text())
    assert saved["config"]["method"] == "ga" and saved["config"]["model"] == "tiny"
    assert saved["config"]["corrupt"]["epochs"] == 30 and saved["config"]["train"]["steps"] == 3
    assert "recovery" in result.output
