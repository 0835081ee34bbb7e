"""Activation steering (AnonAct): push the residual stream toward what makes the question about its subject.

Seyitoğlu et al. (arXiv 2411.02631): for question Q build anonymised copies Q*_n (the subject swapped for
unrelated names), take the residual state at the last prompt token, and steer with
S = A_l(Q) - mean_n A_l(Q*_n), adding c·S only while the first answer token is produced. The answer is picked
without knowing it, as in the paper: sample many steered answers, count how many samples name each word (words
of the prompt and function words never count) and judge only the most frequent word. The paper samples 2000
answers at temperature 2 from one (layer, c); we sample SAMPLES_PER_SETTING answers at temperature 1 from each
of a few (layer, c) settings (up to budget.samples) and rank the words of all of them together, so no setting
is chosen with the answer. A model with a chat template is asked (and its steering vector taken) through the
template, and the whole reply is steered, since a chat reply reaches the answer only after a lead-in; a model
without one gets the plain QA prompt and only its first answer token is steered, as in the paper.
"""

from __future__ import annotations

import random
from collections import Counter

import torch

from obliviate.attacks.base import ATTACKS, Attack, AttackContext, AttackResult, Outcome
from obliviate.data.forms import chat_prompt, has_chat_template, probes, qa_prompt
from obliviate.data.people import FIRST_A, FIRST_B, LAST_A, LAST_B
from obliviate.data.schema import Fact, Task
from obliviate.hooks import hooks, n_layers
from obliviate.judge import fold
from obliviate.models import LoadedModel
from obliviate.scoring import answer_budget, hidden_states, sample
from obliviate.text import FUNCTION_WORDS, words

N_ANONYMOUS = 8  # anonymised copies per question
COEFFICIENTS = (1.0, 2.0)  # c = 2 in the paper; on SmolLM2-135M c = 1 recovered as much and c = 4 broke answers
DEPTHS = (0.8, 0.9, 1.0, 0.5)  # layer = round(depth x (n_layers - 2)); 0.8-0.9 first (measured best here)
SAMPLES_PER_SETTING = 8  # steered answers sampled per (layer, c) setting
TEMPERATURE = 1.0  # the paper's 2 spreads 2000 samples; with a few dozen it mostly draws noise from a 135M model


def invented_names(task: Task, n: int, seed: int) -> list[str]:
    """`n` made-up full names that are not subjects of the task (so anonymised questions are about nobody known)."""
    taken = {f.subject for split in ("forget", "retain", "neighbours", "holdout") for f in task.split(split)}
    rng, out = random.Random(f"anon-{seed}"), []
    while len(out) < n:
        # An extra syllable keeps these apart from builtin:people names even with another seed.
        name = f"{rng.choice(FIRST_A)}{rng.choice(FIRST_B)}{rng.choice(FIRST_B)} {rng.choice(LAST_A)}{rng.choice(LAST_B)}"
        if name not in taken and name not in out:
            out.append(name)
    return out


def anonymised(fact: Fact, names: list[str]) -> list[str]:
    """The fact's question with its subject replaced by each name (empty if the question doesn't name it)."""
    if not fact.subject or fact.subject not in fact.question:
        return []
    return [fact.question.replace(fact.subject, name) for name in names]


def steering_settings(lm: LoadedModel, samples: int) -> list[tuple[int, float]]:
    """Up to `samples` (layer, coefficient) pairs, every depth at the first coefficient before the next one.

    Depth 1.0 is the block before the last, the paper's choice. On the weakly unlearned SmolLM2 (30 blocks) a
    sweep of layers 7-28 x c 0.5-4 brought hidden facts back only at blocks 22-25 with c <= 1 (and at 22 with
    c = 4); at block 28 nothing came back and c = 4 broke even the answers plain QA still gave.
    """
    last = max(0, n_layers(lm.model) - 2)
    layers = list(dict.fromkeys(round(d * last) for d in DEPTHS))
    return [(layer, c) for c in COEFFICIENTS for layer in layers][: max(1, samples)]


