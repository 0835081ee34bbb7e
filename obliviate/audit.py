"""Audit an unlearned model in one resumable run: forget cards, the red team, example answers, the report.

Each stage writes its own file atomically (cards/<label>.json, attacks/<name>.json, attacks.json,
generations.json), so a killed audit re-run into the same folder skips what is finished and gives the same
numbers: every stage reseeds before it starts and reads nothing that an earlier stage left in memory.
audit.json records the inputs; resuming with different inputs is refused rather than mixing two audits.

>>> from obliviate.models import tiny_model
>>> from obliviate.data.people import people_task
>>> out = audit(tiny_model(), tiny_model(seed=1), people_task("test"), "runs/audit-doc",
...             config=AuditConfig(metrics=["forms"], attacks=["form_change"], max_facts=2))  # doctest: +SKIP
>>> (out / "report.html").exists()                                                          # doctest: +SKIP
True
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from obliviate.attacks import AttackResult, Budget, Outcome
from obliviate.data.forms import FORMS
from obliviate.data.schema import Task
from obliviate.examples import add_examples
from obliviate.models import LoadedModel
from obliviate.runs import environment, new_run_dir, read_json, same_inputs_or_fail, write_json

ModelSpec = str | LoadedModel
TaskSpec = str | Task


@dataclass
class AuditConfig:
    """What the audit measures and under which budget (recorded in audit.json)."""

    metrics: list[str] | None = None  # forget-card metrics; None: every metric that applies
    attacks: list[str] | None = None  # attack names; None: every registered attack
    budget: Budget = field(default_factory=Budget)  # shared by every attack
    max_facts: int = 60  # per split, for the cards
    forms: list[str] = field(default_factory=lambda: list(FORMS))  # asked by the cards' per-form metric
    examples: int = 4  # forget facts shown before/after (plus half as many retain facts)
    seed: int = 0
    attack_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # per attack: its settings (`--set`)


def seed_everything(seed: int) -> None:
    """Reseed every generator a stage might draw from, so a stage's numbers do not depend on what ran before."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ------------------------------------------------------------------------------------------------- stages

class Stages:
    """Runs named stages once each: skips those whose file exists, times the rest and prints an ETA."""

    def __init__(self, out: Path, manifest: dict[str, Any], console: Console) -> None:
        self.out, self.manifest, self.console = out, manifest, console
        self.manifest.setdefault("stages", {})
        self.plan: list[tuple[str, Path, float | None]] = []

    def add(self, name: str, path: Path, estimate: float | None = None) -> None:
        self.plan.append((name, path, estimate))

    def eta(self, start: int) -> float | None:
        rest = [self.estimate(name, est) for name, path, est in self.plan[start:] if not path.exists()]
        return None if any(r is None for r in rest) else sum(rest)  # type: ignore[misc]

    def estimate(self, name: str, default: float | None) -> float | None:
        """Seconds a stage should take: its own earlier time, or the mean of finished stages of the same kind."""
        done = self.manifest["stages"]
        if name in done:
            return done[name]["seconds"]
        kind = name.split(":")[0]
        same = [s["seconds"] for n, s in done.items() if n.split(":")[0] == kind]
        return sum(same) / len(same) if same else default

    def run(self, name: str, fn: Callable[[], Any], seed: int) -> bool:
        """Run `fn` unless the stage's file exists; returns True when it ran."""
        i = next(k for k, (n, _, _) in enumerate(self.plan) if n == name)
        path = self.plan[i][1]
        tag = f"[{i + 1}/{len(self.plan)}] {name}"
        if path.exists():
            self.console.print(f"[dim]{tag}: done earlier → {path.relative_to(self.out)}[/dim]")
            return False
        est, total = self.estimate(name, self.plan[i][2]), self.eta(i)
        hint = " · ".join(x for x in (f"~{_secs(est)}" if est is not None else "",
                                      f"all left ~{_secs(total)}" if total is not None else "") if x)
        started = time.perf_counter()
        seed_everything(seed)
        with self.console.status(f"{tag} … {hint}"):
            fn()
        seconds = time.perf_counter() - started
        self.manifest["stages"][name] = {"seconds": round(seconds, 2), "file": str(path.relative_to(self.out))}
        write_json(self.out / "audit.json", self.manifest)
        self.console.print(f"{tag}: [green]done[/green] in {_secs(seconds)} → {path.relative_to(self.out)}")
        return True


