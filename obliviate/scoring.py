"""THE batched scoring engine: every method, metric and attack scores text through these functions.

Requests are lists; each function batches them by length, masks padding, and returns results in the caller's
order. All of them run through `_run`: each distinct prompt is run once (and a prefix all prompts of a batch
share, such as a chat header, once for the batch), its targets are scored as continuations of its KV cache,
and greedy decoding continues from the same cache, dropping rows as they finish. Only decoding steps loop in
Python; nothing loops over the tokens of one step.

>>> from obliviate.models import tiny_model
>>> lm = tiny_model()
>>> lp = answer_logprobs(lm, ["Question: Where?\\nAnswer:"], [" Paris"])
>>> lp[0].ndim
1
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from obliviate.data.forms import Probe
from obliviate.judge import Judge, classify, contains, judge, rouge_l_recall
from obliviate.models import CACHE_ARG, LoadedModel

DEFAULT_BATCH = 16  # prompts per batch of the teacher-forced scorers (answer_logprobs, hidden_states...)
# Prompts per greedy-decoding batch: a decode step reads every weight once whatever the batch, so wider batches
# amortise it; the full card took 556 s at 16 and 310 s at 64 here (docs/metrics.md "Speed").
GENERATION_BATCH = 64
TARGETS_PER_PASS = 64  # teacher-forced targets per forward pass, whatever the batch: bounds the logits' memory
# Where a decoded row ends: its first line, its first sentence (the line, or a token after text ending in one of
# SENTENCE_ENDS; "58.5" or "U.S." end early: fine for replies judged by the words they name), or eos / budget.
Stop = Literal["line", "sentence"] | None
SENTENCE_ENDS = (".", "!", "?")


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


def target_logits(model, pairs: EncodedPairs, head: torch.nn.Module | None = None) -> torch.Tensor:
    """Logits at the positions that predict target tokens, row-major (N_target_tokens, V) float; differentiable.

    Only those positions are unembedded (`forward_at`), so short answers after long prompts skip most of the
    vocabulary-wide work (the unembedding, the softmax and their backward). Equal to
    `model(...).logits[:, :-1][target_mask[:, 1:]]` up to rounding. `head`: the output head, for a `model` given
    as a function (default: the model's own).
    """
    out = forward_at(model, pairs.target_mask[:, 1:], head, input_ids=pairs.input_ids,
                     attention_mask=pairs.attention_mask)
    return out.logits[0].float()


def forward_at(model, positions: torch.Tensor, head: torch.nn.Module | None = None, **inputs: Any) -> Any:
    """`model(**inputs)` with only the (B, ≤T) boolean `positions` unembedded: `.logits` is (1, N, V), row-major.

    The positions where some row needs logits go to the model as `logits_to_keep`, and a pre-hook on the output
    head keeps each row's own positions of those (right-padded rows of different lengths have their answers in
    different columns). The decoder runs on the whole batch in its layout, so per-position hooks (steering,
    latent perturbations, an edit's shift) still line up.
    """
    keep = positions.any(0).nonzero().squeeze(1)
    rows = positions[:, keep]  # (B, K): which kept positions each row needs
    head = head if head is not None else _output_head(model)

    def only_positions(_module, args):
        return (args[0][rows].unsqueeze(0), *args[1:])  # (B, K, H) -> (1, N, H)

    handle = head.register_forward_pre_hook(only_positions)
    try:
        return model(**inputs, logits_to_keep=keep)
    finally:
        handle.remove()


def _output_head(model) -> torch.nn.Module:
    """The module that unembeds hidden states (under a DistributedDataParallel or PEFT wrapper too)."""
    inner = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
    head = inner.get_output_embeddings()
    if head is None:
        raise TypeError(f"{type(inner).__name__} has no output embeddings to unembed target positions with")
    return head


def target_labels(pairs: EncodedPairs) -> torch.Tensor:
    """The target tokens, row-major (N_target_tokens,): what `target_logits` predicts."""
    return pairs.input_ids[:, 1:][pairs.target_mask[:, 1:]]


def on_targets(pairs: EncodedPairs, values: torch.Tensor) -> torch.Tensor:
    """One value per target token (row-major, as `target_logits` orders them) placed at its position in a
    (B, T-1) grid aligned to input_ids[:, 1:], zero elsewhere; differentiable."""
    predicts = pairs.target_mask[:, 1:]
    return torch.zeros(predicts.shape, dtype=values.dtype, device=values.device).masked_scatter(predicts, values)


def token_logprobs(model, batch: EncodedPairs) -> torch.Tensor:
    """Log-prob of each token given its prefix, zero outside `target_mask`: (B, T-1), aligned to input_ids[:, 1:].

    Differentiable; the training loop and the scorers both use it.
    """
    return on_targets(batch, selective_log_softmax(target_logits(model, batch), target_labels(batch)))


def _batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), so padding is small."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


Stats = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits (B, T, V), labels (B, T)) -> (B, T, ...)


@dataclass
class _Prefilled:
    """A batch of left-padded prompts after one forward pass: the KV cache, the attention mask and the logits
    that predict each prompt's next token. Every prompt ends at the same column, so targets and greedy tokens
    all continue from there."""

    cache: Any
    mask: torch.Tensor  # (B, P)
    next_logits: torch.Tensor  # (B, V) float


SHARED_PREFIX_MIN = 8  # tokens every prompt of a batch starts with, from which they are run once (a chat header)


def _shared_prefix(prompt_ids: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix every prompt shares, leaving each at least one token of its own; 0 when under
    SHARED_PREFIX_MIN or for a single prompt."""
    if len(prompt_ids) < 2:
        return 0
    shortest = min(len(p) for p in prompt_ids) - 1
    n = 0
    while n < shortest and all(p[n] == prompt_ids[0][n] for p in prompt_ids):
        n += 1
    return n if n >= SHARED_PREFIX_MIN else 0


def _prefill(lm: LoadedModel, prompt_ids: Sequence[Sequence[int]]) -> _Prefilled:
    """Run a batch of prompts once. A prefix they all share (the chat template's system turn and user header,
    about 60 % of a SmolLM2 chat prompt) runs once and its cache is copied to every row; the rest follows it
    left-padded, so a row reads [shared prefix, pads, own tokens] with positions from the mask (the layout of
    `methods.in_context.PrefixedModel`)."""
    shared = _shared_prefix(prompt_ids)
    rest = [p[shared:] for p in prompt_ids]
    width = max(len(p) for p in rest)
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(rest), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rest), width), dtype=torch.long)
    for row, p in enumerate(rest):
        ids[row, width - len(p) :] = torch.tensor(p)
        mask[row, width - len(p) :] = 1
    ids, mask = ids.to(lm.device), mask.to(lm.device)
    positions = (mask.cumsum(1) - 1).clamp_min(0)
    past = {}
    if shared:
        prefix = torch.tensor([list(prompt_ids[0][:shared])], device=lm.device)
        cache = lm.model(input_ids=prefix, use_cache=True, logits_to_keep=1)[CACHE_ARG]
        cache.batch_repeat_interleave(len(rest))
        past = {CACHE_ARG: cache}
        mask = torch.cat([mask.new_ones(len(rest), shared), mask], 1)
        positions = positions + shared
    out = lm.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1,
                   **past)
    return _Prefilled(out[CACHE_ARG], mask, out.logits[:, -1].float())


