"""Teach a model a task's facts, and build the exact-unlearning reference (the TOFU protocol on any task).

For builtin:people the facts are invented, so the base model provably does not know them (the TOFU idea); a
user's own task (TOFU-layout files, a task folder or YAML) is taught the same way, so that `eval` and `audit` can
report forget quality against a reference that never saw the forget split. We fine-tune on
everything except the holdout split, in two wordings (QA pairs and short biographies) so that the
knowledge is not tied to one phrasing; the other forms (cloze, multiple choice, true/false, paraphrases,
two-hop) are never trained, so they measure knowledge rather than memorised strings. The reference model is the same recipe without the forget split:
the model that never saw what we want forgotten. Both are cached on disk, keyed by every input that
changes them.
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from obliviate.data.people import teach_facts
from obliviate.data.schema import Task
from obliviate.errors import ConfigError
from obliviate.methods.base import target_nll
from obliviate.models import LoadedModel, cache_dir, load_model, save_model
from obliviate.runs import write_json
from obliviate.train import Examples, TrainConfig, run_training
from obliviate.unlearn import fact_examples

TEACH_FORMS = ("qa",)  # plus the biographies; cloze, MCQ, T/F and paraphrases stay unseen wordings


@dataclass
class TeachConfig:
    """How facts are taught. The defaults, on builtin:people small with SmolLM2-135M (fp32, 79 steps, 5.4 min on 2
    cores), reach QA accuracy 0.92 on forget and 0.94 on retain under the strict judge, 0.17 on never-taught holdout
    people (guessable cities); 5 epochs reached only 0.58 / 0.75 (2026-12-06, benchmarks/teach.py)."""

    epochs: float = 10.0
    lr: float = 1e-4
    batch_size: int = 16
    seed: int = 0
    warmup_steps: int = 5


def teach_examples(task: Task, exclude_forget: bool = False) -> Examples:
    """QA pairs of every taught fact plus the biographies (of non-forgotten people when `exclude_forget`)."""
    # Sorted by id, so every forget split of one people config shares one taught model (same data, same order).
    facts = sorted((f for f in teach_facts(task) if not (exclude_forget and f in task.forget)), key=lambda f: f.id)
    forget_people = {t for f in task.forget for t in f.tags if t.startswith("person:")}
    docs = sorted((d for d in task.teach_documents if not (exclude_forget and set(d.tags) & forget_people)),
                  key=lambda d: d.id)
    return fact_examples(facts, TEACH_FORMS, docs)


def check_teachable(task: Task) -> None:
    """The protocol needs both halves: forget (what the taught model knows and the reference does not) and
    retain (what both know, so the reference is the same model minus the forget split)."""
    for split in ("forget", "retain"):
        if not getattr(task, split):
            raise ConfigError(f"teach: task {task.name!r} has no {split} facts; add a '{split}' split (the "
                              "taught model learns forget + retain, the exact reference retain only)")


def teach(lm: LoadedModel, task: Task, config: TeachConfig | None = None, exclude_forget: bool = False,
          progress: bool = True) -> LoadedModel:
    """Fine-tune `lm` (in place) on the task's taught facts; returns it."""
    config = config or TeachConfig()
    examples = teach_examples(task, exclude_forget)
    steps = max(1, round(config.epochs * len(examples) / config.batch_size))
    train_config = TrainConfig(steps=steps, lr=config.lr, batch_size=config.batch_size, seed=config.seed,
                               warmup_steps=config.warmup_steps, progress=progress)
    label = "teach[reference]" if exclude_forget else "teach"
    result = run_training(lm, lambda ctx, b: (target_nll(ctx.model, b.forget), {}), examples, None, train_config,
                          watch=[p for p in examples.prompts if p][:4], description=label)
    result.lm.source = f"{lm.source}+{label}"
    return result.lm


def _key(base: str, task: Task, config: TeachConfig, exclude_forget: bool) -> str:
    payload = json.dumps({"base": base, "config": asdict(config), "exclude_forget": exclude_forget,
                          "examples": asdict(teach_examples(task, exclude_forget))}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def taught_path(task: Task, base: str = "default", exclude_forget: bool = False,
                config: TeachConfig | None = None) -> Path:
    """Where the taught model (or reference) of `task` on `base` is cached: a plain HF model folder."""
    kind = "reference" if exclude_forget else "taught"
    return cache_dir() / "taught" / f"{kind}-{_key(base, task, config or TeachConfig(), exclude_forget)}"


def taught_model(task: Task, base: str = "default", exclude_forget: bool = False,
                 config: TeachConfig | None = None, progress: bool = True) -> LoadedModel:
    """The base model taught `task` (or its exact-unlearning reference), from the cache when it exists."""
    config = config or TeachConfig()
    check_teachable(task)
    kind = "reference" if exclude_forget else "taught"
    path = taught_path(task, base, exclude_forget, config)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process teaching the same model: wait for it, then reuse
        if not (path / "model.safetensors").exists():
            lm = teach(load_model(base), task, config, exclude_forget, progress)
            tmp = path.with_name(path.name + ".partial")
            shutil.rmtree(tmp, ignore_errors=True)
            save_model(lm, tmp)
            write_json(tmp / "obliviate_teach.json", {"task": task.name, "base": base, "kind": kind, **asdict(config)})
            tmp.rename(path)
    lm = load_model(str(path))
    lm.source = f"{base}+{kind}:{task.name}"
    return lm


def copy_model(lm: LoadedModel) -> LoadedModel:
    """An independent copy (methods change models in place)."""
    return LoadedModel(copy.deepcopy(lm.model), lm.tokenizer, lm.source)
