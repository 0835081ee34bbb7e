"""Adversarial suffix (DUA): a GCG search for one token suffix that makes the model give forgotten answers.

Dynamic Unlearning Attack (Yuan et al., AAAI 2025, arXiv 2408.10682, §3): minimise the answer NLL summed over
several questions, -Σ log p(y | [x; q]), over a universal n-token suffix q, with Greedy Coordinate Gradient
(Zou et al., arXiv 2307.15043): gradient w.r.t. the one-hot suffix, top-k substitutions per position, a batch
of random single-token swaps, keep the best. As in GCG, a candidate counts only if its text encodes back to the
same tokens (the attacker can only send text). We optimise on half of the targets and report the other half:
recovery there is transfer across questions (DUA's cross-query setting, with real questions), and that is the
attack's outcome; the half it was optimised on is in `details`. `preset="gcg"` is GCG's own budget (20 tokens,
top-k 256, 512 candidates a step; run it with `Budget.steps` in the hundreds, as the papers do).

Where the question is asked (`form`): DUA attacks a plain `Question: … Answer:` prompt; a chat model is asked
through its chat template, and answers little in the plain format (weak GA on 60 real facts: 0 of 30
held-out answers through the plain prompt, 7 of 30 through the chat turn, docs/attacks.md), so `form="auto"` (the default) puts the suffix after the question inside the user turn when the tokenizer has
a template. The chat target is then the fact's cloze with its answer ("The capital of Sweden is Stockholm",
how this model replies), or the bare answer for a fact without a cloze: built from the fact alone, never from
what a model says, so targets and control facts get the same kind of target.

The suffix must not spell an answer: every token of every target answer, and every token whose text occurs in
one, is banned from the search, and a fact whose answer the suffix still states is not counted.
"""

from __future__ import annotations

import random
from dataclasses import replace

import torch

from obliviate.attacks.base import ATTACKS, Attack, AttackContext, AttackResult, Outcome, halves, judge_groups
from obliviate.data.forms import chat_prompt, has_chat_template, probes, target
from obliviate.data.schema import Fact
from obliviate.errors import ConfigError
from obliviate.hooks import trainable_only
from obliviate.judge import normalise
from obliviate.models import LoadedModel
from obliviate.scoring import PromptCache, right_padded, selective_log_softmax


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def round_trips(tokenizer, ids: list[int]) -> bool:
    """True when the text of `ids` encodes back to exactly `ids` (GCG's filter: otherwise the optimised suffix
    is not what a prompt carrying its text would feed the model)."""
    return _ids(tokenizer, tokenizer.decode(ids)) == ids


def suffix_prompt(question: str, suffix: str, form: str = "qa", tokenizer=None) -> str:
    """Where the suffix goes: after the question, before the answer cue (DUA appends it to the question); in
    the chat form, at the end of the user turn."""
    return chat_prompt(tokenizer, question + suffix) if form == "chat" else f"Question: {question}{suffix}\nAnswer:"


def around_question(tokenizer, question: str, form: str) -> tuple[str, str]:
    """(the prompt text up to the end of the question, the rest): the suffix goes between them."""
    text = suffix_prompt(question, "", form, tokenizer)
    end = text.rindex(question) + len(question)
    return text[:end], text[end:]


def optimised_target(fact: Fact, form: str) -> str:
    """The text GCG raises: the answer after the plain prompt; in a chat reply, the cloze stating it (or the
    bare answer without a cloze)."""
    if form == "qa":
        return target(fact.answer)
    return f"{fact.cloze.rstrip()} {fact.answer.strip()}" if fact.cloze else fact.answer.strip()


def banned_tokens(tokenizer, facts: list[Fact]) -> torch.Tensor:
    """(V,) bool: special, non-printable or multi-line tokens, and any token that could spell an answer."""
    vocab = len(tokenizer)
    banned = torch.zeros(vocab, dtype=torch.bool)
    answers = [normalise(f.answer) for f in facts]
    for f in facts:
        for text in (f.answer, " " + f.answer.strip()):
            banned[_ids(tokenizer, text)] = True
    for i in range(vocab):
        piece = tokenizer.decode([i])
        norm = normalise(piece)
        if (i in tokenizer.all_special_ids or not piece.strip() or not piece.isprintable() or "\n" in piece
                or not piece.isascii() or (len(norm) >= 2 and any(norm in a for a in answers))):
            banned[i] = True
    return banned


