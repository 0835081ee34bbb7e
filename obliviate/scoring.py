"""THE batched scoring engine: every method, metric and attack scores text through these functions.

Requests are lists; each function batches them by length, masks padding, and returns results in the caller's
order. Nothing here loops over tokens in Python.

>>> from obliviate.models import tiny_model
>>> lm = tiny_model()
>>> lp = answer_logprobs(lm, ["Question: Where?\\nAnswer:"], [" Paris"])
>>> lp[0].ndim
1
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from obliviate.data.forms import Probe
from obliviate.models import LoadedModel

DEFAULT_BATCH = 16


def selective_log_softmax(logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """log_softmax(logits)[..., index] without keeping the full (B, T, V) log-softmax around."""
    return torch.gather(logits, -1, index.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


@dataclass
class EncodedPairs:
    """Prompt+target token ids, right-padded. `target_mask` marks target tokens (the ones we score)."""

    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    target_mask: torch.Tensor  # (B, T) bool, True on target positions

    def to(self, device: torch.device) -> EncodedPairs:
        return EncodedPairs(self.input_ids.to(device), self.attention_mask.to(device), self.target_mask.to(device))

    def __len__(self) -> int:
        return self.input_ids.shape[0]


def encode_pairs(tokenizer, prompts: Sequence[str], targets: Sequence[str], max_length: int = 256) -> EncodedPairs:
    """Tokenise prompt and target separately (so the boundary is exact) and right-pad the concatenation.

    Over-long pairs are cut from the left of the prompt, so the target is always kept whole.
    """
    if len(prompts) != len(targets):
        raise ValueError(f"{len(prompts)} prompts but {len(targets)} targets")
    prompt_ids = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    target_ids = tokenizer(list(targets), add_special_tokens=False)["input_ids"]
    prompt_ids = [p[-max(1, max_length - len(t)) :] for p, t in zip(prompt_ids, target_ids)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return pairs_from_ids(prompt_ids, target_ids, pad)


def pairs_from_ids(prompt_ids: Sequence[list[int]], target_ids: Sequence[list[int]], pad_id: int) -> EncodedPairs:
    """Right-padded prompt+target batch from token ids (what `encode_pairs` builds from text)."""
    rows = [list(p) + list(t) for p, t in zip(prompt_ids, target_ids)]
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    target_mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (r, t) in enumerate(zip(rows, target_ids)):
        input_ids[i, : len(r)] = torch.tensor(r)
        attention[i, : len(r)] = 1
        target_mask[i, len(r) - len(t) : len(r)] = True
    return EncodedPairs(input_ids, attention, target_mask)


def token_logprobs(model, batch: EncodedPairs) -> torch.Tensor:
    """Log-prob of each token given its prefix, zero outside `target_mask`: (B, T-1), aligned to input_ids[:, 1:].

    Differentiable; the training loop and the scorers both use it.
    """
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1]  # (B, T-1, V)
    lp = selective_log_softmax(logits.float(), batch.input_ids[:, 1:])  # (B, T-1)
    return lp * batch.target_mask[:, 1:]


def _batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), so padding is small."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.no_grad()
def _teacher_forced(lm: LoadedModel, prompts: Sequence[str], targets: Sequence[str], batch_size: int,
                    stats: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> list[torch.Tensor]:
    """The one teacher-forced loop: batches pairs by length, runs the model once per batch and returns, per pair,
    `stats(logits, labels)` (shape (B, T-1, ...)) restricted to its target positions, on the CPU."""
    out: list[torch.Tensor | None] = [None] * len(prompts)
    lengths = [len(p) + len(t) for p, t in zip(prompts, targets)]
    for idx in _batches(lengths, batch_size):
        batch = encode_pairs(lm.tokenizer, [prompts[i] for i in idx], [targets[i] for i in idx]).to(lm.device)
        logits = lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1]
        values = stats(logits.float(), batch.input_ids[:, 1:]).cpu()
        mask = batch.target_mask[:, 1:].cpu()
        for row, i in enumerate(idx):
            out[i] = values[row][mask[row]]
    return out  # type: ignore[return-value]


def _logprob_and_hit(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, T-1, 2): the label's log-prob, and 1.0 where the label is the argmax token."""
    return torch.stack([selective_log_softmax(logits, labels), (logits.argmax(-1) == labels).float()], -1)


def _score_pairs(lm: LoadedModel, prompts: Sequence[str], targets: Sequence[str],
                 batch_size: int) -> list[tuple[torch.Tensor, bool]]:
    """Per-pair (per-token target log-probs, greedy match) from one teacher-forced pass.

    Greedy match: the argmax token equals the target token at every target position, i.e. greedy decoding
    would produce exactly the target first. Same pass, no extra cost.
    """
    return [(v[:, 0], bool(v[:, 1].all())) for v in _teacher_forced(lm, prompts, targets, batch_size, _logprob_and_hit)]