def _continue(lm: LoadedModel, pre: _Prefilled, rows: list[int], mask: torch.Tensor,
              at: torch.Tensor | None = None, **inputs: Any) -> torch.Tensor:
    """Logits (C, W, V) of right-padded continuations (`input_ids` or `inputs_embeds`, `mask` (C, W)) of prompts
    `rows`, run on a copy of their cache (so `pre` serves any number of calls). Differentiable in the inputs.
    With `at` (C, W) bool, only those positions are unembedded: (1, N, V) row-major, as `forward_at`."""
    index = torch.tensor(rows, device=lm.device)
    cache = copy.deepcopy(pre.cache)
    cache.batch_select_indices(index)
    positions = pre.mask[index].sum(1, keepdim=True) + torch.arange(mask.shape[1], device=lm.device)
    inputs.update(attention_mask=torch.cat([pre.mask[index], mask], 1), position_ids=positions, use_cache=True,
                  **{CACHE_ARG: cache})
    return (lm.model(**inputs) if at is None else forward_at(lm.model, at, **inputs)).logits


def right_padded(lm: LoadedModel, sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, mask), both (C, W): token sequences right-padded with the pad token."""
    width = max(len(t) for t in sequences)
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, t in enumerate(sequences):
        ids[row, : len(t)] = torch.tensor(t, dtype=torch.long)
        mask[row, : len(t)] = 1
    return ids.to(lm.device), mask.to(lm.device)


def _continuation_stats(lm: LoadedModel, pre: _Prefilled, rows: list[int], targets: list[list[int]],
                        stats: Stats) -> list[torch.Tensor]:
    """`stats` at every token of `targets[j]` read as the continuation of prompt `rows[j]` (teacher forcing
    on a copy of the prompts' cache, so each prompt is run once however many targets it has)."""
    if max(len(t) for t in targets) == 0:
        empty = stats(pre.next_logits[:1, None][:, :0], torch.zeros((1, 0), dtype=torch.long, device=lm.device))
        return [empty[0].cpu() for _ in targets]
    ids, mask = right_padded(lm, targets)
    logits = _continue(lm, pre, rows, mask, input_ids=ids).float()  # (C, W, V): predicts the token after each
    index = torch.tensor(rows, device=lm.device)
    predictions = torch.cat([pre.next_logits[index, None], logits[:, :-1]], 1)  # (C, W, V): predicts each token
    values = stats(predictions, ids).cpu()
    return [values[row, : len(t)] for row, t in enumerate(targets)]


class PromptCache:
    """Prompts run once, then any number of continuations scored after them: a search that tries many endings
    of the same prompts (GCG's suffix candidates after each question) pays for the prompts once, not per try.

    Prompts are token ids; a prefix they all share (a chat header) runs once, as everywhere in this module.
    """

    def __init__(self, lm: LoadedModel, prompt_ids: Sequence[Sequence[int]]) -> None:
        if not prompt_ids or not all(prompt_ids):
            raise ValueError("PromptCache: every prompt needs at least one token")
        self.lm = lm
        with torch.no_grad():
            self.pre = _prefill(lm, prompt_ids)

    @torch.no_grad()
    def ending_logprobs(self, rows: Sequence[int], continuations: Sequence[Sequence[int]],
                        scored: Sequence[int]) -> list[torch.Tensor]:
        """Per-token log p of the last `scored[j]` tokens of `continuations[j]` after prompt `rows[j]` (one 1-D CPU
        tensor each; each continuation keeps at least one unscored token). Only the positions that predict
        scored tokens are unembedded: a suffix search reads the answer after each candidate, not the candidate."""
        if any(not 0 < n < len(c) for n, c in zip(scored, continuations)):
            raise ValueError("ending_logprobs: score 1 to len - 1 tokens of each continuation")
        out: list[torch.Tensor] = []
        for start in range(0, len(rows), TARGETS_PER_PASS):
            chunk = [list(c) for c in continuations[start : start + TARGETS_PER_PASS]]
            counts = list(scored[start : start + TARGETS_PER_PASS])
            ids, mask = right_padded(self.lm, chunk)
            at = torch.zeros_like(mask, dtype=torch.bool)  # position p predicts token p + 1
            for j, (c, n) in enumerate(zip(chunk, counts)):
                at[j, len(c) - n - 1 : len(c) - 1] = True
            logits = _continue(self.lm, self.pre, list(rows[start : start + TARGETS_PER_PASS]), mask, at,
                               input_ids=ids)[0].float()
            labels = ids[:, 1:][at[:, :-1]]
            out += list(selective_log_softmax(logits, labels).cpu().split(counts))
        return out

    def logits(self, rows: Sequence[int], embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits (C, W, V) of right-padded continuation embeddings (C, W, H) after prompts `rows`; position w
        predicts continuation token w + 1. Differentiable in `embeds` (the model's weights are not touched)."""
        return _continue(self.lm, self.pre, list(rows), mask.to(self.lm.device), inputs_embeds=embeds)


def _stop_flags(lm: LoadedModel, vocab: int, stop: Stop) -> torch.Tensor:
    """(vocab, 3) `_stop_token_flags` for `stop` padded to the model's vocabulary (ids past the tokenizer: no text);
    all False when generation runs to eos or the token budget (`stop` None)."""
    flags = _stop_token_flags(lm.tokenizer, stop == "sentence") if stop else torch.zeros((0, 3), dtype=torch.bool)
    flags = torch.cat([flags[:vocab], flags.new_zeros(max(0, vocab - len(flags)), 3)])
    return flags.to(lm.device)


def _greedy(lm: LoadedModel, pre: _Prefilled, rows: list[int], max_new_tokens: int,
            stop: Stop, temperature: float = 0.0, generator: torch.Generator | None = None,
            on_rows: Callable[[torch.Tensor], None] | None = None) -> list[list[int]]:
    """Greedy token ids continuing prompts `rows` (consumes `pre.cache`); with `temperature` > 0, tokens sampled
    from softmax(logits / temperature) with `generator` instead. A row leaves the batch once it emits eos or,
    with `stop` "line", once its first non-blank line has ended, i.e. once what `generate` keeps (the stripped
    text up to its first newline) can no longer change ("sentence": or once a token after text ends in ".", "!"
    or "?"); the others decode on without it. `on_rows` hears which of `rows` (by position) are still decoding
    before the first decode step and after each change."""
    index = torch.tensor(rows, device=lm.device)
    cache, mask, logits = pre.cache, pre.mask[index], pre.next_logits[index]
    cache.batch_select_indices(index)
    ends, text_before, nonblank = _stop_flags(lm, logits.shape[-1], stop).unbind(-1)
    eos = lm.tokenizer.eos_token_id
    out: list[list[int]] = [[] for _ in rows]
    active = torch.arange(len(rows), device=lm.device)
    seen_text = torch.zeros(len(rows), dtype=torch.bool, device=lm.device)  # a non-blank token was generated
    if on_rows is not None:
        on_rows(active)
    for step in range(max_new_tokens):
        if temperature:
            token = torch.multinomial((logits / temperature).softmax(-1), 1, generator=generator).squeeze(1)
        else:
            token = logits.argmax(-1)  # (b,)
        for row, t in zip(active.tolist(), token.tolist()):
            out[row].append(t)
        done = ends[token] & (text_before[token] | seen_text)
        if eos is not None:
            done |= token == eos
        seen_text |= nonblank[token]
        keep = (~done).nonzero().squeeze(1)
        if step == max_new_tokens - 1 or keep.numel() == 0:
            break
        if keep.numel() < len(active):
            cache.batch_select_indices(keep)
            mask, token, active, seen_text = mask[keep], token[keep], active[keep], seen_text[keep]
            if on_rows is not None:
                on_rows(active)
        mask = torch.cat([mask, mask.new_ones(len(active), 1)], 1)
        logits = lm.model(input_ids=token[:, None], attention_mask=mask, position_ids=mask.sum(1, keepdim=True) - 1,
                          use_cache=True, **{CACHE_ARG: cache}).logits[:, -1].float()
    return out


def _kept(text: str, stop: Stop) -> str:
    """What a generation returns: with a `stop` its first non-blank line, stripped (decoding already ended it at
    the first sentence for "sentence"); else all of it."""
    return text.strip().split("\n")[0].strip() if stop else text


@torch.no_grad()
def _run(lm: LoadedModel, prompts: Sequence[str], targets: Sequence[str], batch_size: int, stats: Stats | None,
         max_new_tokens: int = 0, decode_unless: Callable[[torch.Tensor], bool] | None = None,
         stop: Stop = "line", max_length: int = 256, temperature: float = 0.0,
         seed: int = 0, samples: int = 1) -> tuple[list[torch.Tensor | None], list[str]]:
    """THE inference loop behind every scorer and `generate`.

    Distinct prompts run once per batch (left-padded, KV cached). With `stats`, each (prompt, target) pair gets
    `stats(logits, labels)` at its target tokens. With `max_new_tokens`, every prompt is then decoded greedily
    from the same cache, except those whose pairs' stats all satisfy `decode_unless` (e.g. the greedy tokens
    provably start with the target); `temperature` > 0 samples instead (seeded by `seed`; pairs that share a
    prompt share its sample); `samples` > 1 decodes each prompt that many times from its one prefill (draw-major
    text: draw d of pair i at d * len(prompts) + i). Returns per-pair stats (None without `stats`) and per-pair
    generated text ('' where not decoded). A pair with an empty prompt has nothing to predict its first target
    token: that token becomes the prompt, as in a plain forward pass over the target.
    """
    if len(prompts) != len(targets):
        raise ValueError(f"{len(prompts)} prompts but {len(targets)} targets")
    tok = lm.tokenizer
    prompt_ids = tok(list(prompts), add_special_tokens=False)["input_ids"] if prompts else []
    target_ids = tok(list(targets), add_special_tokens=False)["input_ids"] if targets else []
    groups: dict[tuple[int, ...], list[int]] = {}  # distinct prompt ids -> the pairs that share them
    for i, (p, t) in enumerate(zip(prompt_ids, target_ids)):
        if not p:
            if not t:
                raise ValueError(f"pair {i}: prompt and target are both empty")
            p, target_ids[i] = t[:1], t[1:]
        groups.setdefault(tuple(p[-max(1, max_length - len(target_ids[i])) :]), []).append(i)
    distinct = list(groups)
    out_stats: list[torch.Tensor | None] = [None] * len(prompts)
    out_text = [""] * (len(prompts) * samples)
    generator = torch.Generator(lm.device).manual_seed(seed) if temperature else None
    for idx in _batches([len(p) for p in distinct], batch_size):
        pre = _prefill(lm, [distinct[k] for k in idx])
        pairs = [(row, i) for row, k in enumerate(idx) for i in groups[distinct[k]]]
        if stats is not None:
            pairs.sort(key=lambda pair: len(target_ids[pair[1]]))
            for start in range(0, len(pairs), TARGETS_PER_PASS):
                chunk = pairs[start : start + TARGETS_PER_PASS]
                values = _continuation_stats(lm, pre, [r for r, _ in chunk], [target_ids[i] for _, i in chunk], stats)
                for (_, i), v in zip(chunk, values):
                    out_stats[i] = v
        if max_new_tokens:
            rows = [row for row, k in enumerate(idx)
                    if decode_unless is None or not all(decode_unless(out_stats[i]) for i in groups[distinct[k]])]
            if rows:
                decoded = _greedy(lm, pre, rows * samples, max_new_tokens, stop, temperature, generator)
                for n, ids in enumerate(decoded):
                    draw, row = divmod(n, len(rows))
                    text = _kept(tok.decode(ids, skip_special_tokens=True), stop)
                    for i in groups[distinct[idx[rows[row]]]]:
                        out_text[draw * len(prompts) + i] = text
    return out_stats, out_text


def _teacher_forced(lm: LoadedModel, prompts: Sequence[str], targets: Sequence[str], batch_size: int,
                    stats: Stats) -> list[torch.Tensor]:
    """Per pair, `stats(logits, labels)` at its target tokens (shape (n_target_tokens, ...)), on the CPU."""
    return _run(lm, prompts, targets, batch_size, stats)[0]  # type: ignore[return-value]


def _logprob_and_hit(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, T, 2): the label's log-prob, and 1.0 where the label is the argmax token."""
    return torch.stack([selective_log_softmax(logits, labels), (logits.argmax(-1) == labels).float()], -1)


def _greedy_match(values: torch.Tensor) -> bool:
    """True when the argmax equals the target at every target token (`_logprob_and_hit` values): greedy
    decoding would produce exactly the target first."""
    return bool(values[:, 1].all())


def answer_logprobs(
    lm: LoadedModel, prompts: Sequence[str], targets: Sequence[str], batch_size: int = DEFAULT_BATCH
) -> list[torch.Tensor]:
    """Per-token log p(target | prompt) for each pair, as a 1-D CPU tensor per pair."""
    return [v[:, 0] for v in _teacher_forced(lm, prompts, targets, batch_size, _logprob_and_hit)]


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
def _stop_token_flags(tokenizer, sentence: bool = False) -> torch.Tensor:
    """(V, 3) bool per token id: ends the unit (contains a newline; with `sentence` also: its first line ends in
    ".", "!" or "?"), has text before that end, is not blank."""
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))], skip_special_tokens=True)

    def flags(t: str) -> tuple[bool, bool, bool]:
        line = t.split("\n")[0]
        if sentence and line.rstrip().endswith(SENTENCE_ENDS):
            return True, bool(line.rstrip()[:-1].strip()), bool(t.strip())
        return "\n" in t, bool(line.strip()), bool(t.strip())

    return torch.tensor([flags(t) for t in texts], dtype=torch.bool)


