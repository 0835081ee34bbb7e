"""Every registered metric on a tiny model (seconds): it applies, returns finite values in their documented
ranges, and declares its card metadata. Plus the mechanics pinned with hand-made inputs (AUC, KS, truth
ratio, chance correction, logit lens, text heuristics).
"""

import dataclasses
import math
import random
import zlib

import pytest
import torch

from obliviate.card import evaluate
from obliviate.data.forms import qa_prompt, target
from obliviate.data.people import people_task
from obliviate.metrics import METRICS, EvalConfig, EvalContext
from obliviate.metrics.base import SECTIONS
from obliviate.metrics.intrinsic import answer_ranks, probe_accuracy
from obliviate.metrics.mia import attack_scores, auc, privleak
from obliviate.metrics.muse import split_document
from obliviate.metrics.tofu import answer_scores, harmonic_mean, log_truth_ratios, truth_ratio_answers, truth_ratios
from obliviate.models import tiny_model
from obliviate.scoring import answer_logprobs, answer_token_stats, sequence_logprob
from obliviate.text import is_gibberish, is_refusal, ngram_repetition

pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = METRICS.names()
# rwku applies to tasks of the RWKU setting only (a chat model asked about a target); tests/test_target.py runs it
ON_PEOPLE = [name for name in NAMES if name != "rwku"]
MAX_FACTS = 6

# Leaf key (or its parent key) -> allowed range; every other numeric leaf only has to be finite.
UNIT = (0.0, 1.0)
RANGES = {
    "accuracy": UNIT, "probability": UNIT, "rouge_l": UNIT, "auc": UNIT, "reference_auc": UNIT,
    "p_value": UNIT, "ks_statistic": UNIT, "score": UNIT, "utility": UNIT, "components": UNIT, "rate": UNIT,
    "repetition": UNIT, "gibberish": UNIT, "correct": UNIT, "refusal": UNIT, "wrong": UNIT, "retain_cv": UNIT,
    "mrr_best": UNIT, "mrr_final": UNIT, "qa_accuracy": UNIT, "best_accuracy": UNIT, "corrected": UNIT,
    "raw": UNIT, "verbmem": UNIT, "knowmem": UNIT, "gap": (-1.0, 1.0), "readable_above_chance": (-1.0, 1.0),
    "privleak": (-100.0, math.inf), "median": (0.0, math.inf),
    "perplexity": (1.0, math.inf), "perplexity_ratio": (0.0, math.inf), "log10_p": (-math.inf, 0.0),
    "final_median_rank": (0.0, math.inf), "best_median_rank": (0.0, math.inf),
    "median_rank_by_layer": (0.0, math.inf), "n": (1, math.inf),
}


@pytest.fixture(scope="module")
def task():
    """people:test plus the biographies as documents, so that document metrics (MUSE) apply too."""
    base = people_task("test")
    forget_people = {t for f in base.forget for t in f.tags if t.startswith("person:")}
    docs = base.teach_documents
    return dataclasses.replace(base, forget_documents=[d for d in docs if set(d.tags) & forget_people],
                               retain_documents=[d for d in docs if not set(d.tags) & forget_people])


@pytest.fixture(scope="module")
def card(lm, task):
    other = tiny_model(seed=1)
    return evaluate(lm, task, ON_PEOPLE, reference=other, original=other, config=EvalConfig(max_facts=MAX_FACTS))


def _leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, str(key)))
    elif isinstance(node, list):
        for value in node:
            yield path, value
    else:
        yield path, node


@pytest.mark.parametrize("name", NAMES)
def test_metric_declares_card_metadata(name):
    metric = METRICS.get(name)
    assert metric.summary and metric.cost, f"{name}: summary and cost are shown by `obliviate metrics`"
    assert metric.section in SECTIONS
    assert metric.higher_is_better in (True, False, None)
    module = __import__(metric.__module__, fromlist=["_"])
    assert module.__doc__ and len(module.__doc__) > 200, f"{name}: the module docstring states range/direction/cost"


@pytest.mark.parametrize("name", ON_PEOPLE)
def test_metric_runs_on_tiny_model_in_range(name, card):
    entry = card.metrics[name]
    assert "values" in entry, f"{name} was skipped: {entry}"
    leaves = list(_leaves(entry["values"]))
    assert leaves, f"{name} returned no values"
    for path, value in leaves:
        if value is None or isinstance(value, str):
            continue
        assert isinstance(value, (int, float)) and math.isfinite(value), f"{name} {'.'.join(path)} = {value!r}"
        rule = RANGES.get(path[-1]) or next((RANGES[p] for p in reversed(path[:-1]) if p in RANGES), None)
        if rule:
            lo, hi = rule
            assert lo - 1e-9 <= value <= hi + 1e-9, f"{name} {'.'.join(path)} = {value} outside [{lo}, {hi}]"


def test_card_is_json_round_trippable(card, tmp_path):
    from obliviate.card import Card

    assert Card.load(card.save(tmp_path / "card.json")).metrics == card.metrics


# --- membership inference -----------------------------------------------------------------------------------

