"""The forget card: run the selected metrics on one model and keep every number with its provenance.

>>> from obliviate.models import tiny_model
>>> from obliviate.data.people import people_task
>>> card = evaluate(tiny_model(), people_task("test"), metrics=["forms"], config=EvalConfig(max_facts=2))
>>> sorted(card.metrics["forms"]["values"])[:2]
['forget', 'holdout']
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from obliviate.data.forms import has_chat_template
from obliviate.data.schema import Task
from obliviate.metrics import METRICS, EvalConfig, EvalContext
from obliviate.models import LoadedModel
from obliviate.progress import phase
from obliviate.runs import environment, read_json, write_json


@dataclass
class Card:
    """Every metric's values for one model on one task, plus the config that produced them."""

    model: str
    task: str
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def value(self, metric: str, *path: str) -> Any:
        """A nested value, e.g. card.value("forms", "forget", "qa", "accuracy"); None if absent."""
        node: Any = self.metrics.get(metric, {}).get("values")
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    def save(self, path: str | Path) -> Path:
        return write_json(path, asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> Card:
        return cls(**read_json(path))


def evaluate(
    lm: LoadedModel,
    task: Task,
    metrics: list[str] | None = None,
    *,
    reference: LoadedModel | None = None,
    original: LoadedModel | None = None,
    config: EvalConfig | None = None,
    context: EvalContext | None = None,
) -> Card:
    """Compute the forget card of `lm` on `task`.

    Args:
        metrics: metric names (default: every registered metric with `default` set that applies to this task and
            these models).
        reference: the exact-unlearning reference model (trained without the forget split), if any.
        original: the model before unlearning, if any.
        context: reuse another card's context (and its cache) instead of building one.
    """
    ctx = context or EvalContext(task, config or EvalConfig(), reference=reference, original=original)
    names = metrics or [name for name, cls in METRICS.items() if cls.default]
    chosen = [(name, METRICS.get(name)()) for name in names]
    # Every `applies` runs before any `compute`, so a named metric that cannot run fails before the slow ones.
    applies = {name: metric.applies(ctx) for name, metric in chosen}
    card = Card(model=lm.source, task=task.name,
                config={"eval": asdict(ctx.config), "environment": environment(),
                        "dtype": str(next(lm.model.parameters()).dtype).removeprefix("torch."),
                        "reference": reference.source if reference else None,
                        "original": original.source if original else None,
                        "notes": ([f"chat form skipped: {lm.source} has no chat template"]
                                  if "chat" in ctx.config.forms and not has_chat_template(lm.tokenizer) else [])})
    with phase(f"forget card of {lm.source}", total=sum(applies.values())) as step:
        for name, metric in chosen:
            if not applies[name]:
                if metrics:  # asked for by name: say why it is missing rather than dropping it silently
                    card.metrics[name] = {"skipped": "does not apply to this task / these models"}
                continue
            started = time.perf_counter()
            values = metric.compute(lm, ctx)
            card.metrics[name] = {
                "values": values, "version": metric.version, "section": metric.section,
                "higher_is_better": metric.higher_is_better, "seconds": round(time.perf_counter() - started, 2),
            }
            step(name)
    return card