def generate(lm: LoadedModel, prompts: Sequence[str], max_new_tokens: int = 16, batch_size: int = GENERATION_BATCH,
             stop_at_newline: bool = True, temperature: float = 0.0, seed: int = 0) -> list[str]:
    """Greedy continuations (sampled at `temperature` > 0, seeded); with `stop_at_newline` only the first line is
    kept, and each row stops decoding as soon as that line is complete."""
    return _run(lm, prompts, [""] * len(prompts), batch_size, None, max_new_tokens, None,
                "line" if stop_at_newline else None, temperature=temperature, seed=seed)[1]


@torch.no_grad()
def sample(lm: LoadedModel, prompt: str, n: int, max_new_tokens: int = 16, temperature: float = 1.0, seed: int = 0,
           stop: Stop = "line",
           on_rows: Callable[[torch.Tensor | None], None] | None = None) -> list[str]:
    """`n` continuations of one prompt sampled at `temperature` (seeded): the prompt runs once, its KV cache is
    copied to `n` rows (so a hook sees the prompt as a batch of one, and the decode steps as `n` rows).

    With `on_rows`, rows a hook may treat differently (per-row steering): the prompt's last token runs once per
    row (the rest once, batch 1; a prompt under SHARED_PREFIX_MIN + 1 tokens runs whole, `n` times), so the pass
    that emits each row's first token is already per row, at the batch's last position. `on_rows(None)`
    announces that prompt pass (every row, in order); `on_rows(active)` then names, before the first decode
    step and after each change, which rows (indices into 0..n-1) the next passes carry.
    """
    if n < 1 or temperature <= 0:
        raise ValueError(f"sample: n must be >= 1 and temperature > 0, got n={n}, temperature={temperature}")
    if on_rows is None:
        return _run(lm, [prompt], [""], 1, None, max_new_tokens, None, stop, temperature=temperature,
                    seed=seed, samples=n)[1]
    ids = lm.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError("sample: empty prompt")
    on_rows(None)
    pre = _prefill(lm, [ids] * n)
    generator = torch.Generator(lm.device).manual_seed(seed)
    decoded = _greedy(lm, pre, list(range(n)), max_new_tokens, stop, temperature, generator, on_rows)
    return [_kept(lm.tokenizer.decode(row, skip_special_tokens=True), stop) for row in decoded]


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
        res = lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_hidden_states=True,
                       logits_to_keep=1)  # only the states are used: skip the unembedding of every position
        last = batch.attention_mask.sum(1) - 1  # right padding: last real token
        stacked = torch.stack([res.hidden_states[layer] for layer in layers], 1)  # (B, L, T, H)
        picked = stacked[torch.arange(len(idx), device=last.device), :, last]  # (B, L, H)
        for row, i in enumerate(idx):
            out[i] = picked[row].float().cpu()
    return torch.stack(out)  # type: ignore[arg-type]


