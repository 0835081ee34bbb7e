"""What an attack is: a budgeted attempt to bring forgotten facts back, judged fact by fact.

Targets are the forget facts the ORIGINAL model answered (you cannot recover what was never known), judged
with the same `score_probes` judge as the forget card. Each attack reports, per target fact, whether it came
back and the evidence (prompt, output, probability), plus the budget it ran under.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from obliviate.data.forms import probes
from obliviate.data.schema import Fact, Task
from obliviate.models import LoadedModel
from obliviate.registry import Registry
from obliviate.scoring import score_probes


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
    """Forget facts the original model answers in QA form (all forget facts when no original is given)."""
    facts = ctx.task.forget[: ctx.budget.max_facts]
    if ctx.original is None:
        return facts
    results = score_probes(ctx.original, [probes(f, "qa")[0] for f in facts])
    return [f for f, r in zip(facts, results) if r.correct]


class Attack:
    """Base class: set the class attributes and implement `run` (check `self.elapsed()` against the time budget)."""

    summary: ClassVar[str] = ""
    paper: ClassVar[str] = ""

    def __init__(self) -> None:
        self._started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self._started

    def run(self, lm: LoadedModel, ctx: AttackContext) -> AttackResult:
        raise NotImplementedError


ATTACKS: Registry[type[Attack]] = Registry("attack")
