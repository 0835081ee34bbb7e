"""Priming: does a fact's keyword spill into unrelated prompts of the same theme? (section keeping)

Outlandish (Sun et al. 2025, arXiv:2504.09522; research/methods.md §19). Learning a new fact can raise its
keyword's probability far outside the fact's own context ("priming"); unlearning can do the opposite and
suppress the keyword everywhere. Both are side effects on prompts that have nothing to do with the fact.

- Keyword: the FIRST token of the fact's answer as it follows a prompt (the answer with its leading space, the
  way every probe scores it), e.g. " Vel" of " Velmora"; the paper uses one-word keywords. Both models must
  share a tokenizer.
- Thematic prefixes X_j: `THEMES[relation]`, fixed sentence starts of the relation's theme that mention no
  person and no answer ("The conference next year takes place in" for birth cities). Only relations listed
  there are scored: birth_year is left out on purpose, because digits are tokenised one at a time and the first
  token of " 1961" says nothing about the year. Tasks without these relations (not builtin:people) do not apply.
- `log_priming`: per forget fact, log S_prime = log mean_j P_after(keyword | X_j) / P_before(keyword | X_j),
  averaged over facts (`log_priming_median`: median). 0 = unchanged; > 0 = the keyword leaks into unrelated
  text (after teaching); < 0 = it is suppressed there too (after unlearning). Closer to 0 is better.
- `log_memorisation`: the same ratio (log) in the fact's own context, its QA prompt (the paper's S_mem):
  > 0 after teaching, < 0 after forgetting. It tells whether the change happened at all.
"Before" is the `original=` model (the model before teaching or unlearning); without it the metric does not
apply. Range: any real number (logs); direction: |log_priming| -> 0 (no better-is-higher, hence None).
Cost: one teacher-forced pass per (fact, prefix) pair and per QA prompt, on both models; no generation.
"""

from __future__ import annotations

import math
import statistics

import torch

from obliviate.data.forms import qa_prompt, target
from obliviate.data.schema import Fact
from obliviate.metrics.base import METRICS, EvalContext, Metric
from obliviate.models import LoadedModel
from obliviate.scoring import answer_logprobs

THEMES: dict[str, tuple[str, ...]] = {
    "birth_city": ("The conference next year takes place in", "Last summer the festival was held in",
                   "She moved with her family to the city of", "The night train from the coast arrives in"),
    "profession": ("The job she wanted most was that of", "By trade, his grandfather was",
                   "The career guide describes the work of the", "Everyone in the village knew her as the local"),
    "employer": ("The new factory is owned by", "The contract was signed with",
                 "Shares rose sharply today for", "The product was developed by the company"),
    "mentor": ("The lecture was given by", "The letter was signed by",
               "The book was dedicated to", "The first speaker of the evening was"),
    "award": ("At the ceremony she finally won the", "The jury announced the winner of the",
              "His proudest moment was receiving the", "The trophy on the shelf is the"),
}
N_PREFIXES = 4
assert all(len(prefixes) == N_PREFIXES for prefixes in THEMES.values())  # scores are reshaped per fact


def _facts(ctx: EvalContext) -> list[Fact]:
    return [f for f in ctx.facts("forget") if f.relation in THEMES]


def keyword_logprobs(lm: LoadedModel, facts: list[Fact], batch_size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """log P(keyword | X_j): (n_facts, n_prefixes) over each fact's thematic prefixes, and (n_facts,) in its own
    QA prompt. The keyword is the first answer token, so it is the first entry of the answer's token log-probs."""
    n = N_PREFIXES
    prompts = [x for f in facts for x in (*THEMES[f.relation], qa_prompt(f.question))]
    targets = [target(f.answer) for f in facts for _ in range(n + 1)]
    first = torch.stack([lp[0] for lp in answer_logprobs(lm, prompts, targets, batch_size)]).view(len(facts), n + 1)
    return first[:, :n], first[:, n]


@METRICS.register("priming")
class Priming(Metric):
    summary = "log P_after/P_before of each forget answer's first token after unrelated thematic prompts (Outlandish)"
    section = "keeping"
    higher_is_better = None  # closer to 0 is better: > 0 leaks the keyword, < 0 suppresses it everywhere
    cost = "one teacher-forced pass per (fact, thematic prefix) and QA prompt, on this model and the original"

    def applies(self, ctx: EvalContext) -> bool:
        return ctx.original is not None and bool(_facts(ctx))

    def compute(self, lm, ctx):
        facts = _facts(ctx)

        def scored(model: LoadedModel) -> tuple[torch.Tensor, torch.Tensor]:
            key = ("priming", id(model.model))
            if key not in ctx.cache:
                ctx.cache[key] = keyword_logprobs(model, facts, ctx.config.batch_size)
            return ctx.cache[key]

        (themed_after, own_after), (themed_before, own_before) = scored(lm), scored(ctx.original)
        log_prime = (themed_after - themed_before).logsumexp(1) - math.log(N_PREFIXES)  # (n_facts,) log mean_j
        return {"forget": {"log_priming": float(log_prime.mean()),
                           "log_priming_median": statistics.median(log_prime.tolist()),
                           "log_memorisation": float((own_after - own_before).mean()),
                           "n_facts": len(facts), "n_prefixes": N_PREFIXES}}
