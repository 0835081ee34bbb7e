"""Activation steering (AnonAct): push the residual stream toward what makes the question about its subject.

Seyitoğlu et al. (arXiv 2411.02631): for question Q build anonymised copies Q*_n (the subject swapped for
unrelated names), take the residual state at the last prompt token, and steer with
S = A_l(Q) - mean_n A_l(Q*_n), adding c·S only while the first answer token is produced. The answer is picked
without knowing it, as in the paper: sample many steered answers, count how many samples name each word and
judge only the top word. The paper samples 2000 answers at temperature 2 from one (layer, c); we sample
SAMPLES_PER_SETTING answers at TEMPERATURE (0.7) from each of a few (layer, c) settings (up to budget.samples) and
rank the words of all of them together, so no setting is chosen with the answer. With a few dozen samples, words
every reply shares outvote the answer ("city", "country", "Croatian" for the capital of Croatia), so never
candidates are: words of the prompt and their forms (a shared stem of 4 letters), function words (also those of
the languages a small model drifts into when sampled hot), single letters; and a word's count is weighted by its
inverse document frequency over the run's questions (idf: a word most questions' samples name, such as "city",
weighs little). That weighting uses only the samples, never the answer, and the control runs the same way.
A model with a chat template is asked (and its steering vector taken) through the template, and the whole reply
is steered, since a chat reply reaches the answer only after a lead-in; each reply ends at its first sentence.
A model without one gets the plain QA prompt and only its first answer token is steered, as in the paper.
"""

from __future__ import annotations

