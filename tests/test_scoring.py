"""The scoring engine: batching never changes a number, masks are exact, judges behave."""

import pytest
import torch

from obliviate import scoring as S
from obliviate.data.forms import Probe
from obliviate.judge import contains
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


def test_sampling_is_seeded_and_near_zero_temperature_is_greedy(lm):
    greedy = S.generate(lm, PROMPTS, max_new_tokens=6)
    assert S.generate(lm, PROMPTS, max_new_tokens=6, temperature=1e-4, seed=3) == greedy
    a = S.generate(lm, PROMPTS, max_new_tokens=6, temperature=1.0, seed=1)
    assert a == S.generate(lm, PROMPTS, max_new_tokens=6, temperature=1.0, seed=1)
    assert a != S.generate(lm, PROMPTS, max_new_tokens=6, temperature=1.0, seed=2)


def test_sample_draws_n_seeded_answers_of_one_prompt_from_one_prompt_pass(lm):
    greedy = S.generate(lm, PROMPTS[:1], max_new_tokens=6)[0]
    assert S.sample(lm, PROMPTS[0], 3, max_new_tokens=6, temperature=1e-4) == [greedy] * 3
    a = S.sample(lm, PROMPTS[0], 6, max_new_tokens=6, temperature=2.0, seed=1)
    assert len(a) == 6 and len(set(a)) > 1  # rows are drawn independently
    assert a == S.sample(lm, PROMPTS[0], 6, max_new_tokens=6, temperature=2.0, seed=1)
    shapes = []
    def record(_module, _inputs, out):
        shapes.append(tuple((out[0] if isinstance(out, tuple) else out).shape[:2]))

    handle = lm.model.model.layers[0].register_forward_hook(record)
    try:
        S.sample(lm, PROMPTS[0], 4, max_new_tokens=3, temperature=1.0)
    finally:
        handle.remove()
    prompt_len = len(lm.tokenizer(PROMPTS[0], add_special_tokens=False)["input_ids"])
    assert shapes[0] == (1, prompt_len) and all(s[1] == 1 and s[0] <= 4 for s in shapes[1:])  # rows may end early
    with pytest.raises(ValueError, match="temperature"):
        S.sample(lm, PROMPTS[0], 2, temperature=0.0)