def answer_logprobs(
    lm: LoadedModel, prompts: Sequence[str], targets: Sequence[str], batch_size: int = DEFAULT_BATCH
) -> list[torch.Tensor]:
    """Per-token log p(target | prompt) for each pair, as a 1-D CPU tensor per pair."""
    return [lp for lp, _ in _score_pairs(lm, prompts, targets, batch_size)]


def sequence_logprob(lm: LoadedModel, prompts: Sequence[str], targets: Sequence[str], batch_size: int = DEFAULT_BATCH,
                     normalise: bool = False) -> torch.Tensor:
    """Summed (or, with `normalise`, mean per-token) log p(target | prompt): shape (N,)."""
    per_token = answer_logprobs(lm, prompts, targets, batch_size)
    return torch.stack([t.mean() if normalise else t.sum() for t in per_token])


def answer_probability(lm: LoadedModel, prompts: Sequence[str], targets: Sequence[str],
                       batch_size: int = DEFAULT_BATCH) -> torch.Tensor:
    """Length-normalised answer probability exp(mean token log-prob), in [0, 1]: (N,)."""
    return sequence_logprob(lm, prompts, targets, batch_size, normalise=True).exp()


def _token_stats(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(logits, dim=-1)  # (B, T-1, V)
    mu = (logp.exp() * logp).sum(-1)  # (B, T-1)
    sigma = ((logp.exp() * logp.square()).sum(-1) - mu.square()).clamp_min(0).sqrt()
    token = torch.gather(logp, -1, labels.unsqueeze(-1)).squeeze(-1)
    return torch.stack([token, mu, sigma], -1)  # (B, T-1, 3)


def answer_token_stats(lm: LoadedModel, prompts: Sequence[str], targets: Sequence[str],
                       batch_size: int = DEFAULT_BATCH) -> list[torch.Tensor]:
    """Per target token: (log p of the token, mean and std of log p over the next-token distribution).

    One (n_target_tokens, 3) CPU tensor per pair. Min-K%++ membership inference standardises each token's
    log-prob by the distribution's own mean and spread: mu = E_z[log p(z)], sigma^2 = E_z[log^2 p(z)] - mu^2.
    """
    return _teacher_forced(lm, prompts, targets, batch_size, _token_stats)


def choice_logprobs(lm: LoadedModel, prompts: Sequence[str], choices: Sequence[Sequence[str]],
                    batch_size: int = DEFAULT_BATCH) -> list[torch.Tensor]:
    """Summed log-prob of every choice after its prompt: one (n_choices,) tensor per prompt."""
    flat_p = [p for p, cs in zip(prompts, choices) for _ in cs]
    flat_c = [c for cs in choices for c in cs]
    scores = sequence_logprob(lm, flat_p, flat_c, batch_size)
    out, start = [], 0
    for cs in choices:
        out.append(scores[start : start + len(cs)])
        start += len(cs)
    return out


@functools.lru_cache(maxsize=8)
def _newline_flags(tokenizer) -> torch.Tensor:
    """(V, 3) bool per token id: contains a newline, has text before its first newline, is not blank."""
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))], skip_special_tokens=True)
    return torch.tensor([("\n" in t, bool(t.split("\n")[0].strip()), bool(t.strip())) for t in texts],
                        dtype=torch.bool)


class FirstLineDone(StoppingCriteria):
    """Marks a row done once its first non-blank line has ended, i.e. once what `generate(stop_at_newline=True)`
    keeps (the stripped text up to its first newline) can no longer change. HF generation keeps finished rows
    in the batch, so this saves time when every row of a batch is done before `max_new_tokens`.

    The prompt length is read at the first call (HF calls after each new token), not given: a wrapped model
    (e.g. in-context unlearning's `PrefixedModel`) may put more tokens in front of the caller's prompt."""

    def __init__(self, tokenizer):
        self.flags, self.prompt_length = _newline_flags(tokenizer), None

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        if self.prompt_length is None:
            self.prompt_length = input_ids.shape[1] - 1
        new = input_ids[:, self.prompt_length :]
        if new.numel() and int(new.max()) >= len(self.flags):  # ids past the tokenizer (padded embeddings): no text
            self.flags = torch.cat([self.flags, self.flags.new_zeros(int(new.max()) + 1 - len(self.flags), 3)])
        newline, text_before, nonblank = self.flags.to(input_ids.device)[new].unbind(-1)  # (B, T) each
        seen_text = (nonblank.long().cumsum(1) - nonblank.long()) > 0  # any non-blank token earlier in the row
        return (newline & (text_before | seen_text)).any(1)


