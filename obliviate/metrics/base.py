"""What a metric is: a class that declares its card section and direction, and computes numbers for a model.

The card code reads `section` and `higher_is_better` to order, colour and arrow the numbers, so a new metric
is one new file with no special cases elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from obliviate.data.forms import FORMS, probes
from obliviate.data.schema import Fact, Task
from obliviate.errors import ConfigError
from obliviate.judge import get_judge
from obliviate.models import LoadedModel
from obliviate.registry import Registry
from obliviate.scoring import GENERATION_BATCH, ProbeResult, score_probes

SECTIONS = ("forgetting", "keeping", "privacy", "intrinsic", "robustness", "cost")


@dataclass
class EvalConfig:
    """Budget of one evaluation; recorded in the card so numbers are comparable."""

    max_facts: int = 60  # per split; facts are taken in task order (deterministic)
    max_new_tokens: int | None = None  # None: room for the task's answers (scoring.answer_budget)
    batch_size: int = GENERATION_BATCH  # prompts per batch
    seed: int = 0
    forms: tuple[str, ...] = FORMS
    judge: str = "strict"  # "strict" (obliviate.judge.judge) or "contains" (lenient whole-word containment)

    def __post_init__(self) -> None:
        get_judge(self.judge)  # an unknown name fails here, before any model runs
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.batch_size}")


@dataclass
class EvalContext:
    """What metrics may use besides the model under test. `cache` is shared by all metrics of one card."""

    task: Task
    config: EvalConfig = field(default_factory=EvalConfig)
    reference: LoadedModel | None = None  # exact-unlearning reference (trained without the forget split)
    original: LoadedModel | None = None  # the model before unlearning
    cache: dict[Any, Any] = field(default_factory=dict)

    def facts(self, split: str) -> list[Fact]:
        return self.task.split(split)[: self.config.max_facts]

    def probe_results(self, lm: LoadedModel, split: str, form: str) -> list[ProbeResult]:
        """Scored probes of a split in one form, cached per (model, split, form) for the whole card."""
        key = ("probes", id(lm.model), split, form)
        if key not in self.cache:
            ps = [p for f in self.facts(split) for p in probes(f, form, lm.tokenizer)]
            self.cache[key] = score_probes(lm, ps, self.config.max_new_tokens, self.config.batch_size,
                                           judge_fn=get_judge(self.config.judge))
        return self.cache[key]


class Metric:
    """Base class. `compute` returns a (possibly nested) dict of floats; `None` means 'not applicable'."""

    summary: ClassVar[str] = ""
    section: ClassVar[str] = "forgetting"
    higher_is_better: ClassVar[bool | None] = None  # None: no direction (descriptive)
    version: ClassVar[str] = "1"
    cost: ClassVar[str] = ""  # e.g. "one generation per probe"
    default: ClassVar[bool] = True  # False: runs only when named (slow, or needs an optional extra)

    def applies(self, ctx: EvalContext) -> bool:
        return True

    def compute(self, lm: LoadedModel, ctx: EvalContext) -> dict[str, Any]:
        raise NotImplementedError


METRICS: Registry[type[Metric]] = Registry("metric")