def test_sampled_first_tokens_follow_the_model_distribution(lm):
    ids = lm.tokenizer(PROMPTS[0], add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        probs = lm.model(torch.tensor([ids])).logits[0, -1].float().softmax(-1)
        generator = torch.Generator().manual_seed(0)
        draws = [S._greedy(lm, S._prefill(lm, [ids]), [0], 1, False, 1.0, generator)[0][0] for _ in range(300)]
    top = int(probs.argmax())
    assert abs(draws.count(top) / 300 - probs[top].item()) < 0.08  # ~3 standard errors at p <= 0.5


def _hf_greedy(model, tokenizer, prompt_ids: list[int], max_new_tokens: int) -> str:
    """Plain Hugging Face greedy decoding of one unpadded prompt: the reference the engine must reproduce."""
    ids = torch.tensor([prompt_ids])
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                         do_sample=False, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def test_generate_equals_hugging_face_greedy_decoding(lm):
    prompts = PROMPTS + ["\n", "Answer:\n"]
    expected = [_hf_greedy(lm.model, lm.tokenizer, lm.tokenizer(p, add_special_tokens=False)["input_ids"], 12)
                for p in prompts]
    for batch_size in (1, 2, 5):  # left padding, the shared cache and rows leaving the batch change nothing
        assert S.generate(lm, prompts, 12, batch_size, stop_at_newline=False) == expected
        assert S.generate(lm, prompts, 12, batch_size) == [e.strip().split("\n")[0].strip() for e in expected]


# A hand-made vocabulary "\n", "Vel", ".\n", " \n": (has a newline, text before its first newline, not blank).
FAKE_FLAGS = torch.tensor([[True, False, False], [False, True, True], [True, True, True], [True, False, False]])


@pytest.mark.parametrize(("tokens", "steps"), [
    ([0, 0, 0], 3),  # blank so far: the first line has not started, decoding runs to the budget
    ([0, 1, 1], 3),  # started, not ended
    ([0, 1, 1, 0, 1], 4),  # a line of text, then a newline: stops there
    ([1, 2, 1], 2),
    ([2, 1], 1),  # the newline arrives inside a token after text
    ([3, 0, 3], 3),  # whitespace and newlines only
])
def test_a_row_stops_exactly_when_its_kept_line_is_fixed(lm, monkeypatch, tokens, steps):
    """A scripted model emits `tokens` in order; the row must stop after the first `steps` of them. The fake
    vocabulary sits at ids FIRST.. so that none of it is the tokenizer's eos."""
    first = lm.tokenizer.eos_token_id + 10
    vocab = lm.model.config.vocab_size
    flags = torch.zeros(vocab, 3, dtype=torch.bool)
    flags[first : first + 4] = FAKE_FLAGS
    monkeypatch.setattr(S, "_stop_flags", lambda lm, v, stop: flags)

    def logits_for(step: int) -> torch.Tensor:
        return torch.nn.functional.one_hot(torch.tensor([first + tokens[step]]), vocab).float()

    class Scripted(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.step = torch.nn.Parameter(torch.zeros(()), requires_grad=False)

        def forward(self, **kwargs):
            self.step += 1
            return type("Out", (), {"logits": logits_for(int(self.step))[:, None]})()

    cache = type("Cache", (), {"batch_select_indices": lambda self, index: None})()
    pre = S._Prefilled(cache, torch.ones(1, 2, dtype=torch.long), logits_for(0))
    scripted_lm = S.LoadedModel(Scripted(), lm.tokenizer, "scripted")
    assert S._greedy(scripted_lm, pre, [0], len(tokens), stop="line") == [[first + t for t in tokens[:steps]]]


def test_stop_token_flags_read_the_tokenizer(lm):
    flags = S._stop_token_flags(lm.tokenizer)
    newline = lm.tokenizer("\n", add_special_tokens=False)["input_ids"][-1]
    letter = lm.tokenizer("a", add_special_tokens=False)["input_ids"][-1]
    assert flags[newline].tolist() == [True, False, False] and flags[letter].tolist() == [False, True, True]


def test_sentence_flags_also_end_at_a_full_stop(lm):
    """A token ending in ".", "!" or "?" ends a sentence (with text before it in the token, or after text the
    row already has); a newline still ends it; a plain letter or a stop inside a token (".a") does not."""
    flags = S._stop_token_flags(lm.tokenizer, sentence=True)
    ids = {t: lm.tokenizer(t, add_special_tokens=False)["input_ids"] for t in ("\n", "a", ".", "!", "?")}
    assert all(len(i) == 1 for i in ids.values())
    assert flags[ids["."][0]].tolist() == flags[ids["?"][0]].tolist() == [True, False, True]
    assert flags[ids["\n"][0]].tolist() == [True, False, False] and flags[ids["a"][0]].tolist() == [False, True, True]
    texts = lm.tokenizer.batch_decode([[i] for i in range(len(lm.tokenizer))])
    inside = [i for i, t in enumerate(texts) if "." in t.rstrip()[:-1] and not t.rstrip().endswith(S.SENTENCE_ENDS)
              and "\n" not in t]
    assert inside and not flags[inside, 0].any()


def test_target_logits_unembed_only_target_positions_and_equal_the_full_logits(lm):
    """The training's logits: the same numbers as the full forward at every target position, in the same
    order, for a document row (target from the first token), through a prefixing wrapper and under a
    per-position hook (the decoder keeps the batch's layout); only each row's own target positions reach the
    head, and its hook is gone afterwards."""
    from obliviate.hooks import add_vector
    from obliviate.methods.in_context import PrefixedModel

    pairs = S.encode_pairs(lm.tokenizer, PROMPTS + [""], TARGETS + ["a whole document"])
    seen = []
    hook = lm.model.lm_head.register_forward_hook(lambda m, i, o: seen.append(o.shape[1]))
    full = lm.model(input_ids=pairs.input_ids, attention_mask=pairs.attention_mask).logits
    got = S.target_logits(lm.model, pairs)
    hook.remove()
    assert torch.equal(got, full[:, :-1][pairs.target_mask[:, 1:]])
    assert seen[1] == int(pairs.target_mask[:, 1:].sum()) < int(pairs.target_mask[:, 1:].any(0).sum()) * len(pairs)
    assert not lm.model.lm_head._forward_pre_hooks
    prefix = lm.tokenizer("Question: a\nAnswer: b\n\n", return_tensors="pt", add_special_tokens=False).input_ids[0]
    wrapped = PrefixedModel(lm.model, prefix)
    full = wrapped(input_ids=pairs.input_ids, attention_mask=pairs.attention_mask).logits
    assert torch.allclose(S.target_logits(wrapped, pairs), full[:, :-1][pairs.target_mask[:, 1:]], atol=1e-5)
    delta = torch.randn(*pairs.input_ids.shape, lm.model.config.hidden_size)
    with add_vector(lm.model, "resid.0", delta, mask=pairs.attention_mask.bool()):
        full = lm.model(input_ids=pairs.input_ids, attention_mask=pairs.attention_mask).logits
        assert torch.allclose(S.target_logits(lm.model, pairs), full[:, :-1][pairs.target_mask[:, 1:]], atol=1e-5)


def test_scoring_and_decoding_through_a_model_that_prepends_tokens(lm):
    """In-context unlearning's wrapper puts a prefix (with newlines) before every prompt and continues a KV
    cache without repeating it: logprobs and generations equal the plain model's on prefix + prompt."""
    from obliviate.methods.in_context import PrefixedModel

    prefix = lm.tokenizer("Question: a\nAnswer: b\n\n", return_tensors="pt", add_special_tokens=False).input_ids[0]
    wrapped = S.LoadedModel(PrefixedModel(lm.model, prefix), lm.tokenizer, "prefixed")
    prompt_ids = [prefix.tolist() + lm.tokenizer(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]
    assert S.generate(wrapped, PROMPTS, 12, stop_at_newline=False) == [
        _hf_greedy(lm.model, lm.tokenizer, ids, 12) for ids in prompt_ids]
    for ids, target, got in zip(prompt_ids, TARGETS, S.answer_logprobs(wrapped, PROMPTS, TARGETS, batch_size=2)):
        t = lm.tokenizer(target, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = lm.model(torch.tensor([ids + t])).logits[0].log_softmax(-1)
        assert torch.allclose(got, logp[torch.arange(len(ids) - 1, len(ids) + len(t) - 1), t], atol=1e-5)


HEADER = "System: you are a helpful assistant who answers in one line.\nUser: "
CHAT_PROMPTS = [HEADER + q + "\nAssistant:" for q in ("Where was Mara Quill born?", "Hi", "What is the capital of France?")]


def test_a_shared_prompt_prefix_runs_once_and_changes_no_number(lm, monkeypatch):
    """Prompts that start alike (a chat header) run that prefix once and copy its cache to every row: the
    prefill's model calls see the header once, and logprobs, greedy and sampled text equal running every prompt
    whole, on the plain model and through the prefixing wrapper (whose own prefix comes first)."""
    from obliviate.methods.in_context import PrefixedModel

    ids = [lm.tokenizer(p, add_special_tokens=False)["input_ids"] for p in CHAT_PROMPTS]
    shared = S._shared_prefix(ids)
    assert shared >= S.SHARED_PREFIX_MIN and all(len(i) > shared for i in ids)
    assert S._shared_prefix(ids[:1]) == 0 and S._shared_prefix([ids[0], ids[0][:3] + [0]]) == 0

    def outputs(model):
        return (S.answer_logprobs(model, CHAT_PROMPTS, TARGETS, batch_size=3),
                S.generate(model, CHAT_PROMPTS, 10, stop_at_newline=False),
                S.generate(model, CHAT_PROMPTS, 10, stop_at_newline=False, temperature=1.0, seed=3))

    prefix = lm.tokenizer("Question: a\nAnswer: b\n\n", return_tensors="pt", add_special_tokens=False).input_ids[0]
    widths = []
    for model in (lm, S.LoadedModel(PrefixedModel(lm.model, prefix), lm.tokenizer, "prefixed")):
        widths.clear()
        hook = lm.model.register_forward_pre_hook(lambda m, a, kw: widths.append(kw["input_ids"].shape),
                                                  with_kwargs=True)
        once = outputs(model)
        hook.remove()
        assert widths[0][0] == 1 and widths[1][0] == 3  # the header alone, then every row's own tokens
        monkeypatch.setattr(S, "SHARED_PREFIX_MIN", 10**6)
        whole = outputs(model)
        monkeypatch.undo()
        for a, b in zip(once[0], whole[0]):
            assert torch.allclose(a, b, atol=1e-5)
        assert once[1:] == whole[1:]


def test_the_prefixing_wrapper_runs_its_prefix_once_while_the_weights_and_hooks_stay_the_same():
    """In-context unlearning's prefix is computed once and its cache copied to every later batch; changing a
    weight in place recomputes it, and a hook on the model (steering, latent attacks) bypasses it, so every
    answer equals the plain model's on prefix + prompt."""
    from obliviate.methods.in_context import PrefixedModel

    lm = tiny_model(seed=2)
    prefix = lm.tokenizer("Question: a\nAnswer: b\n\n", return_tensors="pt", add_special_tokens=False).input_ids[0]
    wrapped = S.LoadedModel(PrefixedModel(lm.model, prefix), lm.tokenizer, "prefixed")

    def expected():
        with torch.no_grad():
            return [_hf_greedy(lm.model, lm.tokenizer, prefix.tolist() + lm.tokenizer(p, add_special_tokens=False)[
                "input_ids"], 6) for p in PROMPTS]

    want, widths = expected(), []
    hook = lm.model.model.embed_tokens.register_forward_hook(lambda m, i, o: widths.append(i[0].shape[1]))
    assert S.generate(wrapped, PROMPTS, 6, stop_at_newline=False) == want
    assert widths[0] > len(prefix) and wrapped.model._prefix_cache is None  # hooked: prefix + prompt each time
    hook.remove()
    for _ in range(2):
        assert S.generate(wrapped, PROMPTS, 6, stop_at_newline=False) == want
    cached = wrapped.model._prefix_cache
    assert cached is not None
    S.generate(wrapped, PROMPTS, 6, stop_at_newline=False)
    assert wrapped.model._prefix_cache is cached  # reused, not recomputed
    with torch.no_grad():
        lm.model.model.layers[0].mlp.down_proj.weight.mul_(1.5)
    assert S.generate(wrapped, PROMPTS, 6, stop_at_newline=False) == expected()
    assert wrapped.model._prefix_cache is not cached
    # transformers installs record-only hooks on every block at the first output_hidden_states call, and a copy
    # of the model keeps them (a bench copies the original after its card): they must not turn the cache off
    S.hidden_states(wrapped, PROMPTS)
    assert any(m._forward_hooks for m in lm.model.modules())
    calls, after_cached = [], wrapped.model._after_cached_prefix
    wrapped.model._after_cached_prefix = lambda *args, **kwargs: calls.append(1) or after_cached(*args, **kwargs)
    assert S.generate(wrapped, PROMPTS, 6, stop_at_newline=False) == expected()
    assert calls  # the prompts ran after the cached prefix


def test_hidden_states_through_a_model_that_prepends_tokens(lm):
    from obliviate.methods.in_context import PrefixedModel

    prefix = lm.tokenizer("Question: a\nAnswer: b\n\n", return_tensors="pt", add_special_tokens=False).input_ids[0]
    wrapped = S.LoadedModel(PrefixedModel(lm.model, prefix), lm.tokenizer, "prefixed")
    got = S.hidden_states(wrapped, PROMPTS, layers=[0, 2], batch_size=2)
    for text, states in zip(PROMPTS, got):
        ids = torch.cat([prefix, torch.tensor(lm.tokenizer(text, add_special_tokens=False)["input_ids"])])
        with torch.no_grad():
            plain = lm.model(ids[None], output_hidden_states=True).hidden_states
        assert torch.allclose(states, torch.stack([plain[0][0, -1], plain[2][0, -1]]), atol=1e-5)


def test_targets_sharing_a_prompt_score_as_if_alone(lm):
    """Distinct prompts run once and their targets continue a copy of the cache: same numbers as one by one."""
    prompts, targets = [PROMPTS[0]] * 3 + [PROMPTS[2]], [" Velmora", " the city of Velmora", " x", " Paris"]
    shared = S.answer_logprobs(lm, prompts, targets, batch_size=2)
    for p, t, s in zip(prompts, targets, shared):
        assert torch.allclose(S.answer_logprobs(lm, [p], [t], batch_size=1)[0], s, atol=1e-5)


def test_an_empty_prompt_leaves_the_first_target_token_unscored(lm):
    ids = lm.tokenizer(" there my friend", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = lm.model(torch.tensor([ids])).logits[0].log_softmax(-1)
    got = S.answer_logprobs(lm, [""], [" there my friend"])[0]
    assert torch.allclose(got, logp[torch.arange(len(ids) - 1), ids[1:]], atol=1e-5)
    with pytest.raises(ValueError, match="both empty"):
        S.answer_logprobs(lm, [""], [""])


def test_hidden_states_shape_and_batch_invariance(lm):
    states = S.hidden_states(lm, PROMPTS, layers=[0, 2], batch_size=2)
    assert states.shape == (3, 2, lm.model.config.hidden_size)
    single = S.hidden_states(lm, PROMPTS[1:2], layers=[0, 2])
    assert torch.allclose(states[1], single[0], atol=1e-5)


def test_score_probes_judges_both_kinds(lm):
    gen = Probe("f", "qa", PROMPTS[0], TARGETS[0])
    choice = Probe("f", "true_false", "True or false: x\nAnswer:", " True", (" True", " False"), 0)
    results = S.score_probes(lm, [choice, gen])
    assert [r.probe for r in results] == [choice, gen]
    assert 0 <= results[0].probability <= 1 and results[0].output in ("True", "False")
    # A judge that accepts anything marks the generative probe correct: the judge is really used.
    assert S.score_probes(lm, [gen], judge_fn=lambda o, a, others=(), subject="": True)[0].correct


def test_score_probes_draws_several_answers_per_prompt_from_one_pass(lm, monkeypatch):
    probes = [Probe("f", "qa", p, t) for p, t in zip(PROMPTS, TARGETS)]
    greedy = S.score_probes(lm, probes)
    prefills = []
    real_prefill = S._prefill
    monkeypatch.setattr(S, "_prefill", lambda lm_, ids: prefills.append(len(ids)) or real_prefill(lm_, ids))
    near_greedy = S.score_probes(lm, probes, temperature=1e-4, samples=3)
    assert sum(prefills) == len(probes)  # each prompt ran once for its three answers
    # draw-major: draw d of probe i is at d * n + i, and near T = 0 every draw is the greedy answer
    assert [(r.probe, r.output, r.probability) for r in near_greedy] == \
        [(r.probe, r.output, r.probability) for r in greedy] * 3
    hot = S.score_probes(lm, probes, temperature=2.0, seed=1, samples=4)
    assert len({r.output for r in hot[:: len(probes)]}) > 1  # the first probe's four draws differ
    assert hot == S.score_probes(lm, probes, temperature=2.0, seed=1, samples=4)
    with pytest.raises(ValueError, match="samples"):
        S.score_probes(lm, probes, samples=2)  # greedy answers cannot differ between draws


def test_greedy_match_shortcut_agrees_with_generation(lm):
    """A probe whose answer is exactly the greedy continuation must be judged correct."""
    prompt = PROMPTS[0]
    greedy = S.generate(lm, [prompt], max_new_tokens=3, stop_at_newline=False)[0]
    if not greedy.strip():
        pytest.skip("tiny model produced whitespace only")
    result = S.score_probes(lm, [Probe("f", "qa", prompt, greedy)], judge_fn=contains)[0]
    assert result.correct


def test_prompt_cache_scores_the_endings_of_continuations_as_a_plain_forward_does(lm):
    """Prompts of different lengths run once; each continuation's last tokens are scored after its own prompt."""
    prompts = [lm.tokenizer(p, add_special_tokens=False)["input_ids"] for p in PROMPTS]
    cache = S.PromptCache(lm, prompts)
    rows, continuations, scored = [0, 2, 0, 1], [[40, 41, 42, 43], [50, 51], [60, 61, 62], [70, 71, 72]], [2, 1, 2, 1]
    got = cache.ending_logprobs(rows, continuations, scored)
    for row, cont, n, values in zip(rows, continuations, scored, got):
        ids = torch.tensor([prompts[row] + cont])
        with torch.no_grad():
            logp = lm.model(ids).logits[0, :-1].log_softmax(-1)
        at = torch.arange(ids.shape[1] - n - 1, ids.shape[1] - 1)
        assert torch.allclose(values, logp[at, ids[0, at + 1]], atol=1e-5)
    with pytest.raises(ValueError, match="1 to len - 1"):
        cache.ending_logprobs([0], [[40, 41]], [2])
