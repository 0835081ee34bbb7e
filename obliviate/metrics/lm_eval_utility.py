"""lm-evaluation-harness accuracy on knowledge the model must keep (section keeping; opt-in: run it by name).

- `lm_eval_utility`: runs lm-eval through `obliviate.utility_bridge` on multiple-choice tasks written from this
  task's facts: `general` (the task's general split, or else the built-in realfacts the task does not use) and
  `retain` (its retain split), up to `max_facts` facts each. Per split: lm-eval's `acc` and `acc_norm` in
  [0, 1], higher is better (chance is 1 / number of options: 0.25 for realfacts), their stderrs, and `n`.
  The prompts are obliviate's own MCQ probes, so `acc` must equal the `forms` metric's MCQ accuracy on the same
  facts: two independent scorers agreeing, and the number reads the way the field's harness reports it.
  A subclass that sets `lm_eval_tasks` adds lm-eval tasks of the user's (MMLU, ARC...; docs/metrics.md).
  Not in the default set: lm-eval is an optional extra (`pip install 'obliviate[lmeval]'`) and adds start-up
  time. Naming it without the package raises a ConfigError before any metric runs.
  Cost: lm-eval start-up (~1 s; ~5 s more when extra tasks index lm-eval's built-ins) + one scoring pass over
  every option of every question.
"""

from __future__ import annotations

import tempfile
from typing import ClassVar

from obliviate.data.realfacts import real_facts
from obliviate.data.schema import SPLITS, Fact
from obliviate.metrics.base import METRICS, EvalContext, Metric
from obliviate.utility_bridge import require_lm_eval, run_lm_eval, write_mcq_tasks


def general_facts(ctx: EvalContext) -> list[Fact]:
    """The task's general split; without one, built-in realfacts that no split of the task uses (never forget ones)."""
    if ctx.facts("general"):
        return ctx.facts("general")
    used = {f.id for split in SPLITS for f in ctx.task.split(split)}
    return [f for f in real_facts() if f.id not in used][: ctx.config.max_facts]


@METRICS.register("lm_eval_utility")
class LmEvalUtility(Metric):
    summary = "lm-eval accuracy on general / retain multiple choice (opt-in: --metrics lm_eval_utility)"
    section = "keeping"
    higher_is_better = True
    default = False
    cost = "lm-eval start-up + one scoring pass over every option of every question"
    splits: ClassVar[tuple[str, ...]] = ("general", "retain")  # our facts, written as lm-eval tasks
    lm_eval_tasks: ClassVar[tuple[str, ...]] = ()  # the user's lm-eval task names, e.g. ("mmlu",)
    include_path: ClassVar[str | None] = None  # folder of the user's task YAMLs, if not lm-eval built-ins

    def split_facts(self, ctx: EvalContext) -> dict[str, list[Fact]]:
        return {s: general_facts(ctx) if s == "general" else ctx.facts(s) for s in self.splits}

    def applies(self, ctx):
        require_lm_eval()  # only ever asked when named (default = False): fail before slower metrics run
        return bool(self.lm_eval_tasks) or any(f.mcq for facts in self.split_facts(ctx).values() for f in facts)

    def compute(self, lm, ctx):
        with tempfile.TemporaryDirectory(prefix="obliviate-lmeval-") as folder:
            ours = write_mcq_tasks(folder, {f"obliviate_{s}_mcq": facts for s, facts in self.split_facts(ctx).items()})
            paths = [folder] + ([self.include_path] if self.include_path else [])
            values = run_lm_eval(lm, ours + list(self.lm_eval_tasks), paths, include_defaults=bool(self.lm_eval_tasks),
                                 batch_size=ctx.config.batch_size, seed=ctx.config.seed)
        # Our tasks are reported under their split's name, the user's under lm-eval's.
        return {name.removeprefix("obliviate_").removesuffix("_mcq") if name in ours else name: v
                for name, v in values.items()}
