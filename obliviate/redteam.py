"""Run attacks against an unlearned model and report, per attack, how much came back above a control.

Targets are the forget facts the ORIGINAL model answers when asked directly (all forget facts, up to
`budget.max_facts`, when no original is given). Every attack runs under the same `Budget` on the same targets,
and then again, with the same budget, seed and number of tries, on a CONTROL where the knowledge is absent:

- `reference`: the exact-unlearning reference (never trained on the forget set) on the same targets; the
  comparison is paired, fact by fact.
- `holdout`: the model under attack on the task's holdout facts (same kind, never learned); the comparison is
  between two independent samples.

An attack that takes the best of several tries, or picks a setting with the judge, also "recovers" facts by
luck; the control pays for the same tries, so what is left is `above_control`: the attack's rate minus the
control's, with a 95 % interval (Newcombe). Only an interval above 0 says the knowledge is still there.
`baseline` is the share of targets the model still answers asked directly (its control's share is in `control`),
`above_plain(attack)` is the attack's rate minus that on the same targets (paired: what the attack adds), and
`beyond_plain(attack)` counts what the attack brought back of the targets no longer answered directly.

>>> from obliviate.models import tiny_model
>>> from obliviate.data.people import people_task
>>> report = attack(tiny_model(), people_task("test"), None, ["form_change"], Budget(max_facts=2), progress=False)
>>> sorted(report.results), report.control["kind"]
(['form_change'], 'holdout')
"""

from __future__ import annotations

import inspect
import time
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from obliviate.attacks import ATTACKS, AttackContext, AttackResult, Budget, find_targets
from obliviate.data.schema import Fact, Task
from obliviate.errors import ConfigError
from obliviate.known import answered_directly
from obliviate.models import LoadedModel
from obliviate.progress import phase
from obliviate.runs import environment, write_json
from obliviate.stats import Estimate, difference, proportion