@torch.no_grad()
def generate(lm: LoadedModel, prompts: Sequence[str], max_new_tokens: int = 16, batch_size: int = DEFAULT_BATCH,
             stop_at_newline: bool = True) -> list[str]:
    """Greedy continuations (left-padded batches); with `stop_at_newline` only the first line is kept, and a
    batch stops decoding once every row's first line is complete (`FirstLineDone`)."""
    tok = lm.tokenizer
    tok.padding_side = "left"
    out: list[str] = [""] * len(prompts)
    for idx in _batches([len(p) for p in prompts], batch_size):
        enc = tok([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False).to(lm.device)
        stop = StoppingCriteriaList([FirstLineDone(tok)] if stop_at_newline else [])
        gen = lm.model.generate(
            **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id, top_p=None, top_k=None, temperature=None, stopping_criteria=stop,
        )
        texts = tok.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        for i, text in zip(idx, texts):
            out[i] = text.strip().split("\n")[0].strip() if stop_at_newline else text
    return out


@torch.no_grad()
def hidden_states(lm: LoadedModel, texts: Sequence[str], layers: Sequence[int] | None = None,
                  batch_size: int = DEFAULT_BATCH) -> torch.Tensor:
    """Residual-stream state at each text's last token, for every requested layer: (N, n_layers, H).

    Layer 0 is the embedding output; layer i is the output of block i (HF `output_hidden_states` convention).
    """
    tok = lm.tokenizer
    n_layers = lm.model.config.num_hidden_layers + 1
    layers = list(range(n_layers)) if layers is None else list(layers)
    out: list[torch.Tensor | None] = [None] * len(texts)
    for idx in _batches([len(t) for t in texts], batch_size):
        batch = encode_pairs(tok, [texts[i] for i in idx], [""] * len(idx)).to(lm.device)
        res = lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_hidden_states=True)
        last = batch.attention_mask.sum(1) - 1  # right padding: last real token
        stacked = torch.stack([res.hidden_states[layer] for layer in layers], 1)  # (B, L, T, H)
        picked = stacked[torch.arange(len(idx), device=last.device), :, last]  # (B, L, H)
        for row, i in enumerate(idx):
            out[i] = picked[row].float().cpu()
    return torch.stack(out)  # type: ignore[arg-type]


_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalise(text: str) -> str:
    """Lower-case, strip punctuation, articles and extra whitespace (SQuAD-style)."""
    text = _ARTICLES.sub(" ", _PUNCT.sub(" ", text.lower()))
    return " ".join(text.split())


def judge(output: str, answer: str) -> bool:
    """True if the generated `output` states `answer`: normalised exact match or whole-word containment."""
    out, ans = normalise(output), normalise(answer)
    if not ans:
        return False
    return out == ans or f" {ans} " in f" {out} "




Judge = Callable[[str, str], bool]


def rouge_l_recall(output: str, reference: str) -> float:
    """ROUGE-L recall: longest common subsequence of normalised words / reference length (TOFU's choice)."""
    out, ref = normalise(output).split(), normalise(reference).split()
    if not ref:
        return 0.0
    prev = [0] * (len(out) + 1)
    for r in ref:  # O(|ref|·|out|) on a handful of words
        cur = [0]
        for j, o in enumerate(out):
            cur.append(prev[j] + 1 if r == o else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1] / len(ref)


@dataclass
class ProbeResult:
    """How the model did on one probe."""

    probe: Probe
    correct: bool
    probability: float  # length-normalised probability of the right answer
    rouge_l: float  # generative probes; 1.0/0.0 from correctness for choice probes
    output: str  # the generation (for a greedy match: the answer it provably starts with), or the chosen option


def score_probes(lm: LoadedModel, probes: Sequence[Probe], max_new_tokens: int = 12,
                 batch_size: int = DEFAULT_BATCH, prefix: str = "", judge_fn: Judge | None = None) -> list[ProbeResult]:
    """Judge every probe: generative ones by greedy decoding + `judge`, choice ones by the best-scoring option.

    `prefix` is prepended to every prompt (used by attacks that add context). One batched pass per kind.
    """
    judge_fn = judge_fn or judge
    gen = [p for p in probes if not p.choices]
    cho = [p for p in probes if p.choices]
    results: dict[int, ProbeResult] = {}
    if gen:
        prompts = [prefix + p.prompt for p in gen]
        scored = _score_pairs(lm, prompts, [p.answer for p in gen], batch_size)
        # A greedy match means greedy decoding starts with the answer: judged right without generating.
        misses = [i for i, (_, hit) in enumerate(scored) if not hit]
        outputs = dict(zip(misses, generate(lm, [prompts[i] for i in misses], max_new_tokens, batch_size)))
        for i, (p, (lp, hit)) in enumerate(zip(gen, scored)):
            o = p.answer.strip() if hit else outputs[i]
            ok = hit or judge_fn(o, p.answer)
            results[id(p)] = ProbeResult(p, ok, float(lp.mean().exp()), rouge_l_recall(o, p.answer), o)
    if cho:
        scores = choice_logprobs(lm, [prefix + p.prompt for p in cho], [p.choices for p in cho], batch_size)
        for p, s in zip(cho, scores):
            probs = s.softmax(0)
            best = int(s.argmax())
            ok = best == p.correct
            results[id(p)] = ProbeResult(p, ok, float(probs[p.correct]), float(ok), p.choices[best].strip())
    return [results[id(p)] for p in probes]