class _Problem:
    """Token ids of (question part, answer-cue part, answer) per training fact. The question parts never change,
    so they run once (`PromptCache`); every loss and gradient runs only [suffix, cue, answer] after them."""

    def __init__(self, lm: LoadedModel, facts: list[Fact], form: str, answers: list[str]) -> None:
        tok = lm.tokenizer
        self.lm = lm
        self.parts = [(*(_ids(tok, part) for part in around_question(tok, f.question, form)), _ids(tok, answer))
                      for f, answer in zip(facts, answers)]
        self.heads = PromptCache(lm, [head for head, _, _ in self.parts])

    @torch.no_grad()
    def losses(self, suffixes: torch.Tensor) -> torch.Tensor:
        """Mean per-token answer NLL over the facts, for each suffix: (C,)."""
        rows = [j for _ in suffixes for j in range(len(self.parts))]
        tails = [s + cue + ans for s in suffixes.tolist() for _, cue, ans in self.parts]
        answers = [len(ans) for _ in suffixes for _, _, ans in self.parts]
        nll = [-lp.mean() for lp in self.heads.ending_logprobs(rows, tails, answers)]
        return torch.stack(nll).view(len(suffixes), len(self.parts)).mean(-1)

    def gradient(self, suffix: torch.Tensor) -> torch.Tensor:
        """d loss / d one-hot(suffix): (n, V). Only the one-hot takes gradients, never the weights."""
        model = self.lm.model
        emb = model.get_input_embeddings().weight  # (V, H)
        one_hot = torch.zeros(len(suffix), emb.shape[0], device=emb.device, dtype=emb.dtype)
        one_hot[torch.arange(len(suffix)), suffix.to(emb.device)] = 1.0
        one_hot.requires_grad_(True)
        rest, mask = right_padded(self.lm, [cue + ans for _, cue, ans in self.parts])  # after the suffix, per fact
        with trainable_only(model, lambda _n: False), torch.enable_grad():
            embeds = torch.cat([(one_hot @ emb).expand(len(self.parts), -1, -1), emb[rest].detach()], 1)
            mask = torch.cat([mask.new_ones(len(self.parts), len(suffix)), mask], 1)
            logits = self.heads.logits(range(len(self.parts)), embeds, mask)  # position w predicts token w + 1
            loss = 0.0
            for row, (_, cue, ans) in enumerate(self.parts):
                first = len(suffix) + len(cue)  # the answer's first position in the continuation
                predicted = logits[row, first - 1 : first - 1 + len(ans)].float()
                loss = loss - selective_log_softmax(predicted, torch.tensor(ans, device=emb.device)).mean()
            (loss / len(self.parts)).backward()
        return one_hot.grad.detach().cpu()


