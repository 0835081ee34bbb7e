"""Run attacks against an unlearned model and report, per attack, how many forgotten facts came back.

Targets are the forget facts the ORIGINAL model answers (all forget facts, up to `budget.max_facts`, when no
original is given). Every attack runs under the same `Budget` on the same targets, so rates are comparable
across attacks and across unlearning methods. The worst case is the highest recovery rate of any attack.
`baseline` is the plain-QA rate on the targets with no attack at all: an attack is only informative above it.
`beyond_plain(attack)` is the honest per-attack number: the share of the targets plain QA no longer answers
(`answered_plainly` lists the others) that the attack brought back.

>>> from obliviate.models import tiny_model
>>> from obliviate.data.people import people_task
>>> report = attack(tiny_model(), people_task("test"), None, ["form_change"], Budget(max_facts=2), progress=False)
>>> sorted(report.results), 0.0 <= report.worst_case[1] <= 1.0
(['form_change'], True)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from obliviate.attacks import ATTACKS, AttackContext, AttackResult, Budget, find_targets
from obliviate.data.forms import probes
from obliviate.data.schema import Task
from obliviate.models import LoadedModel
from obliviate.runs import environment, write_json
from obliviate.scoring import score_probes


@dataclass
class RedTeamReport:
    """Per-attack results on one model, with the shared budget and targets."""

    model: str
    original: str | None
    task: str
    budget: dict[str, Any]
    targets: list[str]
    baseline: float  # plain-QA recovery of the targets before any attack
    results: dict[str, AttackResult] = field(default_factory=dict)
    seconds: float = 0.0
    answered_plainly: list[str] = field(default_factory=list)  # targets plain QA still answers (not forgotten)

    def beyond_plain(self, name: str) -> tuple[int, int]:
        """(recovered, judged) over the attack's judged targets that plain QA no longer answers."""
        plain = set(self.answered_plainly)
        hidden = [o for o in self.results[name].outcomes if o.fact_id not in plain]
        return sum(o.recovered for o in hidden), len(hidden)

    @property
    def worst_case(self) -> tuple[str | None, float]:
        """(attack, rate) of the attack that recovered the most; trace detection and failed attacks excluded."""
        rates = [(name, r.recovery_rate) for name, r in self.results.items()
                 if ATTACKS.get(name).recovers and "error" not in r.details]
        return max(rates, key=lambda x: x[1], default=(None, 0.0))

    def to_dict(self) -> dict[str, Any]:
        worst, rate = self.worst_case
        return {
            "model": self.model, "original": self.original, "task": self.task, "budget": self.budget,
            "targets": self.targets, "baseline": self.baseline, "answered_plainly": self.answered_plainly,
            "worst_case": {"attack": worst, "recovery_rate": rate}, "seconds": self.seconds,
            "results": {name: {**r.to_dict(), "beyond_plain": self.beyond_plain(name)} for name, r in self.results.items()},
            "environment": environment(),
        }

    def save(self, path: str | Path) -> Path:
        """Write attacks.json (into `path` when it is a directory or has no .json suffix)."""
        path = Path(path)
        if path.suffix != ".json":
            path = path / "attacks.json"
        return write_json(path, self.to_dict())


def attack_names(attacks: str | list[str] | None) -> list[str]:
    """Registry names to run: all registered attacks for None, else the comma list / list (aliases resolved)."""
    if attacks is None:
        return [cls.name for _, cls in ATTACKS.items()]
    names = [a.strip() for a in attacks.split(",")] if isinstance(attacks, str) else list(attacks)
    return list(dict.fromkeys(ATTACKS.get(n).name for n in names if n))


