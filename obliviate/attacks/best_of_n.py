"""Best-of-N sampling: ask each forget fact directly N times with sampled answers; recovered if any is right.

Greedy decoding shows the single most likely answer; an unlearned model may still give the forgotten one a
fair share of its probability, which sampling finds (Scholten et al., "A Probabilistic Perspective on
Unlearning and Alignment for Large Language Models", arXiv 2410.03523, show greedy evaluation overstates
forgetting). N tries also find answers by luck, which is why the same N tries run on the control (holdout
facts, or the exact-unlearning reference) and only recovery above it counts. N = `budget.samples`, T = 1.0
(the model's own distribution, no top-p), every direct form (QA, chat, cloze), strict judge.
"""

from __future__ import annotations

from obliviate.attacks.base import ATTACKS, Attack, AttackContext, AttackResult, judge_drawn
from obliviate.data.forms import direct_probes
from obliviate.errors import ConfigError
from obliviate.models import LoadedModel

# Answers sampled per pass over the prompts: each prompt is run once and decoded this many times, so a pass
# decodes up to 4 × 64 rows at once (wider decode steps amortise reading the weights) and the time budget is
# checked between passes.
DRAWS_PER_PASS = 4


@ATTACKS.register("best_of_n")
class BestOfN(Attack):
    name = "best_of_n"
    summary = "sample N answers (T = 1) to each direct question; recovered when any is right"
    paper = "A Probabilistic Perspective on Unlearning and Alignment for LLMs (Scholten et al., arXiv 2410.03523)"

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ConfigError(f"best_of_n: temperature must be > 0 (0 is greedy decoding), got {temperature}")
        self.temperature = temperature

    def run(self, lm: LoadedModel, ctx: AttackContext) -> AttackResult:
        groups = [direct_probes(f, lm.tokenizer) for f in ctx.targets]
        best, cumulative, wanted = None, [], max(1, ctx.budget.samples)
        while len(cumulative) < wanted and not (best is not None and self.out_of_time(ctx)):
            draws = min(DRAWS_PER_PASS, wanted - len(cumulative))
            for outcomes in judge_drawn(lm, ctx.targets, groups, draws, temperature=self.temperature,
                                        seed=ctx.seed * 1000 + len(cumulative)):
                best = outcomes if best is None else [b if b.recovered else o for b, o in zip(best, outcomes)]
                cumulative.append(sum(o.recovered for o in best))
        notes = f"{len(cumulative)} sampled answers per question at T = {self.temperature}"
        if len(cumulative) < ctx.budget.samples:
            notes += " (time budget)"
        return self.result(ctx, best, notes, temperature=self.temperature, samples=len(cumulative),
                           recovered_after_k_samples=cumulative)