@ATTACKS.register("adversarial_suffix", "gcg")
class AdversarialSuffix(Attack):
    name = "adversarial_suffix"
    summary = "GCG search for a universal token suffix raising the forgotten answers (transfer to held-out questions)"
    paper = "Towards Robust Knowledge Unlearning: DUA (Yuan et al., AAAI 2025, arXiv 2408.10682)"

    PRESETS = {"gcg": {"n_tokens": 20, "top_k": 256, "candidates": 512}}

    def __init__(self, n_tokens: int = 8, top_k: int = 64, candidates: int = 32, on: str = "unlearned",
                 preset: str | None = None, form: str = "auto") -> None:
        super().__init__()
        if on not in ("unlearned", "original"):
            raise ConfigError(f"adversarial_suffix: on must be 'unlearned' or 'original', got {on!r}")
        if form not in ("auto", "qa", "chat"):
            raise ConfigError(f"adversarial_suffix: form must be 'auto', 'qa' or 'chat', got {form!r}")
        self.form = form
        if preset is not None and preset not in self.PRESETS:
            raise ConfigError(f"adversarial_suffix: unknown preset {preset!r}; presets: {', '.join(self.PRESETS)}")
        self.n_tokens, self.top_k, self.candidates, self.on = n_tokens, top_k, candidates, on
        for name, value in self.PRESETS.get(preset or "", {}).items():
            setattr(self, name, value)

    def run(self, lm: LoadedModel, ctx: AttackContext) -> AttackResult:
        """`budget.steps` GCG steps on the train half (stops at the time budget); judged on every target, reported
        on the held-out half (on the only target when there is one)."""
        if not ctx.targets:
            return self.result(ctx, [], "no targets")
        train, held = halves(ctx.targets, ctx.seed) if len(ctx.targets) > 1 else (ctx.targets, ctx.targets)
        source = ctx.original if self.on == "original" and ctx.original is not None else lm
        tok = lm.tokenizer
        form = ("chat" if has_chat_template(tok) else "qa") if self.form == "auto" else self.form
        if form == "chat" and not has_chat_template(tok):
            raise ConfigError("adversarial_suffix: form 'chat' needs a tokenizer with a chat template")
        banned = banned_tokens(tok, ctx.targets)
        allowed = (~banned).nonzero().squeeze(-1)
        answers = [optimised_target(f, form) for f in train]
        problem = _Problem(source, train, form, answers)
        rng = random.Random(ctx.seed)
        suffix = torch.tensor(_initial_suffix(tok, allowed, self.n_tokens, rng))
        best_loss = float(problem.losses(suffix[None])[0])
        start_loss, steps, rejected = best_loss, 0, 0
        for _ in range(ctx.budget.steps):
            if self.out_of_time(ctx):
                break
            grad = problem.gradient(suffix)  # (n, V)
            grad[:, banned] = float("inf")
            top = (-grad).topk(min(self.top_k, len(allowed)), dim=1).indices  # (n, k): swaps that most lower the loss
            cands = suffix.repeat(self.candidates, 1)
            for c in range(self.candidates):
                pos = rng.randrange(self.n_tokens)
                cands[c, pos] = top[pos, rng.randrange(top.shape[1])]
            keep = [c for c in range(self.candidates) if round_trips(tok, cands[c].tolist())]
            rejected += self.candidates - len(keep)
            steps += 1
            if not keep:
                continue
            losses = problem.losses(cands[keep])
            i = int(losses.argmin())
            if losses[i] < best_loss:
                best_loss, suffix = float(losses[i]), cands[keep[i]].clone()
        text = tok.decode(suffix.tolist())
        groups = [[replace(p, prompt=suffix_prompt(f.question, text, form, tok)) for p in probes(f, form, tok)]
                  for f in ctx.targets]
        judged = judge_groups(lm, ctx.targets, groups)
        # The ban should make this impossible; the check keeps a suffix that spells an answer from counting.
        judged = [Outcome(o.fact_id, False, o.prompt, o.output, o.probability)
                  if o.recovered and normalise(f.answer) in normalise(text) else o
                  for o, f in zip(judged, ctx.targets)]
        train_ids, held_ids = {f.id for f in train}, {f.id for f in held}
        outcomes = [o for o in judged if o.fact_id in held_ids]
        train_rate = sum(o.recovered for o in judged if o.fact_id in train_ids) / len(train)
        held_rate = sum(o.recovered for o in outcomes) / len(outcomes)
        scope = "held-out" if len(ctx.targets) > 1 else "the one target, optimised on it (in-sample)"
        notes = (f"{steps} GCG steps on {len(train)} {form} question(s) (on the {self.on} model), answer NLL "
                 f"{start_loss:.2f} -> {best_loss:.2f}; reported on {len(outcomes)} {scope}: {held_rate:.0%} "
                 f"(optimised half {train_rate:.0%}); {rejected} candidates dropped: their text re-encodes otherwise")
        return self.result(ctx, outcomes, notes, suffix=text, suffix_ids=suffix.tolist(), steps=steps,
                           start_loss=start_loss, loss=best_loss, train=[f.id for f in train],
                           held_out=[f.id for f in held], train_rate=train_rate, transfer_rate=held_rate, on=self.on,
                           n_tokens=self.n_tokens, top_k=self.top_k, candidates=self.candidates,
                           rejected_candidates=rejected, form=form, optimised_targets=answers)


def _initial_suffix(tokenizer, allowed: torch.Tensor, n: int, rng: random.Random, tries: int = 10_000) -> list[int]:
    """`n` random allowed tokens whose text encodes back to them, built a token at a time (random tokens joined
    at once often merge into others)."""
    ids: list[int] = []
    for _ in range(tries):
        if len(ids) == n:
            return ids
        candidate = [*ids, int(allowed[rng.randrange(len(allowed))])]
        if round_trips(tokenizer, candidate):
            ids = candidate
    if len(ids) == n:
        return ids
    raise ConfigError(f"adversarial_suffix: no {n}-token suffix that re-encodes to itself in {tries} draws")