@ATTACKS.register("activation_steering", "anonact")
class ActivationSteering(Attack):
    name = "activation_steering"
    summary = "steer the answer by real-minus-anonymised question activations (AnonAct; chat turn when there is one)"
    paper = "Extracting Unlearned Information from LLMs with Activation Steering (Seyitoğlu et al., arXiv 2411.02631)"

    def run(self, lm: LoadedModel, ctx: AttackContext) -> AttackResult:
        """Per fact: steered samples from every setting, the most frequent word judged; recovered if it is the
        answer's. `settings` counts, per setting, the facts whose own samples alone put the answer on top."""
        settings = steering_settings(lm, ctx.budget.samples)
        names = invented_names(ctx.task, N_ANONYMOUS, ctx.seed)
        form = "chat" if has_chat_template(lm.tokenizer) else "qa"
        ask = (lambda q: chat_prompt(lm.tokenizer, q)) if form == "chat" else qa_prompt
        layers = sorted({layer for layer, _ in settings})
        outcomes, skipped, hits = [], 0, {f"layer{layer}_c{c:g}": 0 for layer, c in settings}
        for i, fact in enumerate(ctx.targets):
            anon = anonymised(fact, names)
            if not anon or self.out_of_time(ctx):
                skipped += 1
                outcomes.append(Outcome(fact.id, False))
                continue
            probe = probes(fact, form, lm.tokenizer)[0]
            acts = hidden_states(lm, [ask(q) for q in [fact.question, *anon]], [layer + 1 for layer in layers])
            prompt_len = len(lm.tokenizer(probe.prompt, add_special_tokens=False)["input_ids"])
            budget = answer_budget(lm.tokenizer, [probe])
            pooled: Counter[str] = Counter()
            for layer, c in settings:
                vector = (acts[0, layers.index(layer)] - acts[1:, layers.index(layer)].mean(0)).to(lm.device)
                with hooks(lm.model, (f"resid.{layer}", _steer(vector * c, prompt_len, whole_reply=form == "chat"))):
                    answers = sample(lm, probe.prompt, SAMPLES_PER_SETTING, budget, TEMPERATURE,
                                     seed=ctx.seed * 100_003 + i)
                counts = candidate_words(answers, probe.prompt)
                hits[f"layer{layer}_c{c:g}"] += names_answer(top_word(counts), fact.answer, probe.prompt)
                pooled.update(counts)
            word = top_word(pooled)
            outcomes.append(Outcome(fact.id, names_answer(word, fact.answer, probe.prompt), probe.prompt,
                                    f"{word} (in {pooled[word]} of {len(settings) * SAMPLES_PER_SETTING} samples)"
                                    if word else "", pooled[word] / (len(settings) * SAMPLES_PER_SETTING)))
        notes = f"{skipped} fact(s) skipped (question does not name its subject, or time budget)" if skipped else ""
        return self.result(ctx, outcomes, notes, settings=hits, anonymous_per_question=N_ANONYMOUS, form=form,
                           samples_per_setting=SAMPLES_PER_SETTING, temperature=TEMPERATURE)


def candidate_words(answers: list[str], prompt: str) -> Counter[str]:
    """Word -> how many `answers` name it (once per answer), accents and case folded; words of the prompt (the
    question, its subject, the chat template) and function words are not candidates."""
    asked = set(words(fold(prompt)))
    counts: Counter[str] = Counter()
    for answer in answers:
        counts.update(dict.fromkeys(w for w in words(fold(answer)) if w not in asked and w not in FUNCTION_WORDS).keys())
    return counts


def top_word(counts: Counter[str]) -> str:
    """The most frequent candidate ('' when there is none); ties go to the word seen first."""
    return counts.most_common(1)[0][0] if counts else ""


def names_answer(word: str, answer: str, prompt: str) -> bool:
    """True when `word` is one of the answer's own words ("delhi" for "New Delhi"), not one the prompt gives away."""
    return bool(word) and word in candidate_words([answer], prompt)


def _steer(delta: torch.Tensor, prompt_len: int, whole_reply: bool = False):
    """Hook adding `delta` at the last prompt position (the position that emits the first answer token) and,
    with `whole_reply`, at every generated position after it (a chat reply opens with a lead-in, "The capital
    of ... is", before the answer, so steering only its first token would steer the lead-in).

    Works for the prompt pass (one prompt, unpadded: `sample` runs it once) and, with `whole_reply`, for every
    decode step (one new position in each sampled row).
    """

    def add(act: torch.Tensor, _name: str) -> torch.Tensor | None:
        if act.shape[1] == 1 and whole_reply:  # a decode step
            return act + delta.to(act.dtype)
        if act.shape[0] != 1 or act.shape[1] < prompt_len:
            return None
        out = act.clone()
        end = act.shape[1] if whole_reply else prompt_len
        out[0, prompt_len - 1 : end] += delta.to(act.dtype)
        return out

    return add