def _secs(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def _spec(x: ModelSpec | TaskSpec | None) -> str | None:
    if x is None:
        return None
    if isinstance(x, LoadedModel):
        return x.source
    if isinstance(x, Task):
        return x.name
    return str(x)


def merge_attacks(out: Path, names: list[str]) -> Path:
    """attacks.json from the per-attack files, through RedTeamReport so that worst case and format are theirs."""
    from obliviate.redteam import RedTeamReport

    parts = [read_json(out / "attacks" / f"{name}.json") for name in names]
    first = parts[0]
    report = RedTeamReport(first["model"], first["original"], first["task"], first["budget"], first["targets"],
                           first["baseline"], seconds=sum(p["seconds"] for p in parts),
                           answered_plainly=first.get("answered_plainly", []),
                           control=next((p["control"] for p in parts if p.get("control")), {}))
    for part in parts:
        for name, r in part["results"].items():
            report.results[name] = _attack_result(r)
            if r.get("control"):
                report.controls[name] = _attack_result(r["control"])
    return report.save(out / "attacks.json")


def _attack_result(r: dict[str, Any]) -> AttackResult:
    """An AttackResult from its saved dict (AttackResult.to_dict plus the report's extra keys)."""
    return AttackResult(r["attack"], r["budget"], [Outcome(**o) for o in r["outcomes"]], r["seconds"], r["notes"],
                        r.get("details", {}))


def audit(model: ModelSpec, original: ModelSpec | None, task: TaskSpec, out_dir: str | Path | None = None,
          reference: ModelSpec | None = None, config: AuditConfig | None = None, progress: bool = True) -> Path:
    """Forget cards (original, unlearned, reference), every attack, example answers and report.html in `out_dir`.

    Args:
        model: the unlearned model: a spec for `resolve_model` ("runs/x/model", "taught:builtin:people") or a model.
        original: the model before unlearning (targets of the attacks, the "before" column); None to skip.
        task: a task spec for `load_task` or a Task.
        out_dir: the run folder; re-running into it resumes (default: runs/audit-<time>).
        reference: the exact-unlearning reference, if any.
    Returns the run folder. Raises ConfigError when `out_dir` holds an audit made with other inputs.
    """
    from obliviate.card import evaluate
    from obliviate.metrics import EvalConfig, EvalContext
    from obliviate.redteam import attack, attack_names
    from obliviate.report.html import render_report

    config = config or AuditConfig()
    out = Path(out_dir) if out_dir else new_run_dir(prefix="audit")
    out.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True, quiet=not progress)
    inputs = {"model": _spec(model), "original": _spec(original), "reference": _spec(reference),
              "task": _spec(task), "config": asdict(config)}
    manifest = {**inputs, "environment": environment()}
    manifest = {**same_inputs_or_fail(out / "audit.json", inputs, "audit"), **manifest}
    write_json(out / "audit.json", manifest)
    _copy_provenance(model, out)

    cache: dict[str, Any] = {}

    def load(key: str) -> Any:
        """Models, the task and the eval context, loaded only when a pending stage needs them."""
        if key not in cache:
            from obliviate.pipeline import load_task, resolve_model

            spec = {"model": model, "original": original, "reference": reference}.get(key)
            if key == "task":
                # builtin:realfacts is split by what the original knows (default: the shipped model)
                cache[key] = task if isinstance(task, Task) else load_task(task, load("original"))
            elif key == "context":
                eval_config = EvalConfig(max_facts=config.max_facts, seed=config.seed, forms=tuple(config.forms))
                cache[key] = EvalContext(load("task"), eval_config, reference=load("reference"),
                                         original=load("original"))
            else:
                cache[key] = spec if spec is None or isinstance(spec, LoadedModel) else resolve_model(spec)
        return cache[key]

    stages = Stages(out, manifest, console)
    labels = [("original", original), ("unlearned", model), ("reference", reference)]
    labels = [(label, spec) for label, spec in labels if spec is not None]
    for label, _ in labels:
        stages.add(f"card:{label}", out / "cards" / f"{label}.json")
    names = attack_names(config.attacks)
    for name in names:
        stages.add(f"attack:{name}", out / "attacks" / f"{name}.json", config.budget.seconds)
    stages.add("examples", out / "generations.json")

    key = {"original": "original", "unlearned": "model", "reference": "reference"}
    for label, _ in labels:
        stages.run(f"card:{label}", lambda label=label: evaluate(
            load(key[label]), load("task"), config.metrics, context=load("context")
        ).save(out / "cards" / f"{label}.json"), config.seed)
    for name in names:
        stages.run(f"attack:{name}", lambda name=name: attack(
            load("model"), load("task"), load("original"), [name], config.budget, reference=load("reference"),
            seed=config.seed, progress=False, options=config.attack_options).save(out / "attacks" / f"{name}.json"),
            config.seed)
    if names:
        merge_attacks(out, names)

    def examples() -> None:
        path = out / "generations.json.building"  # the stage's file appears only once every model answered
        path.unlink(missing_ok=True)
        for label, _ in labels:
            add_examples(path, label, load(key[label]), load("task"),
                         load("original"), config.examples)
        path.replace(out / "generations.json")

    stages.run("examples", examples, config.seed)
    report = render_report(out)
    total = sum(s["seconds"] for s in manifest["stages"].values())
    manifest["seconds"] = round(total, 1)
    write_json(out / "audit.json", manifest)
    _summary(console, out, report)
    return out


