"""The scoring engine: batching never changes a number, masks are exact, judges behave."""

import pytest
import torch

from obliviate import scoring as S
from obliviate.data.forms import Probe
from obliviate.models import tiny_model

PROMPTS = ["Question: Where was Mara Quill born?\nAnswer:", "Hi", "Question: What is the capital of France?\nAnswer:"]
TARGETS = [" Velmora", " there my friend", " Paris"]


@pytest.fixture(scope="module")
def lm():
    return tiny_model(seed=1)


def test_batched_logprobs_equal_one_by_one(lm):
    batched = S.answer_logprobs(lm, PROMPTS, TARGETS, batch_size=3)
    for p, t, b in zip(PROMPTS, TARGETS, batched):
        single = S.answer_logprobs(lm, [p], [t], batch_size=1)[0]
        assert torch.allclose(single, b, atol=1e-5)


def test_logprobs_match_a_plain_forward(lm):
    ids_p = lm.tokenizer(PROMPTS[0], add_special_tokens=False)["input_ids"]
    ids_t = lm.tokenizer(TARGETS[0], add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ids_p + ids_t])
    with torch.no_grad():
        logp = lm.model(ids).logits.log_softmax(-1)[0, :-1]
    expected = logp[torch.arange(len(ids_p) - 1, ids.shape[1] - 1), ids[0, len(ids_p):]]
    got = S.answer_logprobs(lm, PROMPTS[:1], TARGETS[:1])[0]
    assert got.shape == (len(ids_t),)
    assert torch.allclose(got, expected, atol=1e-5)


def test_encode_pairs_masks_targets_and_padding(lm):
    enc = S.encode_pairs(lm.tokenizer, PROMPTS, TARGETS)
    lengths = enc.attention_mask.sum(1)
    for i, t in enumerate(TARGETS):
        n_t = len(lm.tokenizer(t, add_special_tokens=False)["input_ids"])
        assert enc.target_mask[i].sum() == n_t
        assert enc.target_mask[i, lengths[i] - n_t : lengths[i]].all()  # targets sit right before padding
    assert not (enc.target_mask & ~enc.attention_mask.bool()).any()


def test_encode_pairs_keeps_target_when_truncating(lm):
    enc = S.encode_pairs(lm.tokenizer, ["word " * 200], [" end"], max_length=16)
    assert enc.input_ids.shape[1] == 16 and enc.target_mask[0, -1]


def test_answer_probability_in_range_and_sequence_sum(lm):
    prob = S.answer_probability(lm, PROMPTS, TARGETS)
    assert ((prob > 0) & (prob <= 1)).all()
    total = S.sequence_logprob(lm, PROMPTS, TARGETS)
    per_tok = S.answer_logprobs(lm, PROMPTS, TARGETS)
    assert torch.allclose(total, torch.stack([t.sum() for t in per_tok]))


def test_generate_is_deterministic_and_order_preserving(lm):
    a = S.generate(lm, PROMPTS, max_new_tokens=4, batch_size=2)
    b = [S.generate(lm, [p], max_new_tokens=4)[0] for p in PROMPTS]
    assert a == b


# A hand-made vocabulary "\n", "Vel", ".\n", " \n": (has a newline, text before its first newline, not blank).
FAKE_FLAGS = torch.tensor([[True, False, False], [False, True, True], [True, True, True], [True, False, False]])


@pytest.mark.parametrize(("tokens", "done"), [
    ([0, 0], False),  # blank so far: the first line has not started
    ([0, 1], False),  # started, not ended
    ([0, 1, 1, 0], True),  # a line of text, then a newline
    ([1, 2], True),
    ([2], True),  # the newline arrives inside a token after text
    ([3, 0], False),  # whitespace and newlines only
])
def test_first_line_done_stops_exactly_when_the_kept_line_is_fixed(lm, tokens, done):
    stop = S.FirstLineDone(lm.tokenizer)
    stop.flags = FAKE_FLAGS
    row = [1, 1, *tokens]  # a two-token prompt, then the generated tokens, fed one step at a time like HF does
    results = [bool(stop(torch.tensor([row[: 3 + i]]), None)[0]) for i in range(len(tokens))]
    assert results[-1] is done and stop.prompt_length == 2