@dataclass
class ProbeResult:
    """How the model did on one probe."""

    probe: Probe
    correct: bool
    probability: float  # length-normalised probability of the right answer
    rouge_l: float  # generative probes; 1.0/0.0 from correctness for choice probes
    output: str  # the generation (for a greedy match: the answer it provably starts with), or the chosen option
    outcome: str = ""  # right / wrong / refusal / gibberish / empty (obliviate.judge.classify); choice: right / wrong
    correct_norm: bool | None = None  # choice probes: right by log-prob per character (lm-eval's acc_norm)


SHORT_ANSWER_TOKENS = 12  # greedy budget for plain prompts with short answers (names, numbers)
# A chat reply states the answer in a sentence ("The capital of France is Paris."), but an unlearned model often
# opens with a preamble ("Uganda is a vibrant nation nestled in East Africa ... The capital city of Ug"): read at
# 32 tokens, the demo's NPO model kept 0.62 of retain chat, at 64 0.80, at 128 0.85 (forget 0.45 / 0.50 / 0.55,
# the original unchanged at 0.95 / 0.93; 2026-12-06). 64 reads most of it at twice the cost of 32 on long replies.
CHAT_REPLY_TOKENS = 64
MAX_NEW_TOKENS = 200  # TOFU's budget for sentence answers