def _copy_provenance(model: ModelSpec, out: Path) -> None:
    """When the model is a run's model/ folder, keep that run's config and history beside the audit."""
    if isinstance(model, LoadedModel) or not Path(model).is_dir() or Path(model).name != "model":
        return
    run = Path(model).parent
    for name in ("config.json", "history.json"):
        if (run / name).is_file() and not (out / name).exists() and run.resolve() != out.resolve():
            shutil.copyfile(run / name, out / name)


def _summary(console: Console, out: Path, report: Path) -> None:
    from obliviate.report.markdown import read_run, verdict

    files = read_run(out)
    for label in files.labels("unlearned"):
        v = verdict(files, label)
        colour = {"good": "green", "mixed": "yellow", "bad": "red"}[v.level]
        console.print(f"[bold {colour}]{v.headline}[/bold {colour}]\n{v.judgement}")
    console.print("[bold]files[/bold]")
    for path in [report, out / "report.md", *sorted((out / "cards").glob("*.json")), out / "attacks.json",
                 out / "generations.json", out / "audit.json"]:
        if path.exists():
            console.print(f"  {path}")


def run_audit_command(model: str, original: str | None, task: str, out: Path | None, reference: str | None,
                      attacks: str | None, metrics: str | None, max_facts: int, steps: int, samples: int,
                      seconds: float, attack_facts: int, seed: int, settings: list[str] | None = None) -> Path:
    """What `obliviate audit` does (comma lists for attacks and metrics; "none" runs no attack; `settings`:
    `--set attack.key=value` items)."""
    from obliviate.redteam import attack_options

    names = None if attacks in (None, "all") else [] if attacks == "none" else [a.strip() for a in attacks.split(",")]
    budget = Budget(steps=steps, samples=samples, seconds=seconds, max_facts=attack_facts)
    config = AuditConfig(metrics=metrics.split(",") if metrics else None, attacks=names, budget=budget,
                         max_facts=max_facts, seed=seed, attack_options=attack_options(settings or []))
    return audit(model, original, task, out, reference, config)
