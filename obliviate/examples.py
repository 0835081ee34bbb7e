"""Example answers for the report: a few forget and retain facts, each model's greedy answer side by side.

Every model in one generations.json answers the same facts in the same form (chosen once, from the original
model), so the report can show before / after / reference per question. The form is the chat turn when the model
has a chat template (how users ask an instruct model), plain QA otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from obliviate.data.forms import has_chat_template, probes
from obliviate.data.schema import Fact, Task
from obliviate.models import LoadedModel
from obliviate.runs import read_json, write_json
from obliviate.scoring import score_probes


def example_facts(task: Task, original: LoadedModel | None, form: str, n_forget: int = 4,
                  n_retain: int = 2) -> list[tuple[str, Fact]]:
    """A few forget facts (those the original answers first: they show forgetting) and a few retain facts."""
    forget = list(task.forget[:30])
    if original is not None and forget:
        asked = [probes(f, form, original.tokenizer)[0] for f in forget]
        known = [r.correct for r in score_probes(original, asked)]
        forget = [f for f, k in zip(forget, known) if k] + [f for f, k in zip(forget, known) if not k]
    keep = task.retain or task.neighbours or task.general
    split = "retain" if task.retain else "neighbours" if task.neighbours else "general"
    return [("forget", f) for f in forget[:n_forget]] + [(split, f) for f in keep[:n_retain]]


def add_examples(path: str | Path, label: str, lm: LoadedModel, task: Task, original: LoadedModel | None = None,
                 n_forget: int = 4) -> dict[str, Any]:
    """Add `lm`'s greedy answers, under `label`, to generations.json (created with its fact list if absent)."""
    path = Path(path)
    if path.exists():
        data = read_json(path)
        by_id = task.facts_by_id()
        chosen = [(f["split"], by_id[f["fact_id"]]) for f in data["facts"]]
    else:
        form = "chat" if has_chat_template((original or lm).tokenizer) else "qa"
        chosen = example_facts(task, original, form, n_forget, max(1, n_forget // 2))
        data = {"form": form, "outputs": {}, "facts": [
            {"fact_id": f.id, "split": s, "question": f.question, "prompt": probes(f, form, lm.tokenizer)[0].prompt,
             "answer": f.answer} for s, f in chosen]}
    results = score_probes(lm, [probes(f, data["form"], lm.tokenizer)[0] for _, f in chosen])
    data["outputs"][label] = [{"output": r.output, "correct": r.correct, "probability": r.probability}
                              for r in results]
    write_json(path, data)
    return data