def attack(lm: LoadedModel, task: Task, original: LoadedModel | None = None, attacks: str | list[str] | None = None,
           budget: Budget | None = None, *, seed: int = 0, options: dict[str, dict[str, Any]] | None = None,
           progress: bool = True) -> RedTeamReport:
    """Run each attack (all registered ones by default) on `lm` and collect a RedTeamReport.

    Args:
        lm: the unlearned model under attack (never modified; attacks that train work on copies).
        task: the task whose forget split was unlearned.
        original: the model before unlearning; targets are the forget facts it answers. None: all forget facts.
        attacks: names (or aliases), as a list or a comma-separated string.
        budget: shared limits (steps, samples, seconds per attack, max_facts); recorded in the report.
        options: per-attack constructor arguments, e.g. {"step_by_step": {"prompts": "my_prompts.jsonl"}}.
    An attack that raises is recorded with its error (and no outcomes) and the others still run.
    """
    budget = budget or Budget()
    options = options or {}
    console = Console(stderr=True, quiet=not progress)
    started = time.perf_counter()
    ctx = AttackContext(task, original, budget, seed=seed)
    ctx.targets = find_targets(ctx)
    plain = score_probes(lm, [probes(f, "qa")[0] for f in ctx.targets]) if ctx.targets else []
    report = RedTeamReport(lm.source, original.source if original else None, task.name, asdict(budget),
                           [f.id for f in ctx.targets], sum(r.correct for r in plain) / len(plain) if plain else 0.0,
                           answered_plainly=[f.id for f, r in zip(ctx.targets, plain) if r.correct])
    console.print(f"[bold]{len(ctx.targets)} target fact(s)[/bold]; plain QA answers {report.baseline:.0%} of them")
    for name in attack_names(attacks):
        cls = ATTACKS.get(name)
        if cls.needs_original and original is None:
            result = AttackResult(name, asdict(budget), notes="skipped: needs the original model")
        else:
            console.print(f"attack [cyan]{name}[/cyan] …")
            try:
                instance = cls(**options.get(name, {}))
                result = instance.run(lm, AttackContext(task, original, budget, list(ctx.targets), seed, ctx.cache))
            except Exception as e:  # recorded and shown, never swallowed: the report carries the error
                result = AttackResult(name, asdict(budget), notes=f"error: {type(e).__name__}: {e}",
                                      details={"error": repr(e)})
        report.results[name] = result
    report.seconds = time.perf_counter() - started
    return report


def print_report(report: RedTeamReport, console: Console | None = None) -> None:
    """A rich table: recovery per attack (with the plain-QA baseline), time, and notes; worst case last."""
    console = console or Console()
    table = Table(title=f"attacks on {report.model} — {report.task} ({len(report.targets)} targets)")
    table.add_column("attack")
    table.add_column("recovered", justify="right")
    table.add_column("of the forgotten", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("notes", overflow="fold")
    table.add_row("[dim]no attack (plain QA)[/dim]", f"[dim]{report.baseline:.0%}[/dim]", "", "", "")
    for name, r in report.results.items():
        beyond = ""
        if "error" in r.details:
            rate = "[red]error[/red]"
        elif not ATTACKS.get(name).recovers:
            acc = r.details.get("accuracy")
            rate = f"acc {acc:.0%}" if isinstance(acc, float) else "—"
        else:
            n = sum(o.recovered for o in r.outcomes)
            colour = "red" if r.recovery_rate > report.baseline else "green"
            rate = f"[{colour}]{r.recovery_rate:.0%}[/{colour}] ({n}/{len(r.outcomes)})"
            back, hidden = report.beyond_plain(name)
            beyond = f"{back}/{hidden}" if hidden else "—"
        table.add_row(name, rate, beyond, f"{r.seconds:.0f}", r.notes)
    console.print(table)
    worst, rate = report.worst_case
    console.print(f"worst case: [bold]{rate:.0%}[/bold] recovered by {worst or '—'} "
                  f"(plain QA {report.baseline:.0%}, budget {report.budget})")


def run_attack_command(model: str, original: str | None, task: str, attacks: str | list[str] | None,
                       out: str | Path | None, budget: Budget | None = None) -> RedTeamReport:
    """What `obliviate attack` does: resolve models and task, run the attacks, print the table, save attacks.json."""
    from obliviate.pipeline import load_task, resolve_model
    from obliviate.runs import new_run_dir

    lm = resolve_model(model)
    orig = resolve_model(original) if original else None
    the_task = load_task(task)
    report = attack(lm, the_task, orig, attacks, budget)
    report.model, report.original = model, original
    out = Path(out) if out else new_run_dir(prefix="attack")
    path = report.save(out)
    print_report(report)
    Console().print(f"attacks → {path}")
    return report
