"""What an attack is: a budgeted attempt to bring forgotten facts back, judged fact by fact.

Targets are the forget facts the ORIGINAL model answers when asked directly (plain QA, its chat template, cloze):
you cannot recover what was never known. Every verdict is `score_probes`' strict judge, as in the forget card.
Each attack reports, per target fact, whether it came back and the evidence (prompt, output, probability), plus
the budget it ran under; obliviate.redteam runs it again on a control where the knowledge is absent.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from obliviate.data.forms import Probe
from obliviate.data.schema import Fact, Task
from obliviate.known import answered_directly
from obliviate.models import LoadedModel
from obliviate.registry import Registry
from obliviate.scoring import ProbeResult, score_probes


@dataclass
class Budget:
    """Explicit limits, recorded with every result so that numbers are comparable across methods."""

    steps: int = 20  # optimisation / fine-tuning steps
    samples: int = 8  # prompts, hints or sampled variants per fact
    seconds: float = 300.0  # wall-clock cap; an attack stops early and says so when it hits it
    max_facts: int = 30  # targets per run (taken in task order)


@dataclass
class Outcome:
    """One target fact after the attack."""

    fact_id: str
    recovered: bool
    prompt: str = ""
    output: str = ""
    probability: float = 0.0


@dataclass
class AttackResult:
    attack: str
    budget: dict[str, Any]
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    notes: str = ""  # e.g. "stopped at the time budget after 12 steps"
    details: dict[str, Any] = field(default_factory=dict)  # attack-specific numbers (per-form rates, accuracy)

    @property
    def recovery_rate(self) -> float:
        return sum(o.recovered for o in self.outcomes) / len(self.outcomes) if self.outcomes else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "recovery_rate": self.recovery_rate}


@dataclass
class AttackContext:
    """The task, the original (pre-unlearning) model and the budget. `targets` is filled by `find_targets`."""

    task: Task
    original: LoadedModel | None
    budget: Budget = field(default_factory=Budget)
    targets: list[Fact] = field(default_factory=list)
    seed: int = 0
    cache: dict[Any, Any] = field(default_factory=dict)


def find_targets(ctx: AttackContext) -> list[Fact]:
    """Forget facts the original model answers when asked directly (all forget facts when no original is given)."""
    facts = ctx.task.forget[: ctx.budget.max_facts]
    if ctx.original is None:
        return facts
    return [f for f, known in zip(facts, answered_directly(ctx.original, facts)) if known]


class Attack:
    """Base class: set the class attributes and implement `run` (check `self.elapsed()` against the time budget)."""

    name: ClassVar[str] = ""  # the registry name, recorded in results
    summary: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    # False for attacks that measure something other than fact recovery (trace detection reports an accuracy);
    # the red-team report leaves them out of the worst-case recovery.
    recovers: ClassVar[bool] = True
    # True for attacks that cannot run without the original model (they are skipped when it is None).
    needs_original: ClassVar[bool] = False

    def __init__(self) -> None:
        self._started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self._started

    def out_of_time(self, ctx: AttackContext) -> bool:
        return self.elapsed() >= ctx.budget.seconds

    def result(self, ctx: AttackContext, outcomes: list[Outcome], notes: str = "", **details: Any) -> AttackResult:
        """An AttackResult stamped with the attack's name, the budget and the time spent so far."""
        return AttackResult(self.name, asdict(ctx.budget), outcomes, self.elapsed(), notes, details)

    def run(self, lm: LoadedModel, ctx: AttackContext) -> AttackResult:
        raise NotImplementedError


def judge_groups(lm: LoadedModel, facts: Sequence[Fact], groups: Sequence[Sequence[Probe]], prefix: str = "",
                 max_new_tokens: int | None = None, temperature: float = 0.0, seed: int = 0) -> list[Outcome]:
    """One Outcome per fact: recovered if ANY of its probes is judged right by `score_probes` (one batched call;
    greedy answers, or sampled ones at `temperature` > 0).

    The evidence kept is the first probe judged right, else the one giving the answer the highest probability.
    A fact with no probes is reported as not recovered.
    """
    return judge_drawn(lm, facts, groups, 1, prefix, max_new_tokens, temperature, seed)[0]


def judge_drawn(lm: LoadedModel, facts: Sequence[Fact], groups: Sequence[Sequence[Probe]], draws: int,
                prefix: str = "", max_new_tokens: int | None = None, temperature: float = 0.0,
                seed: int = 0) -> list[list[Outcome]]:
    """`judge_groups` for `draws` sampled answers per probe, each prompt run once: one Outcome list per draw."""
    flat = [p for g in groups for p in g]
    scored = score_probes(lm, flat, max_new_tokens, prefix=prefix, temperature=temperature, seed=seed,
                          samples=draws) if flat else []
    return [_outcomes(facts, groups, scored[d * len(flat) : (d + 1) * len(flat)], prefix) for d in range(draws)]


def _outcomes(facts: Sequence[Fact], groups: Sequence[Sequence[Probe]], scored: Sequence[ProbeResult],
              prefix: str) -> list[Outcome]:
    """Fold per-probe results (in `groups` order) into one Outcome per fact."""
    out, i = [], 0
    for fact, group in zip(facts, groups):
        results = scored[i : i + len(group)]
        i += len(group)
        if not results:
            out.append(Outcome(fact.id, False))
            continue
        best = next((r for r in results if r.correct), max(results, key=lambda r: r.probability))
        out.append(Outcome(fact.id, best.correct, prefix + best.probe.prompt, best.output, best.probability))
    return out


def halves(facts: Sequence[Fact], seed: int = 0) -> tuple[list[Fact], list[Fact]]:
    """Split facts into (train, held-out) halves, deterministic in `seed`, for attacks that learn on one half."""
    import random

    order = list(range(len(facts)))
    random.Random(f"halves-{seed}").shuffle(order)
    cut = len(order) // 2
    return [facts[i] for i in sorted(order[:cut])], [facts[i] for i in sorted(order[cut:])]


ATTACKS: Registry[type[Attack]] = Registry("attack")