def answer_budget(tokenizer, probes: Sequence[Probe], chat_floor: int = CHAT_REPLY_TOKENS) -> int:
    """Greedy tokens to generate for `probes`: room for twice the longest answer (sentence answers, as in TOFU,
    get up to 200), at least 12 for plain prompts and `chat_floor` when a probe is a chat turn. Rows stop at the
    end of their first line, so a large budget costs only what a row actually generates."""
    gen = [p for p in probes if not p.choices]
    if not gen:
        return SHORT_ANSWER_TOKENS
    longest = max(len(ids) for ids in tokenizer([p.answer for p in gen], add_special_tokens=False)["input_ids"])
    floor = chat_floor if any(p.form == "chat" for p in gen) else SHORT_ANSWER_TOKENS
    return min(MAX_NEW_TOKENS, max(floor, 2 * longest + 4))


def score_probes(lm: LoadedModel, probes: Sequence[Probe], max_new_tokens: int | None = None,
                 batch_size: int = GENERATION_BATCH, prefix: str = "", judge_fn: Judge = judge,
                 temperature: float = 0.0, seed: int = 0, samples: int = 1) -> list[ProbeResult]:
    """Judge every probe: generative ones by greedy decoding + `judge_fn` (strict by default), choice ones by the
    best-scoring option (summed log-prob; `correct_norm` by log-prob per character, as lm-eval's acc_norm).

    `max_new_tokens` None: `answer_budget`. `prefix` is prepended to every prompt (used by attacks that add
    context). `temperature` > 0: generative answers are sampled (seeded by `seed`) instead of greedy; with
    `samples` > 1, that many answers per probe from one pass over its prompt (draw-major: draw d of probe i at
    d * len(probes) + i; a choice probe's one result repeats). One batched pass per kind.
    """
    if samples < 1 or (samples > 1 and not temperature):
        raise ValueError(f"score_probes: samples must be >= 1, and > 1 only when sampling; got {samples} at "
                         f"temperature {temperature}")
    gen = [p for p in probes if not p.choices]
    cho = [p for p in probes if p.choices]
    results: dict[tuple[int, int], ProbeResult] = {}
    if max_new_tokens is None:
        max_new_tokens = answer_budget(lm.tokenizer, gen)
    if gen:
        # One pass scores the answers; greedy decoding then continues from the same cache. Under the lenient
        # judge it is skipped where the argmax already follows the answer token by token (right whatever
        # follows); the strict judge must read what follows ("Velmora or Quistal"), so it always decodes.
        shortcut = judge_fn is contains and not temperature
        scored, outputs = _run(lm, [prefix + p.prompt for p in gen], [p.answer for p in gen], batch_size,
                               _logprob_and_hit, max_new_tokens, _greedy_match if shortcut else None,
                               temperature=temperature, seed=seed, samples=samples)
        for draw in range(samples):
            for p, values, generated in zip(gen, scored, outputs[draw * len(gen) : (draw + 1) * len(gen)]):
                hit = shortcut and _greedy_match(values)
                o = p.answer.strip() if hit else generated
                outcome = "right" if hit else classify(o, p.answer, p.others, judge_fn, p.subject)
                results[draw, id(p)] = ProbeResult(p, outcome == "right", float(values[:, 0].mean().exp()),
                                                   rouge_l_recall(o, p.answer), o, outcome)
    if cho:
        scores = choice_logprobs(lm, [prefix + p.prompt for p in cho], [p.choices for p in cho], batch_size)
        for p, s in zip(cho, scores):
            probs = s.softmax(0)
            best = int(s.argmax())
            per_char = s / torch.tensor([max(1, len(c)) for c in p.choices], dtype=s.dtype)
            ok = best == p.correct
            for draw in range(samples):
                results[draw, id(p)] = ProbeResult(p, ok, float(probs[p.correct]), float(ok), p.choices[best].strip(),
                                                   "right" if ok else "wrong", int(per_char.argmax()) == p.correct)
    return [results[draw, id(p)] for draw in range(samples) for p in probes]
