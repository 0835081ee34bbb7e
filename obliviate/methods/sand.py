"""SAND: suppressed-answer, neighbour-anchored self-distillation — obliviate's own recipe for real knowledge.

Why: on facts a chat model already knows, NPO and friends push down the bare answer after the prompt, while the
model actually says "The capital of Sweden is Stockholm." (docs/methods.md): the chat form barely moves, and
pushing on whole replies unlearns the lead-in ("The capital of … is") with the fact, so retain answers die too.
SAND changes only what must change and pins the rest to the original model:

- **Where the answer is said** (from ROCR's form-independence, applied to outputs): before training the original
  model answers every forget prompt (QA, chat turn, cloze, …) greedily; where its own reply contains the answer,
  the training row becomes (prompt + reply up to the answer, answer). The loss lands on the tokens the model
  really emits, in every form the task trains.
- **A suppressed teacher, not ascent** (distillation as in UNDO/BiLD, bounded like JensUn): at each answer
  position the target is the original's own next-token distribution with the answer token — and, at its first
  token, every vocabulary entry that spells a prefix of the answer — removed and renormalised. The student
  learns to say what the model would say if it did not know; the loss is a KL, bounded below, so it cannot run
  away the way gradient ascent does.
- **On-policy** (the answer is chased where the model says it now): every `refresh_every` steps the model being
  trained answers the forget prompts again, and where its reply still contains the answer ("… is the city of
  Stockholm") that context replaces the row.
- **Neighbour anchoring** (ROKA's healing, as a KL): the neighbour and retain facts, in the same forms, with the
  original's own greedy replies as targets, are distilled from the original (full-vocabulary KL on every reply
  token) so the lead-ins and the related facts stay.
- **Latent robustness** (LAU/LAT, optional): with `adv_steps > 0` the forget term is trained under the PGD
  residual perturbation that best restores the answers (`lau.latent_attack`).

The teacher is a frozen copy of the starting model (train.py's reference); the original's replies are read once,
in `setup` (~3 min for the 663 retain rows of builtin:realfacts:forget20 on 2 cores). Measured in
docs/methods.md ("SAND"); the adversarial option is off by default: at eps 0.5 and 2 PGD steps it forgot less in
the same budget and left more for in-context hints to recover (docs/methods.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from obliviate.errors import ConfigError
from obliviate.hooks import add_vector
from obliviate.judge import answer_span, fold
from obliviate.methods._common import tokenizer_of
from obliviate.methods.base import METHODS, Method, MethodConfig, retain_kl
from obliviate.methods.lau import attack_layer, latent_attack
from obliviate.models import LoadedModel
from obliviate.progress import phase
from obliviate.scoring import EncodedPairs, encode_pairs, generate, target_labels, target_logits
from obliviate.train import Examples, TrainContext, process_mean

REPLY_TOKENS = 40  # greedy reply read from the original per prompt: long enough for a chat lead-in and answer


@dataclass
class SANDConfig(MethodConfig):
    retain_weight: float = 3.0  # weight of the neighbour/retain distillation (1 let retain chat slip on realfacts)
    refresh_every: int = 5  # steps between re-reading the trained model's replies to the forget prompts (0: never)
    layer: int = -1  # adversarial block (-1: 1/8 of the depth), with adv_steps > 0
    eps: float = 0.5  # radius of the adversarial perturbation, relative to the mean residual norm
    adv_steps: int = 0  # PGD steps restoring the answers before each forget term (0: no adversary)

    def __post_init__(self) -> None:
        if self.retain_weight < 0 or self.refresh_every < 0 or self.eps < 0 or self.adv_steps < 0:
            raise ConfigError(f"sand needs retain_weight, refresh_every, eps and adv_steps >= 0; got {self}")


def answer_in_reply(prompt: str, reply: str, answer: str, subject: str = "") -> tuple[str, str] | None:
    """(prompt + reply up to the answer, the answer as said) when the reply says `answer` as whole words and not
    inside `subject` (the judge's match: a substring search put "Tunis" inside "Tunisia" and the symbol "O" in
    "symbol"), else None."""
    span = answer_span(reply, answer, subject)
    if span is None:
        return None
    at, end = span
    cut = at - 1 if at > 0 and reply[at - 1] == " " else at  # the answer keeps its leading space
    return prompt + reply[:cut], reply[cut:end]


def own_reply_rows(lm: LoadedModel, examples: Examples, locate_answer: bool) -> tuple[list[str], list[str]]:
    """Rows in the model's own words: `locate_answer` → (prompt + reply up to the answer, answer) where the greedy
    reply contains the target, else the row as given; otherwise → (prompt, the reply's first line)."""
    asked = [i for i, p in enumerate(examples.prompts) if p]  # documents (empty prompt) stay as they are
    replies = dict(zip(asked, generate(lm, [examples.prompts[i] for i in asked], REPLY_TOKENS)))
    prompts, targets = list(examples.prompts), list(examples.targets)
    for i, reply in replies.items():
        if not locate_answer:
            if reply.strip():
                targets[i] = reply
        elif (row := answer_in_reply(prompts[i], reply, targets[i], subject_of(examples, i))) is not None:
            prompts[i], targets[i] = row
    return prompts, targets


def subject_of(examples: Examples, i: int) -> str:
    """The subject of row `i` ("" when the stream does not know it)."""
    return examples.subjects[i] if examples.subjects else ""


def vocabulary_pieces(tokenizer) -> list[str]:
    """Each vocabulary entry's text, lower-cased, accents and surrounding spaces removed."""
    return [fold(tokenizer.decode([tid]).strip()).lower() for tid in range(len(tokenizer))]


def prefix_tokens(pieces: list[str], answer: str) -> list[int]:
    """Vocabulary ids whose piece is a prefix (of >= 2 characters) of the answer: every way to start saying it."""
    word = fold(answer.strip()).lower()
    return [tid for tid, piece in enumerate(pieces) if len(piece) >= 2 and word.startswith(piece)]


def suppressed_kl(student: torch.Tensor, teacher: torch.Tensor, banned: torch.Tensor) -> torch.Tensor:
    """KL(teacher with the banned tokens removed and renormalised ‖ student) per position, mean over positions
    (all processes). Logits (N, V); banned (N, V) bool. Its gradient pushes the banned tokens' mass down."""
    t = teacher.float().masked_fill(banned, float("-inf")).log_softmax(-1)
    s = student.float().log_softmax(-1)
    p = t.exp()
    kl = torch.where(p > 0, p * (t - s), torch.zeros_like(p)).sum(-1)
    return process_mean(kl.sum(), len(kl))


@METHODS.register("sand")
class SAND(Method):
    summary = "distil the original with the answer suppressed where the model says it, neighbours anchored (ours)"
    paper = ("obliviate's recipe: ROCR-style form independence, UNDO/BiLD distillation, ROKA neighbour healing, "
             "LAU latent robustness (docs/methods.md)")
    Config = SANDConfig
    needs_retain = True
    needs_reference_model = True
    keep_split = "neighbours+retain"
    default_steps = 30
    default_lr = 3e-5

    def setup(self, ctx: TrainContext, first) -> None:
        with phase("sand: the original's replies", total=2) as step:
            with _evaluating(ctx) as lm:
                self.forget_rows = own_reply_rows(lm, ctx.forget, locate_answer=True)
                step("forget")
                self.retain_rows = own_reply_rows(lm, ctx.retain, locate_answer=False) if ctx.retain else ([], [])
                step("retain")
        self.refreshed_at = 0

    def state_dict(self):
        return {"forget_rows": self.forget_rows, "retain_rows": self.retain_rows, "refreshed_at": self.refreshed_at}

    def load_state_dict(self, state):
        for key, value in state.items():
            setattr(self, key, value)

    def refresh(self, ctx: TrainContext) -> float:
        """Re-ask the forget prompts; where the reply still says the answer, train on that context. Returns the
        share of prompts whose reply still says it."""
        prompts, answers = ctx.forget.prompts, ctx.forget.targets
        asked = [i for i, p in enumerate(prompts) if p]
        with _evaluating(ctx) as lm:
            replies = generate(lm, [prompts[i] for i in asked], REPLY_TOKENS)
        said = 0
        for i, reply in zip(asked, replies):
            if (row := answer_in_reply(prompts[i], reply, answers[i], subject_of(ctx.forget, i))) is not None:
                self.forget_rows[0][i], self.forget_rows[1][i] = row
                said += 1
        return said / max(1, len(asked))

    def _pairs(self, ctx: TrainContext, rows: tuple[list[str], list[str]], idx: list[int]) -> EncodedPairs:
        return encode_pairs(ctx.tokenizer, [rows[0][i] for i in idx], [rows[1][i] for i in idx],
                            ctx.config.max_length).to(ctx.unwrapped.device)

    def _banned(self, ctx: TrainContext, pairs: EncodedPairs, idx: list[int], vocab: int) -> torch.Tensor:
        """Each answer position's own token, and at each row's first answer position every prefix of the answer."""
        if not hasattr(self, "prefixes"):
            self.pieces, self.prefixes = vocabulary_pieces(ctx.tokenizer), {}
        said = target_labels(pairs)
        banned = torch.zeros(len(said), vocab, dtype=torch.bool, device=said.device)
        banned[torch.arange(len(said)), said] = True
        firsts = pairs.target_mask[:, 1:].sum(-1).cumsum(0) - pairs.target_mask[:, 1:].sum(-1)
        for row, first in zip(idx, firsts.tolist()):
            answer = self.forget_rows[1][row]
            if answer not in self.prefixes:
                self.prefixes[answer] = prefix_tokens(self.pieces, answer)
            banned[first, self.prefixes[answer]] = True
        return banned

    def _forget_kl(self, ctx: TrainContext, pairs: EncodedPairs, idx: list[int]) -> torch.Tensor:
        student, teacher = target_logits(ctx.model, pairs), ctx.reference_target_logits(pairs)
        return suppressed_kl(student, teacher, self._banned(ctx, pairs, idx, student.shape[-1]))

    def loss(self, ctx, batch):
        c, logs = self.config, {}
        if c.refresh_every and batch.step and batch.step % c.refresh_every == 0 and batch.step != self.refreshed_at:
            logs["still_said"] = self.refresh(ctx)
            self.refreshed_at = batch.step
        forget = self._pairs(ctx, self.forget_rows, batch.forget_idx)
        if c.adv_steps:
            layer = attack_layer(ctx.model, c.layer, 1 / 8)
            delta = latent_attack(ctx.model, forget, layer, c.eps, c.adv_steps)
            with add_vector(ctx.model, f"resid.{layer}", delta, mask=forget.attention_mask.bool()):
                loss = self._forget_kl(ctx, forget, batch.forget_idx)
        else:
            loss = self._forget_kl(ctx, forget, batch.forget_idx)
        logs["kl_forget"] = loss.item()
        if c.retain_weight and batch.retain_idx and self.retain_rows[0]:
            keep = retain_kl(ctx, self._pairs(ctx, self.retain_rows, batch.retain_idx))
            loss = loss + c.retain_weight * keep
            logs["kl_retain"] = keep.item()
        return loss, logs


@contextmanager
def _evaluating(ctx: TrainContext) -> Iterator[LoadedModel]:
    """The model being trained, in eval mode, as a LoadedModel (for greedy generation)."""
    model = ctx.unwrapped
    was_training = model.training
    model.eval()
    try:
        yield LoadedModel(model, tokenizer_of(ctx), "")
    finally:
        model.train(was_training)