def test_newline_flags_read_the_tokenizer(lm):
    flags = S._newline_flags(lm.tokenizer)
    newline = lm.tokenizer("\n", add_special_tokens=False)["input_ids"][-1]
    letter = lm.tokenizer("a", add_special_tokens=False)["input_ids"][-1]
    assert flags[newline].tolist() == [True, False, False] and flags[letter].tolist() == [False, True, True]


def test_generate_stops_rows_early_without_changing_first_lines(lm, monkeypatch):
    prompts = PROMPTS + ["\n", "Answer:\n"]
    early = S.generate(lm, prompts, max_new_tokens=12, batch_size=5)
    never = lambda self, ids, scores, **kw: torch.zeros(ids.shape[0], dtype=torch.bool)  # noqa: E731
    monkeypatch.setattr(S.FirstLineDone, "__call__", never)  # never stops: plain HF generation
    assert early == S.generate(lm, prompts, max_new_tokens=12, batch_size=5)


def test_generate_early_stop_through_a_model_that_prepends_tokens(lm, monkeypatch):
    """In-context unlearning's wrapper puts a prefix (with newlines) before the prompt; the stop must not read it."""
    from obliviate.methods.in_context import PrefixedModel

    prefix = lm.tokenizer("Question: a\nAnswer: b\n\n", return_tensors="pt", add_special_tokens=False).input_ids[0]
    wrapped = S.LoadedModel(PrefixedModel(lm.model, prefix), lm.tokenizer, "prefixed")
    early = S.generate(wrapped, PROMPTS, max_new_tokens=12)
    monkeypatch.setattr(S.FirstLineDone, "__call__", lambda self, ids, scores, **kw: torch.zeros(
        ids.shape[0], dtype=torch.bool))
    assert early == S.generate(wrapped, PROMPTS, max_new_tokens=12)


def test_hidden_states_shape_and_batch_invariance(lm):
    states = S.hidden_states(lm, PROMPTS, layers=[0, 2], batch_size=2)
    assert states.shape == (3, 2, lm.model.config.hidden_size)
    single = S.hidden_states(lm, PROMPTS[1:2], layers=[0, 2])
    assert torch.allclose(states[1], single[0], atol=1e-5)


@pytest.mark.parametrize(
    ("output", "answer", "expected"),
    [("Paris.", "Paris", True), ("The capital is Paris, of course", "Paris", True), ("Parisian food", "Paris", False),
     ("the Orvane Medal", "Orvane Medal", True), ("", "Paris", False), ("1961", "1961", True), ("19612", "1961", False)],
)
def test_judge(output, answer, expected):
    assert S.judge(output, answer) is expected


def test_rouge_l_recall():
    assert S.rouge_l_recall("born in the city of Velmora", "Velmora") == 1.0
    assert S.rouge_l_recall("nothing here", "Orvane Medal") == 0.0
    assert S.rouge_l_recall("Orvane something", "Orvane Medal") == 0.5


def test_score_probes_judges_both_kinds(lm):
    gen = Probe("f", "qa", PROMPTS[0], TARGETS[0])
    choice = Probe("f", "true_false", "True or false: x\nAnswer:", " True", (" True", " False"), 0)
    results = S.score_probes(lm, [choice, gen])
    assert [r.probe for r in results] == [choice, gen]
    assert 0 <= results[0].probability <= 1 and results[0].output in ("True", "False")
    # A judge that accepts anything marks the generative probe correct: the judge is really used.
    assert S.score_probes(lm, [gen], judge_fn=lambda o, a: True)[0].correct


def test_greedy_match_shortcut_agrees_with_generation(lm):
    """A probe whose answer is exactly the greedy continuation must be judged correct."""
    prompt = PROMPTS[0]
    greedy = S.generate(lm, [prompt], max_new_tokens=3, stop_at_newline=False)[0]
    if not greedy.strip():
        pytest.skip("tiny model produced whitespace only")
    result = S.score_probes(lm, [Probe("f", "qa", prompt, greedy)])[0]
    assert result.correct