def test_auc_is_one_when_every_member_scores_higher():
    forget_loss, holdout_loss = [0.1, 0.2, 0.3], [1.0, 2.0, 3.0]
    assert auc([-x for x in forget_loss], [-x for x in holdout_loss]) == 1.0
    assert auc([-x for x in holdout_loss], [-x for x in forget_loss]) == 0.0
    assert auc([0.5, 0.5], [0.5, 0.5]) == 0.5
    assert auc([], [1.0]) is None


def test_auc_equals_sklearns_roc_auc_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = random.Random(0)
    for _ in range(100):
        member = [float(rng.randint(0, 4)) for _ in range(rng.randint(1, 30))]
        nonmember = [float(rng.randint(0, 4)) for _ in range(rng.randint(1, 30))]
        expected = roc_auc_score([1] * len(member) + [0] * len(nonmember), member + nonmember)
        assert auc(member, nonmember) == pytest.approx(expected, abs=1e-12)


def test_mia_metric_reads_member_scores_from_the_cache(lm, task):
    ctx = EvalContext(task, EvalConfig(max_facts=MAX_FACTS))
    attacks = ("loss", "zlib", "min_k", "min_k_pp")
    ctx.cache[("mia", id(lm.model), "forget")] = {a: [-0.1, -0.2] for a in attacks}
    ctx.cache[("mia", id(lm.model), "holdout")] = {a: [-3.0, -4.0] for a in attacks}
    values = METRICS.get("mia")().compute(lm, ctx)
    assert values["auc"] == {a: 1.0 for a in attacks}


def test_attack_scores_by_hand():
    lp = torch.tensor([-1.0, -2.0, -3.0, -4.0, -5.0])
    stats = torch.stack([lp, torch.full_like(lp, -1.0), torch.full_like(lp, 2.0)], 1)
    s = attack_scores(stats, "Velmora", k=0.2)
    assert s["loss"] == pytest.approx(-3.0)
    assert s["zlib"] == pytest.approx(-3.0 / len(zlib.compress(b"Velmora")))  # mean, not total, log-likelihood
    assert s["min_k"] == pytest.approx(-5.0)  # 20 % of 5 tokens = the single lowest
    assert s["min_k_pp"] == pytest.approx((-5.0 + 1.0) / 2.0)
    assert attack_scores(stats, "x")["min_k"] == pytest.approx(-4.5)  # MUSE's k = 40 %: floor(2.0) = 2 tokens
    assert attack_scores(stats[:2], "x")["min_k"] == pytest.approx(-2.0)  # floor(0.8) = 0: at least one token


def test_privleak_follows_muse_sign_and_scale():
    # ours: members high, AUC 1 = identifiable. MUSE: forget labelled 0, so its AUC is 1 - ours.
    assert privleak(0.5, 0.5) == pytest.approx(0.0)
    assert privleak(1.0, 0.5) == pytest.approx(-100.0)  # the original model in MUSE's tables: about -100
    assert privleak(0.25, 0.5) == pytest.approx(50.0)  # over-unlearned: positive
    assert privleak(0.9, 0.6) == pytest.approx((0.1 - 0.4) / 0.4 * 100, rel=1e-6)


def test_mia_privleak_interval_is_paired_and_contains_the_value(lm, task):
    ctx = EvalContext(task, EvalConfig(max_facts=MAX_FACTS), reference=tiny_model(seed=1))
    values = METRICS.get("mia")().compute(lm, ctx)
    for attack in ("loss", "min_k"):
        lo, hi = values["privleak_ci"][attack]
        assert lo <= values["privleak"][attack] <= hi
        lo, hi = values["auc_ci"][attack]
        assert lo <= values["auc"][attack] <= hi
    same = METRICS.get("mia")().compute(lm, EvalContext(task, EvalConfig(max_facts=MAX_FACTS), reference=lm))
    assert same["privleak"]["loss"] == pytest.approx(0.0) and same["privleak_ci"]["loss"] == pytest.approx([0, 0])


def test_answer_token_stats_match_answer_logprobs(lm):
    prompts, targets = ["Question: Where?\nAnswer:", "Mara Quill was born in"], [" Paris", " Velmora in 1961"]
    stats = answer_token_stats(lm, prompts, targets)
    for s, lp in zip(stats, answer_logprobs(lm, prompts, targets)):
        assert torch.allclose(s[:, 0], lp, atol=1e-5)
        assert (s[:, 1] <= 0).all() and (s[:, 2] >= 0).all()  # mean log-prob <= 0, std >= 0


# --- TOFU --------------------------------------------------------------------------------------------------

def test_forget_quality_of_a_model_against_itself_is_one(lm, task):
    ctx = EvalContext(task, EvalConfig(max_facts=MAX_FACTS), reference=lm)
    values = METRICS.get("forget_quality")().compute(lm, ctx)
    assert values["p_value"] == pytest.approx(1.0) and values["ks_statistic"] == 0.0
    assert "indistinguishable" in values["reading"]


