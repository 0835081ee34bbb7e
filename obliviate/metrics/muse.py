"""MUSE's memorisation metrics (Shi et al. 2024, arXiv:2407.06460); `verbmem` applies only to tasks with
`forget_documents` (the verbatim / copyright setting). Scores are ROUGE-L F1 without stemming as in MUSE's code,
in [0, 1] (MUSE prints them x 100), each a mean over documents or facts with a bootstrap interval (`_ci`).

- `verbmem`: each document is cut after its first half (at most `PROMPT_TOKENS` tokens; MUSE uses the first 32
  tokens of its 128-token excerpts); the model's greedy continuation is compared with the true next tokens (at
  most `CONTINUATION_TOKENS`). On forget documents lower is better (the reference model's value is the target:
  common words make it > 0); on retain documents, when the task has them, higher is better.
- `knowmem`: the greedy answers to the forget (and retain) questions against their answers. The task's QA facts
  stand in for MUSE's document-derived QA, asked in obliviate's QA prompt instead of MUSE's few-shot one.
  Forget lower is better, retain higher.
Cost: one greedy generation of up to 48 tokens per document; knowmem reuses the per-form QA probes.
"""

from __future__ import annotations

from obliviate.data.schema import Document
from obliviate.judge import rouge_l_f1
from obliviate.metrics.base import METRICS, EvalContext, Metric
from obliviate.models import LoadedModel
from obliviate.scoring import generate
from obliviate.stats import mean_ci

PROMPT_TOKENS = 32
CONTINUATION_TOKENS = 48


def split_document(tokenizer, text: str) -> tuple[str, str]:
    """(prompt, true continuation): the first half of the tokens (at most 32), then up to 48 more."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    cut = min(PROMPT_TOKENS, max(1, len(ids) // 2))
    return tokenizer.decode(ids[:cut]), tokenizer.decode(ids[cut : cut + CONTINUATION_TOKENS])


def _mean_with_ci(scores: list[float]) -> dict | None:
    if not scores:
        return None
    est = mean_ci(scores)
    return {"rouge_l": est.value, "rouge_l_ci": [est.lo, est.hi], "n": est.n}


def verbatim_memorisation(lm: LoadedModel, docs: list[Document], batch_size: int = 16) -> dict | None:
    """ROUGE-L F1 of greedy continuations against the documents' true continuations (mean, interval, n)."""
    pairs = [split_document(lm.tokenizer, d.text) for d in docs]
    pairs = [(p, c) for p, c in pairs if c.strip()]
    if not pairs:
        return None
    outs = generate(lm, [p for p, _ in pairs], CONTINUATION_TOKENS, batch_size, stop_at_newline=False)
    return _mean_with_ci([rouge_l_f1(o, c) for o, (_, c) in zip(outs, pairs)])


def knowledge_memorisation(lm: LoadedModel, ctx: EvalContext, split: str) -> dict | None:
    """ROUGE-L F1 of the greedy QA answers of a split against the right answers (mean, interval, n)."""
    return _mean_with_ci([rouge_l_f1(r.output, r.probe.answer) for r in ctx.probe_results(lm, split, "qa")])


@METRICS.register("muse")
class Muse(Metric):
    summary = "MUSE VerbMem (ROUGE-L F1 of continuations of forget documents) and KnowMem (ROUGE-L F1 of QA answers)"
    version = "2"
    section = "forgetting"
    higher_is_better = None  # forget: lower is better; retain: higher is better
    cost = "one greedy 48-token continuation per document + the QA probes (shared)"

    def applies(self, ctx):
        return bool(ctx.task.forget_documents)

    def compute(self, lm, ctx):
        n = ctx.config.max_facts
        out = {"verbmem": {"forget": verbatim_memorisation(lm, ctx.task.forget_documents[:n], ctx.config.batch_size)},
               "knowmem": {}}
        if ctx.task.retain_documents:
            out["verbmem"]["retain"] = verbatim_memorisation(lm, ctx.task.retain_documents[:n], ctx.config.batch_size)
        for split in ("forget", "retain"):
            if ctx.facts(split):
                out["knowmem"][split] = knowledge_memorisation(lm, ctx, split)
        return out