@dataclass
class RedTeamReport:
    """Per-attack results on one model and on its control, with the shared budget and targets."""

    model: str
    original: str | None
    task: str
    budget: dict[str, Any]
    targets: list[str]
    baseline: float  # plain-QA recovery of the targets before any attack
    results: dict[str, AttackResult] = field(default_factory=dict)
    seconds: float = 0.0
    answered_plainly: list[str] = field(default_factory=list)  # targets plain QA still answers (not forgotten)
    control: dict[str, Any] = field(default_factory=dict)  # kind, model, targets, answered_plainly
    controls: dict[str, AttackResult] = field(default_factory=dict)  # the same attacks on the control

    @property
    def paired(self) -> bool:
        return self.control.get("kind") == "reference"

    def beyond_plain(self, name: str) -> tuple[int, int]:
        """(recovered, judged) over the attack's judged targets that plain QA no longer answers."""
        plain = set(self.answered_plainly)
        hidden = [o for o in self.results[name].outcomes if o.fact_id not in plain]
        return sum(o.recovered for o in hidden), len(hidden)

    def _compare(self, mine: dict[str, bool], theirs: dict[str, bool]) -> Estimate:
        if self.paired:
            shared = [f for f in mine if f in theirs]
            return difference([mine[f] for f in shared], [theirs[f] for f in shared], paired=True)
        return difference(list(mine.values()), list(theirs.values()))

    def above_control(self, name: str) -> Estimate | None:
        """The attack's recovery rate minus the control's, with its 95 % interval (None without a control run)."""
        if name not in self.controls or not self.results[name].outcomes or not self.controls[name].outcomes:
            return None
        mine = {o.fact_id: o.recovered for o in self.results[name].outcomes}
        theirs = {o.fact_id: o.recovered for o in self.controls[name].outcomes}
        return self._compare(mine, theirs)

    def above_plain(self, name: str) -> Estimate | None:
        """The attack's rate minus asking directly, on the same targets (paired): what the attack adds."""
        outcomes = self.results[name].outcomes
        if not outcomes:
            return None
        plain = set(self.answered_plainly)
        return difference([o.recovered for o in outcomes], [o.fact_id in plain for o in outcomes], paired=True)

    def plain_above_control(self) -> Estimate | None:
        """Plain QA on the targets minus plain QA on the control: knowledge left with no attack at all."""
        if not self.targets or not self.control.get("targets"):
            return None
        mine = {f: f in set(self.answered_plainly) for f in self.targets}
        control_plain = set(self.control.get("answered_plainly", []))
        theirs = {f: f in control_plain for f in self.control["targets"]}
        return self._compare(mine, theirs)

    def recovering(self) -> list[str]:
        """Attacks that report fact recovery and ran without error."""
        return [name for name, r in self.results.items() if ATTACKS.get(name).recovers and "error" not in r.details]

    @property
    def worst_case(self) -> tuple[str | None, Estimate | None]:
        """(attack, above-control estimate) of the attack whose interval reaches highest (lower bound first)."""
        rated = [(name, est) for name in self.recovering() if (est := self.above_control(name)) is not None]
        return max(rated, key=lambda x: (x[1].lo, x[1].value), default=(None, None))

    def to_dict(self) -> dict[str, Any]:
        worst, est = self.worst_case
        plain = self.plain_above_control()
        results = {}
        for name, r in self.results.items():
            row = {**r.to_dict(), "beyond_plain": self.beyond_plain(name)}
            if r.outcomes:
                row["rate"] = proportion(sum(o.recovered for o in r.outcomes), len(r.outcomes)).to_dict()
                row["above_plain"] = self.above_plain(name).to_dict()
            if name in self.controls:
                c = self.controls[name]
                row["control"] = {**c.to_dict(), "rate": proportion(sum(o.recovered for o in c.outcomes),
                                                                     len(c.outcomes)).to_dict() if c.outcomes else None}
                above = self.above_control(name)
                row["above_control"] = above.to_dict() if above else None
            results[name] = row
        return {
            "model": self.model, "original": self.original, "task": self.task, "budget": self.budget,
            "targets": self.targets, "baseline": self.baseline, "answered_plainly": self.answered_plainly,
            "control": self.control, "plain_above_control": plain.to_dict() if plain else None,
            "worst_case": {"attack": worst, "above_control": est.to_dict() if est else None},
            "seconds": self.seconds, "results": results, "environment": environment(),
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


def attack_options(settings: list[str]) -> dict[str, dict[str, Any]]:
    """`--set attack.key=value` items -> `attack(options=...)`: {"adversarial_suffix": {"preset": "gcg"}}. Each
    value is parsed as the type of that attack's constructor argument; an unknown attack or key, or a value that
    does not parse, is a one-line ConfigError naming what there is."""
    from obliviate.methods.base import parse_setting

    out: dict[str, dict[str, Any]] = {}
    for item in settings:
        where, sep, value = item.partition("=")
        name, dot, key = where.strip().partition(".")
        if not sep or not dot or not key:
            raise ConfigError(f"--set expects attack.key=value (e.g. adversarial_suffix.preset=gcg), got {item!r}")
        cls = ATTACKS.get(name)
        params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        if key not in params:
            raise ConfigError(f"attack {cls.name} has no setting {key!r}; its settings: {', '.join(params) or 'none'}")
        kind = typing.get_type_hints(cls.__init__).get(key, str)
        if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:  # `str | None`: the str
            kind = next(k for k in typing.get_args(kind) if k is not type(None))
        out.setdefault(cls.name, {})[key] = parse_setting(f"attack {cls.name}", key, value.strip(), kind)
    return out


def choose_control(lm: LoadedModel, task: Task, targets: list[Fact], reference: LoadedModel | None,
                   budget: Budget) -> tuple[str, LoadedModel, list[Fact]]:
    """(kind, model, facts) of the control: the reference on the same targets, else `lm` on holdout facts."""
    if reference is not None:
        return "reference", reference, targets
    holdout = task.holdout[: budget.max_facts]
    if holdout:
        return "holdout", lm, holdout
    raise ConfigError(f"attacks are measured against a control where the knowledge is absent, and task {task.name!r} "
                      "has no holdout facts and no reference model was given: add holdout facts (same kind as the "
                      "forget facts, never learned) to the task, or pass --reference")


def attack(lm: LoadedModel, task: Task, original: LoadedModel | None = None, attacks: str | list[str] | None = None,
           budget: Budget | None = None, *, reference: LoadedModel | None = None, seed: int = 0,
           options: dict[str, dict[str, Any]] | None = None, progress: bool = True) -> RedTeamReport:
    """Run each attack (all registered ones by default) on `lm` and on its control; collect a RedTeamReport.

    Args:
        lm: the unlearned model under attack (never modified; attacks that train work on copies).
        task: the task whose forget split was unlearned.
        original: the model before unlearning; targets are the forget facts it answers. None: all forget facts.
        attacks: names (or aliases), as a list or a comma-separated string.
        budget: shared limits (steps, samples, seconds per attack, max_facts); recorded in the report.
        reference: the exact-unlearning reference: the control (paired, same targets). Without it the control
            is `lm` on the task's holdout facts; a task with neither raises ConfigError.
        options: per-attack constructor arguments, e.g. {"step_by_step": {"prompts": "my_prompts.jsonl"}}.
    An attack that raises is recorded with its error (and no outcomes) and the others still run.
    """
    budget = budget or Budget()
    options = options or {}
    names = attack_names(attacks)
    console = Console(stderr=True, quiet=not progress)
    started = time.perf_counter()
    targets = find_targets(AttackContext(task, original, budget, seed=seed))
    plain = answered_directly(lm, targets) if targets else []
    report = RedTeamReport(lm.source, original.source if original else None, task.name, asdict(budget),
                           [f.id for f in targets], sum(plain) / len(plain) if plain else 0.0,
                           answered_plainly=[f.id for f, ok in zip(targets, plain) if ok])
    needs_control = any(ATTACKS.get(n).recovers for n in names)
    if needs_control:
        kind, control_lm, control_facts = choose_control(lm, task, targets, reference, budget)
        control_plain = answered_directly(control_lm, control_facts) if control_facts else []
        report.control = {"kind": kind, "model": control_lm.source, "targets": [f.id for f in control_facts],
                          "answered_plainly": [f.id for f, ok in zip(control_facts, control_plain) if ok]}
        console.print(f"[bold]{len(targets)} target fact(s)[/bold]; asked directly, the model answers "
                      f"{report.baseline:.0%} of them; control: {kind} ({len(control_facts)} facts, "
                      f"{sum(control_plain) / max(1, len(control_plain)):.0%} answered directly)")
    runs = [(name, role) for name in names for role in ("model", "control")
            if role == "model" or ATTACKS.get(name).recovers]
    with phase(f"attacks on {lm.source}", total=len(runs), show=progress) as step:
        for name, role in runs:
            cls = ATTACKS.get(name)
            model, facts, store = ((lm, targets, report.results) if role == "model"
                                   else (control_lm, control_facts, report.controls))
            if cls.needs_original and original is None:
                store[name] = AttackResult(name, asdict(budget), notes="skipped: needs the original model")
            else:
                try:
                    instance = cls(**options.get(name, {}))
                    store[name] = instance.run(model, AttackContext(task, original, budget, list(facts), seed))
                except Exception as e:  # recorded and shown, never swallowed: the report carries the error
                    store[name] = AttackResult(name, asdict(budget), notes=f"error: {type(e).__name__}: {e}",
                                               details={"error": repr(e)})
            step(f"{name} on the {role}")
    report.seconds = time.perf_counter() - started
    return report


def _estimate(est: Estimate | None) -> str:
    return "—" if est is None else f"{est.value:+.0%} [{est.lo:+.0%}, {est.hi:+.0%}]"


def print_report(report: RedTeamReport, console: Console | None = None) -> None:
    """A rich table: per attack the raw rate, the control's, the difference with its interval, time and notes."""
    console = console or Console()
    kind = report.control.get("kind", "none")
    table = Table(title=f"attacks on {report.model} — {report.task} ({len(report.targets)} targets, "
                        f"control: {kind}, {len(report.control.get('targets', []))} facts)")
    for column in ("attack", "recovered", "control", "above control (95 % CI)", "of the forgotten", "seconds", "notes"):
        table.add_column(column, justify="left" if column in ("attack", "notes") else "right", overflow="fold")
    control_plain = len(report.control.get("answered_plainly", []))
    table.add_row("[dim]no attack (asked directly)[/dim]", f"[dim]{report.baseline:.0%}[/dim]",
                  f"[dim]{control_plain}/{len(report.control.get('targets', []))}[/dim]",
                  _estimate(report.plain_above_control()), "", "", "")
    for name, r in report.results.items():
        if "error" in r.details:
            table.add_row(name, "[red]error[/red]", "", "", "", f"{r.seconds:.0f}", r.notes)
            continue
        if not ATTACKS.get(name).recovers:
            acc = r.details.get("accuracy")
            table.add_row(name, f"acc {acc:.0%}" if isinstance(acc, float) else "—", "", "", "", f"{r.seconds:.0f}",
                          r.notes)
            continue
        n = sum(o.recovered for o in r.outcomes)
        c = report.controls.get(name)
        control = f"{sum(o.recovered for o in c.outcomes)}/{len(c.outcomes)}" if c and c.outcomes else "—"
        est = report.above_control(name)
        colour = "red" if est is not None and est.lo > 0 else "green"
        back, hidden = report.beyond_plain(name)
        table.add_row(name, f"{n}/{len(r.outcomes)}", control, f"[{colour}]{_estimate(est)}[/{colour}]",
                      f"{back}/{hidden}" if hidden else "—", f"{r.seconds:.0f}", r.notes)
    console.print(table)
    worst, est = report.worst_case
    if est is None:
        console.print("no attack recovered anything measurable")
    elif est.lo > 0:
        console.print(f"[bold red]{worst} brings back {est.value:.0%} above the control[/bold red] "
                      f"(95 % CI {est.lo:+.0%} to {est.hi:+.0%}, n = {est.n}): the knowledge is still there")
    else:
        console.print(f"no attack is above the control: the highest, {worst}, is {_estimate(est)} (n = {est.n}; "
                      "an interval that contains 0 cannot tell the model from one that never knew)")


def run_attack_command(model: str, original: str | None, task: str, attacks: str | list[str] | None,
                       out: str | Path | None, budget: Budget | None = None,
                       reference: str | None = None, settings: list[str] | None = None) -> RedTeamReport:
    """What `obliviate attack` does: resolve models and task, run the attacks, print the table, save attacks.json."""
    from obliviate.pipeline import known_base, load_task, resolve_model
    from obliviate.runs import new_run_dir

    options = attack_options(settings or [])  # a typo fails here, before any model loads
    lm = resolve_model(model)
    orig = resolve_model(original) if original else None
    ref = resolve_model(reference) if reference else None
    the_task = load_task(task, known_base(model, lm, orig))
    report = attack(lm, the_task, orig, attacks, budget, reference=ref, options=options)
    report.model, report.original = model, original
    if ref is not None:
        report.control["model"] = reference
    out = Path(out) if out else new_run_dir(prefix="attack")
    path = report.save(out)
    print_report(report)
    Console().print(f"attacks → {path}")
    return report
