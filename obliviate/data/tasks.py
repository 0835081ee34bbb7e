"""Task lookup: one `load(spec)` for built-in tasks, task YAML files and folders of split files.

Specs: `builtin:people[:config[:forget]]` (e.g. `builtin:people:small:forget05`), `builtin:realfacts`,
a path to a task YAML, or a folder holding forget.jsonl / retain.jsonl / ... (or its own task.yaml).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from obliviate.data import io
from obliviate.data.people import CONFIGS, FORGET_SPLITS, people_task
from obliviate.data.realfacts import real_facts, realfacts_task
from obliviate.data.rwku import is_rwku_folder, load_rwku
from obliviate.data.schema import Fact, Task
from obliviate.errors import ConfigError, TaskFormatError
from obliviate.registry import Registry

PREFIX = "builtin:"
TASKS: Registry[Callable[..., Task]] = Registry("task")
SPLIT_FILES = (".jsonl", ".csv", ".json", ".txt")


@TASKS.register("people")
def _people(config: str = "small", forget: str = "forget10", general: bool = True, **kw: Any) -> Task:
    """Fictitious people taught then forgotten (configs test/small/benchmark; forget01/05/10); general = realfacts."""
    if kw:
        raise ConfigError(f"builtin:people: unknown option(s) {sorted(kw)}; use config=, forget=, general=")
    task = people_task(config, forget)
    if general:
        task.general = real_facts()
        task.validate()
    return task


@TASKS.register("realfacts")
def _realfacts(size: str = "", forget_fraction: float | str = 0.1, seed: int | str = 0,
               facts: list[Fact] | None = None, unknown: list[Fact] | None = None, **kw: Any) -> Task:
    """~260 well-known real facts (capitals, books, symbols...) a model knows: forget/neighbours/retain, unknown = holdout.

    `builtin:realfacts:forget60` asks for 60 forget facts (default: 10 % of the known ones). `facts` / `unknown`:
    the facts a model knows and does not know (obliviate.known; the CLI passes them for the model at hand).
    """
    if kw:
        raise ConfigError(f"builtin:realfacts: unknown option(s) {sorted(kw)}; use forget_fraction=, seed=")
    n_forget = None
    if size:
        match = re.fullmatch(r"forget(\d+)", size)
        if not match:
            raise ConfigError(f"builtin:realfacts:{size}: use builtin:realfacts:forgetN, e.g. builtin:realfacts:forget60")
        n_forget = int(match.group(1))
    return realfacts_task(facts, float(forget_fraction), int(seed), unknown, n_forget)


def _from_folder(folder: Path) -> Task:
    """A task from a folder: its task.yaml/task.yml if any, else an RWKU target folder (obliviate.data.rwku), else
    files named after splits (forget.jsonl, ...)."""
    for name in ("task.yaml", "task.yml"):
        if (folder / name).is_file():
            return io.load_task(folder / name)
    if is_rwku_folder(folder):
        return load_rwku(folder)
    spec: dict[str, Any] = {"name": folder.name}
    for split in (*io.FACT_SPLITS, *io.DOC_SPLITS):
        found = [folder / f"{split}{ext}" for ext in SPLIT_FILES if (folder / f"{split}{ext}").is_file()]
        if found:
            spec[split] = [str(p) for p in found]
    if "forget" not in spec and "forget_documents" not in spec:
        raise TaskFormatError(f"{folder}: no task.yaml and no forget.jsonl/forget.csv/forget_documents.* here; add one")
    return io.load_task(spec)


def load(spec: str | Path, split: str | None = None, **kw: Any) -> Task:
    """Load a task by spec (see module docstring); `split` picks the forget split of builtin:people (forget05...).

    Extra keyword arguments go to the builtin task (people: config, forget, general; realfacts: forget_fraction, seed).
    """
    text = str(spec)
    if not text.startswith(PREFIX) and text.split(":")[0] in TASKS and not Path(text).exists():
        text = PREFIX + text  # "people:small" is accepted as "builtin:people:small"
    if text.startswith(PREFIX):
        name, *args = text[len(PREFIX):].split(":")
        builder = TASKS.get(name)
        if split is not None:
            if name != "people":
                raise ConfigError(f"{text}: split={split!r} only applies to builtin:people")
            kw["forget"] = split
        if name == "people" and len(args) > 2:
            raise ConfigError(f"{text}: too many parts; use builtin:people:<config>:<forget>")
        if name == "people":
            kw = {**dict(zip(("config", "forget"), args, strict=False)), **kw}
        elif name == "realfacts" and len(args) == 1:
            kw = {"size": args[0], **kw}
        elif args:
            raise ConfigError(f"{text}: too many ':' parts; see `obliviate tasks list`")
        return builder(**kw)
    if split is not None or kw:
        raise ConfigError(f"{text}: split= and options apply only to builtin tasks; edit the task files instead")
    path = Path(text)
    if path.is_dir():
        return _from_folder(path)
    if path.is_file():
        return io.load_task(path)
    if path.suffix in (".yaml", ".yml") or "/" in text or "\\" in text:
        raise TaskFormatError(f"{path}: task file not found; check the path")
    TASKS.get(text.removeprefix(PREFIX))  # raises UnknownNameError with suggestions
    raise AssertionError("unreachable")


def list_tasks() -> list[tuple[str, str]]:
    """(spec, one-line description) for every built-in task and people variant."""
    out = []
    for name, builder in TASKS.items():
        out.append((f"{PREFIX}{name}", (builder.__doc__ or "").strip().splitlines()[0]))
    for config, cfg in CONFIGS.items():
        out.append((f"{PREFIX}people:{config}", f"{cfg.n_people} fictitious people, seed {cfg.seed} "
                                               f"(add :{'|'.join(FORGET_SPLITS)} to pick the forget split)"))
    return out
