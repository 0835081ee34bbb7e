"""MUSE-style memorisation of forget documents (Shi et al. 2024, arXiv:2407.06460); applies only to tasks
with `forget_documents` (the verbatim / copyright setting).

- `verbmem`: each document is cut after its first half (at most `PROMPT_TOKENS` tokens); the model's greedy
  continuation is compared with the true next tokens (at most `CONTINUATION_TOKENS`) by ROUGE-L recall, in
  [0, 1]. On forget documents lower is better (the reference model's value is the target: common words make
  it > 0); on retain documents, when the task has them, higher is better.
- `knowmem`: ROUGE-L recall of the greedy answers to the forget (and retain) questions, the task's QA facts
  standing in for MUSE's document-derived QA. Forget lower is better, retain higher.
Cost: one greedy generation of up to 48 tokens per document; knowmem reuses the per-form QA probes.
"""

from __future__ import annotations

from obliviate.data.schema import Document
from obliviate.judge import rouge_l_recall
from obliviate.metrics.base import METRICS, EvalContext, Metric
from obliviate.models import LoadedModel
from obliviate.scoring import generate

PROMPT_TOKENS = 32
CONTINUATION_TOKENS = 48


def split_document(tokenizer, text: str) -> tuple[str, str]:
    """(prompt, true continuation): the first half of the tokens (at most 32), then up to 48 more."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    cut = min(PROMPT_TOKENS, max(1, len(ids) // 2))
    return tokenizer.decode(ids[:cut]), tokenizer.decode(ids[cut : cut + CONTINUATION_TOKENS])


def verbatim_memorisation(lm: LoadedModel, docs: list[Document], batch_size: int = 16) -> float | None:
    """Mean ROUGE-L recall of greedy continuations against the documents' true continuations."""
    pairs = [split_document(lm.tokenizer, d.text) for d in docs]
    pairs = [(p, c) for p, c in pairs if c.strip()]
    if not pairs:
        return None
    outs = generate(lm, [p for p, _ in pairs], CONTINUATION_TOKENS, batch_size, stop_at_newline=False)
    return sum(rouge_l_recall(o, c) for o, (_, c) in zip(outs, pairs)) / len(pairs)


def knowledge_memorisation(lm: LoadedModel, ctx: EvalContext, split: str) -> float | None:
    results = ctx.probe_results(lm, split, "qa")
    return sum(r.rouge_l for r in results) / len(results) if results else None


@METRICS.register("muse")
class Muse(Metric):
    summary = "MUSE VerbMem (ROUGE of continuations of forget documents) and KnowMem (ROUGE of QA answers)"
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