import math
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
SETTINGS_PER_BATCH = 8  # settings sampled side by side, a row per sample (8: every default setting at once)
# The paper's T = 2 spreads 2000 samples; with a few dozen a 135M model mostly draws noise. On the original
# model (benchmarks/steering_selection.py, 4 settings, 30 known forget facts vs 30 holdout facts it never
# answers) the top word named the answer for 12 vs 4 at T = 1 and 16 vs 4 at T = 0.7.
TEMPERATURE = 0.7
# Tokens for a steered chat reply's first sentence: SmolLM2's "The capital of X is Y." takes ~10, and at T = 1
# 53 of 64 sampled first sentences ended within 29 tokens; the longer ones ramble (a 64-token floor cost ~30 %
# more time for them). Long answers still get twice their length.
FIRST_SENTENCE_TOKENS = 32


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
        answer's. `settings` counts, per setting, the facts whose own samples alone put the answer on top.
        Every setting of a fact is sampled in one batch (a row per sample, each with its own steering)."""
        settings = steering_settings(lm, ctx.budget.samples)
        names = invented_names(ctx.task, N_ANONYMOUS, ctx.seed)
        form = "chat" if has_chat_template(lm.tokenizer) else "qa"
        ask = (lambda q: chat_prompt(lm.tokenizer, q)) if form == "chat" else qa_prompt
        layers = sorted({layer for layer, _ in settings})
        questions = {f.id: [f.question, *anonymised(f, names)] for f in ctx.targets}
        steerable = [f for f in ctx.targets if len(questions[f.id]) > 1]
        acts = dict(zip([f.id for f in steerable], hidden_states(
            lm, [ask(q) for f in steerable for q in questions[f.id]], [layer + 1 for layer in layers]
        ).split(N_ANONYMOUS + 1))) if steerable else {}
        drawn = len(settings) * SAMPLES_PER_SETTING
        counted: dict[str, list[Counter[str]]] = {}  # fact id -> its word counts, one Counter per setting
        asked: dict[str, str] = {}
        for i, fact in enumerate(ctx.targets):
            if fact.id not in acts or self.out_of_time(ctx):
                continue
            probe = probes(fact, form, lm.tokenizer)[0]
            state = acts[fact.id]  # (1 + N_ANONYMOUS, len(layers), H)
            vectors = {layer: state[0, k] - state[1:, k].mean(0) for k, layer in enumerate(layers)}
            budget = answer_budget(lm.tokenizer, [probe], FIRST_SENTENCE_TOKENS)
            answers = steered_samples(lm, probe.prompt, budget, vectors, settings, whole_reply=form == "chat",
                                      seed=ctx.seed * 100_003 + i, settings_per_batch=SETTINGS_PER_BATCH)
            counted[fact.id], asked[fact.id] = [candidate_words(a, probe.prompt) for a in answers], probe.prompt
        pooled = {fact_id: sum(per_setting, Counter()) for fact_id, per_setting in counted.items()}
        weight = idf(list(pooled.values()))
        outcomes, hits = [], {f"layer{layer}_c{c:g}": 0 for layer, c in settings}
        for fact in ctx.targets:
            if fact.id not in counted:
                outcomes.append(Outcome(fact.id, False))
                continue
            prompt = asked[fact.id]
            for (layer, c), counts in zip(settings, counted[fact.id]):
                hits[f"layer{layer}_c{c:g}"] += names_answer(top_word(counts, weight), fact.answer, prompt)
            together = pooled[fact.id]
            word = top_word(together, weight)
            outcomes.append(Outcome(fact.id, names_answer(word, fact.answer, prompt), prompt,
                                    f"{word} (in {together[word]} of {drawn} samples)" if word else "",
                                    together[word] / drawn))
        skipped = len(ctx.targets) - len(counted)
        notes = f"{skipped} fact(s) skipped (question does not name its subject, or time budget)" if skipped else ""
        return self.result(ctx, outcomes, notes, settings=hits, anonymous_per_question=N_ANONYMOUS, form=form,
                           samples_per_setting=SAMPLES_PER_SETTING, temperature=TEMPERATURE)


def steered_samples(lm: LoadedModel, prompt: str, max_new_tokens: int, vectors: dict[int, torch.Tensor],
                    settings: list[tuple[int, float]], whole_reply: bool, seed: int,
                    settings_per_batch: int = SETTINGS_PER_BATCH) -> list[list[str]]:
    """SAMPLES_PER_SETTING answers to `prompt` under each (layer, c) setting (c * vectors[layer] added at that
    block), per setting. Settings share a batch, `settings_per_batch` at a time, each row with its own vector:
    one prompt pass and one decode loop for several settings instead of one per setting."""
    per_batch = max(1, settings_per_batch)
    out: list[list[str]] = []
    for start in range(0, len(settings), per_batch):
        chunk = settings[start : start + per_batch]
        rows = [(at, c) for at, c in chunk for _ in range(SAMPLES_PER_SETTING)]
        deltas = {layer: torch.stack([vectors[layer] * c if at == layer else torch.zeros_like(vectors[layer])
                                      for at, c in rows]).to(lm.device) for layer in {at for at, _ in chunk}}
        steering = RowSteering(deltas, whole_reply)
        with hooks(lm.model, *[(f"resid.{layer}", steering.hook(layer)) for layer in deltas]):
            answers = sample(lm, prompt, len(rows), max_new_tokens, TEMPERATURE, seed=seed + start,
                             stop="sentence", on_rows=steering.follow)
        out += [answers[k : k + SAMPLES_PER_SETTING] for k in range(0, len(rows), SAMPLES_PER_SETTING)]
    return out


def candidate_words(answers: list[str], prompt: str) -> Counter[str]:
    """Word -> how many `answers` name it (once per answer), accents and case folded; words of the prompt (the
    question, its subject, the chat template) and their forms, function words and single letters never count."""
    asked = set(words(fold(prompt)))
    counts: Counter[str] = Counter()
    for answer in answers:
        counts.update(dict.fromkeys(w for w in words(fold(answer)) if len(w) > 1 and w not in FUNCTION_WORDS
                                    and not any(same_stem(w, a) for a in asked)).keys())
    return counts


def same_stem(word: str, other: str) -> bool:
    """True for one word and a form of it: the same word, or a shared first 4 letters ("croatian", "croatia"),
    or one a prefix of the other from 3 letters ("sen", "senegal")."""
    shorter = min(len(word), len(other))
    shared = next((k for k, (a, b) in enumerate(zip(word, other)) if a != b), shorter)
    return word == other or shared >= 4 or (shared == shorter >= 3)


def idf(fact_counts: list[Counter[str]]) -> dict[str, float]:
    """Smoothed inverse document frequency of each word over the facts' samples: log((1 + n) / (1 + df)) + 1,
    df the number of facts whose samples name the word (a word every fact's samples name weighs ~1)."""
    df: Counter[str] = Counter()
    for counts in fact_counts:
        df.update(counts.keys())
    return {w: math.log((1 + len(fact_counts)) / (1 + d)) + 1 for w, d in df.items()}


def top_word(counts: Counter[str], weight: dict[str, float] | None = None) -> str:
    """The candidate with the highest count x weight (1 without `weight`; '' when there is none); ties go to
    the word seen first."""
    if not counts:
        return ""
    return max(counts, key=lambda w: counts[w] * (weight or {}).get(w, 1.0))


def names_answer(word: str, answer: str, prompt: str) -> bool:
    """True when `word` is one of the answer's own words ("delhi" for "New Delhi"), not one the prompt gives away."""
    return bool(word) and word in candidate_words([answer], prompt)


class RowSteering:
    """Each row of a `sample(..., on_rows=)` batch steered by its own vector, rows followed as they finish decoding.

    `deltas[layer]` is (rows, H): what each row adds at that block's output (zeros for rows steered elsewhere).
    The prompt pass adds it at the last prompt position, the one that emits the first answer token; with
    `whole_reply`, every decode step adds it again (a chat reply opens with a lead-in, "The capital of ... is",
    before the answer, so steering only its first token would steer the lead-in). The shared prompt prefix,
    run once as a batch of one before the rows split, is never steered.
    """

    def __init__(self, deltas: dict[int, torch.Tensor], whole_reply: bool):
        self.deltas, self.whole_reply = deltas, whole_reply
        self.rows: torch.Tensor | None = None  # None: the prompt pass, every row
        self.decoding = False

    def follow(self, active: torch.Tensor | None) -> None:
        """`sample`'s `on_rows`: the rows the next forward passes carry (None before the prompt pass)."""
        self.rows, self.decoding = active, active is not None

    def hook(self, layer: int):
        def add(act: torch.Tensor, _name: str) -> torch.Tensor | None:
            delta = self.deltas[layer] if self.rows is None else self.deltas[layer][self.rows]
            if act.shape[0] != delta.shape[0] or (self.decoding and not self.whole_reply):
                return None
            out = act.clone()
            out[:, -1] += delta.to(act.dtype)
            return out

        return add
