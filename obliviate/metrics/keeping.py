"""Keeping the model usable: fluency and over-refusal (section keeping).

- `fluency`: perplexity of held-out text (the task's retain documents when it has them, otherwise built-in
  neutral sentences), in [1, inf), lower is better; `perplexity_ratio` against the original model when one is
  given (1 = unchanged). Plus greedy continuations of neutral sentence openings: `repetition` = share of
  repeated word bigrams and `gibberish` = share of continuations that are not language (see `_text`), both
  in [0, 1], lower is better. Unlearning that collapses (GA run too long) shows up here first.
  Cost: one teacher-forced pass over ~20 texts + one batch of 32-token generations.
- `over_refusal`: share of retain / neighbour / general questions (QA and paraphrase forms) the model
  declines or says it does not know, in [0, 1], lower is better. Refusal-style unlearning (IdkPO, TRU) can
  spread refusals to what it should keep. Cost: none beyond the per-form probes (shared cache).
"""

from __future__ import annotations

import math

from obliviate.metrics.base import METRICS, EvalContext, Metric
from obliviate.models import LoadedModel
from obliviate.scoring import answer_logprobs, generate
from obliviate.text import NEUTRAL_TEXT, is_gibberish, is_refusal, ngram_repetition

CONTINUATION_TOKENS = 32
OPENING_WORDS = 6
REFUSAL_SPLITS = ("retain", "neighbours", "general")
REFUSAL_FORMS = ("qa", "paraphrase")


def fluency_texts(ctx: EvalContext) -> list[str]:
    docs = [d.text for d in ctx.task.retain_documents[: ctx.config.max_facts]]
    return docs or list(NEUTRAL_TEXT)


def perplexity(lm: LoadedModel, texts: list[str], batch_size: int = 16) -> float:
    """Token-level perplexity of whole texts (every token after the first is scored)."""
    per_token = answer_logprobs(lm, [""] * len(texts), texts, batch_size)
    total = sum(float(t.sum()) for t in per_token)
    count = sum(t.numel() for t in per_token)
    return math.exp(-total / max(1, count))


def continuations(lm: LoadedModel, batch_size: int = 16) -> list[str]:
    openings = [" ".join(s.split()[:OPENING_WORDS]) for s in NEUTRAL_TEXT]
    return generate(lm, openings, CONTINUATION_TOKENS, batch_size, stop_at_newline=False)


@METRICS.register("fluency")
class Fluency(Metric):
    summary = "perplexity on held-out text (and vs the original), repetition and gibberish rate of generations"
    section = "keeping"
    higher_is_better = False
    cost = "one scoring pass over ~20 texts + 20 greedy 32-token continuations"

    def compute(self, lm, ctx):
        texts = fluency_texts(ctx)
        ppl = perplexity(lm, texts, ctx.config.batch_size)
        outs = continuations(lm, ctx.config.batch_size)
        out = {"perplexity": ppl,
               "repetition": sum(ngram_repetition(o) for o in outs) / len(outs),
               "gibberish": sum(is_gibberish(o) for o in outs) / len(outs),
               "n_texts": len(texts)}
        if ctx.original is not None:
            out["perplexity_ratio"] = ppl / perplexity(ctx.original, texts, ctx.config.batch_size)
        return out


@METRICS.register("over_refusal")
class OverRefusal(Metric):
    summary = "share of retain / neighbour / general questions the model refuses or says it doesn't know"
    section = "keeping"
    higher_is_better = False
    cost = "none beyond the per-form probes (shared cache)"

    def applies(self, ctx):
        return any(ctx.facts(s) for s in REFUSAL_SPLITS)

    def compute(self, lm, ctx):
        out = {}
        for split in REFUSAL_SPLITS:
            results = [r for form in REFUSAL_FORMS if form in ctx.config.forms
                       for r in ctx.probe_results(lm, split, form)]
            if results:
                out[split] = {"rate": sum(is_refusal(r.output) for r in results) / len(results), "n": len(results)}
        return out