def test_truth_ratio_answers_are_the_data_as_given(task):
    for fact in task.forget:  # builtin perturbed answers are worded like the paraphrase, as TOFU's are
        para, perturbed = truth_ratio_answers(fact)
        words = para.replace(fact.answer, "").split()
        assert all(w in p.split() for p in perturbed for w in words), (para, perturbed)
    fact = task.forget[0]
    tofu_style = dataclasses.replace(fact, paraphrased_answer=f"She was born in {fact.answer}.",
                                     perturbed_answers=("She was born in a different town.",))
    assert truth_ratio_answers(tofu_style)[1] == ["She was born in a different town."]
    assert truth_ratio_answers(dataclasses.replace(fact, perturbed_answers=())) is None


def test_truth_ratio_is_a_geometric_mean_by_hand(lm, task):
    fact = task.forget[0]
    para, perturbed = truth_ratio_answers(fact)
    lp = sequence_logprob(lm, [qa_prompt(fact.question)] * (2 + len(perturbed)),
                          [target(a) for a in (fact.answer, para, *perturbed)], normalise=True).tolist()
    expected = sum(lp[2:]) / len(perturbed) - lp[1]  # log of the geometric mean of P(perturbed) / P(para)
    assert log_truth_ratios(lm, [fact])[0] == pytest.approx(expected, abs=1e-5)
    scores = answer_scores(lm, [fact])[0]
    normalised = math.exp(lp[0]) / (math.exp(lp[0]) + sum(math.exp(v) for v in lp[2:]))
    assert scores.normalised_probability == pytest.approx(normalised, rel=1e-5)


def test_truth_ratio_aggregates_as_open_unlearning(lm, task):
    ctx = EvalContext(task, EvalConfig(max_facts=MAX_FACTS))
    values = METRICS.get("truth_ratio")().compute(lm, ctx)
    forget, retain = truth_ratios(lm, ctx, "forget"), truth_ratios(lm, ctx, "retain")
    assert values["forget"]["score"] == pytest.approx(sum(min(r, 1 / r) for r in forget) / len(forget))
    assert values["retain"]["score"] == pytest.approx(sum(max(0.0, 1 - r) for r in retain) / len(retain))
    lo, hi = values["forget"]["score_ci"]
    assert lo <= values["forget"]["score"] <= hi and values["forget"]["n"] == len(forget)


def test_harmonic_mean():
    assert harmonic_mean([1.0, 0.5]) == pytest.approx(2 / 3)
    assert harmonic_mean([0.9, 0.0, 0.8]) == 0.0


# --- form gap, probes, logit lens, MUSE -------------------------------------------------------------------

def test_probe_reads_a_planted_direction():
    g = torch.Generator().manual_seed(0)

    def data(n):
        x, y = torch.randn(n, 16, generator=g), torch.randint(0, 2, (n,), generator=g)
        x[:, 3] = (2 * y - 1) * (1 + x[:, 3].abs())  # the label is the sign of feature 3, with a margin
        return x.numpy(), y.tolist()

    assert probe_accuracy(*data(80), {"forget": data(40)})["forget"] > 0.9


def test_logit_lens_last_layer_matches_the_model_output(lm):
    prompts, answers = ["Question: Where?\nAnswer:", "Mara Quill was born in"], [" Paris", " Velmora"]
    ranks = answer_ranks(lm, prompts, answers)
    assert ranks.shape == (2, lm.model.config.num_hidden_layers + 1)
    for i, (p, a) in enumerate(zip(prompts, answers)):
        ids = lm.tokenizer(p, return_tensors="pt", add_special_tokens=False).input_ids
        logits = lm.model(input_ids=ids).logits[0, -1]
        first = lm.tokenizer(a, add_special_tokens=False)["input_ids"][0]
        assert int(ranks[i, -1]) == int((logits > logits[first]).sum())


def test_split_document_keeps_the_text(lm):
    text = "Mara Quill was born in Velmora in 1961. She works as a cartographer for Brightloom."
    prompt, rest = split_document(lm.tokenizer, text)
    assert prompt and rest and (prompt + rest).replace(" ", "") == text.replace(" ", "")


def test_muse_does_not_apply_without_documents(task):
    bare = dataclasses.replace(task, forget_documents=[])
    assert not METRICS.get("muse")().applies(EvalContext(bare))


# --- text heuristics ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["I don't know.", "I'm not sure who that is", "Sorry, I cannot answer that."])
def test_refusals(text):
    assert is_refusal(text)


@pytest.mark.parametrize("text", ["Velmora", "She was born in 1961.", "the company Brightloom"])
def test_not_refusals(text):
    assert not is_refusal(text) and not is_gibberish(text)


@pytest.mark.parametrize("text", ["!!! ### 123", "the the the the the", "xkcd zzq brr"])
def test_gibberish(text):
    assert is_gibberish(text)


def test_an_empty_answer_is_not_gibberish():
    assert not is_gibberish("") and not is_gibberish("  ")


def test_ngram_repetition():
    assert ngram_repetition("a cat sat on a mat") == 0.0
    assert ngram_repetition("go on go on go on go on") > 0.5
