"""Compare unlearning methods on one task under one budget: a table (JSON + Markdown), plots and a report.

Every method unlearns a fresh copy of the same original model with the same steps and batch size (each keeps
its own tuned learning rate unless `lr` is given), then gets the same forget card and the same attacks. A
sweep of one hyperparameter (`steps=5,10,20`, `lr=1e-5,3e-5` or a method setting such as `beta=0.05,0.1`)
gives a forgetting-vs-utility curve per method. Each (method, sweep value) lives in its own sub-folder and
is skipped when its result.json exists, so a killed bench resumes where it stopped.

>>> from obliviate.models import tiny_model
>>> from obliviate.data.people import people_task
>>> out = bench(people_task("test"), ["ga", "npo"], sweep="steps=1,2", out_dir="runs/bench-doc",
...             config=BenchConfig(metrics=["forms"], max_facts=2), original=tiny_model())  # doctest: +SKIP
"""

from __future__ import annotations

import gc
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rich.console import Console

from obliviate.attacks import Budget
from obliviate.audit import ModelSpec, TaskSpec, _spec, seed_everything
from obliviate.card import Card
from obliviate.data.schema import Task
from obliviate.errors import ConfigError
from obliviate.examples import add_examples
from obliviate.models import LoadedModel
from obliviate.report.markdown import bench_markdown, costliest_form, headline_form, keep_split, qa_accuracy
from obliviate.runs import environment, new_run_dir, read_json, same_inputs_or_fail, write_json
from obliviate.train import TrainConfig


@dataclass
class BenchConfig:
    """The shared budget and what is measured (recorded in bench.json)."""

    steps: int = 20  # unlearning steps, the same for every gradient method
    lr: float | None = None  # None: each method's tuned learning rate
    batch_size: int = 8
    # the forms each method trains on: "auto" = every direct form (QA, the chat turn of a chat model, cloze), as
    # `obliviate unlearn` does; trained in QA alone, a chat model keeps answering real facts through its template
    forms: str = "auto"
    metrics: list[str] | None = None  # forget-card metrics; None: every metric that applies
    max_facts: int = 60  # per split, for the cards
    examples: int = 4  # forget facts shown before/after in the report
    seed: int = 0
    seeds: int = 1  # unlearning repeated with seeds seed, seed+1, ...; rows then show mean ± sd across seeds
    attack_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # per attack: its settings (`--set`)

    def __post_init__(self) -> None:
        if self.seeds < 1:
            raise ConfigError(f"seeds must be >= 1, got {self.seeds}")


COLUMNS = [  # the table: key in each row, title, and how to show it
    {"key": "method", "title": "method", "text": True},
    {"key": "sweep", "title": "sweep", "text": True},
    {"key": "steps", "title": "steps"},
    {"key": "seconds", "title": "unlearn s"},
    {"key": "form", "title": "form", "text": True},  # the direct form the row is read in (headline_form)
    {"key": "forget_qa", "title": "forget", "share": True, "higher_is_better": False},
    {"key": "forget_vs_control", "title": "forget − control", "share": True, "higher_is_better": False},
    {"key": "best_form", "title": "leakiest form", "text": True},
    {"key": "keep_qa", "title": "keep", "share": True, "higher_is_better": True},
    {"key": "forgot", "title": "forgot", "share": True, "higher_is_better": True},
    {"key": "kept", "title": "kept", "share": True, "higher_is_better": True},
    {"key": "costliest_form", "title": "kept, costliest form", "text": True},
    {"key": "worst_attack", "title": "worst attack", "text": True},
    {"key": "worst_recovery", "title": "above control", "share": True, "higher_is_better": False},
]
# Every share column may carry "<key>_ci" ([lo, hi], one seed) or "<key>_sd" (several seeds) in a row.


def parse_sweep(sweep: str | dict[str, list[Any]] | None) -> tuple[str | None, list[Any]]:
    """"steps=5,10,20" or {"steps": [5, 10, 20]} -> ("steps", [5, 10, 20]); None -> (None, [None])."""
    if sweep is None:
        return None, [None]
    if isinstance(sweep, str):
        if "=" not in sweep:
            raise ConfigError(f"sweep must look like 'steps=5,10,20', got {sweep!r}")
        name, values = sweep.split("=", 1)
        sweep = {name.strip(): [_number(v) for v in values.split(",") if v.strip()]}
    if len(sweep) != 1:
        raise ConfigError(f"sweep one hyperparameter at a time, got {sorted(sweep)}")
    (name, values), = sweep.items()
    if not values:
        raise ConfigError(f"sweep {name!r} has no values")
    return name, list(values)


def _number(text: str) -> int | float | str:
    text = text.strip()
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _plan(methods: list[str], param: str | None, values: list[Any]) -> list[tuple[str, Any, bool]]:
    """(method, sweep value, final) units; a training-free method runs once when the sweep is a training setting."""
    from obliviate.methods import METHODS

    train_fields = {f.name for f in fields(TrainConfig)}
    units = []
    for method in methods:
        cls = METHODS.get(method)
        settings = {f.name for f in fields(cls.Config)}
        if param is None or (param in train_fields and cls.training_free):
            units.append((method, None, True))
        elif param in train_fields or param in settings:
            units += [(method, v, i == len(values) - 1) for i, v in enumerate(values)]
        else:
            raise ConfigError(f"sweep {param!r} is neither a training setting ({', '.join(sorted(train_fields))}) "
                              f"nor a setting of {method} ({', '.join(sorted(settings)) or 'none'})")
    return units


def summarise(card: Card, original: Card | None, attacks: dict[str, Any] | None) -> dict[str, Any]:
    """The table's numbers for one unlearned model (shares of what the original knew, as in the report), each
    accuracy with its 95 % interval and each attack's recovery above its control."""
    split, form = keep_split(card), headline_form(card, original)
    forget, keep = qa_accuracy(card, "forget", form), qa_accuracy(card, split, form) if split else None
    before = qa_accuracy(original, "forget", form) if original else None
    kept_before = qa_accuracy(original, split, form) if original and split else None
    forms = card.value("forms", "forget") or {}
    controls = {f: row.get("above_reference") or row.get("above_holdout") for f, row in forms.items()}
    control = controls.get(form)
    leak = max(((est["value"], f) for f, est in controls.items() if f != form and est), default=None)
    # forget_qa / keep_qa keep their names (saved tables read them) but hold the headline form's accuracy.
    row = {"form": form, "forget_qa": forget, "forget_qa_ci": card.value("forms", "forget", form, "accuracy_ci"),
           "forget_vs_control": control["value"] if control else None,
           "forget_vs_control_ci": control["ci"] if control else None,
           "keep_split": split, "keep_qa": keep,
           "keep_qa_ci": card.value("forms", split, form, "accuracy_ci") if split else None,
           "forgot": max(0.0, 1 - forget / before) if forget is not None and before else None,
           "kept": min(1.0, keep / kept_before) if keep is not None and kept_before else None,
           "best_form": f"{leak[1]} {leak[0]:+.0%}" if leak else None,
           "forget_by_form": {f: s["accuracy"] for f, s in forms.items()}}
    if keep is not None and kept_before:
        cost = costliest_form(card, original, split, form, row["kept"])
        row["costliest_form"] = f"{cost[0]} {cost[1]:.0%}" if cost else None
    if attacks:
        # Per attack: what it brought back above its control (the same attack where the knowledge is absent).
        row["recovery"] = {n: r.get("above_control") for n, r in attacks["results"].items()
                           if r.get("above_control") and "error" not in r["details"]}
        worst = (attacks.get("worst_case") or {}).get("attack")
        row["worst_attack"] = worst
        if worst in row["recovery"]:
            row["worst_recovery"] = row["recovery"][worst]["value"]
            row["worst_recovery_ci"] = row["recovery"][worst]["ci"]
    return row


def across_seeds(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from the same unit unlearned with several seeds: numbers are means, `<key>_sd` their spread."""
    out = dict(rows[0])
    for key, value in rows[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("steps", "sweep_value"):
            values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
            mean = sum(values) / len(values)
            out[key] = mean
            out[f"{key}_sd"] = (sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)) ** 0.5
        elif key.endswith("_ci"):
            out.pop(key)  # one seed's interval does not describe the mean of several
    for n in rows[0].get("recovery", {}):
        values = [r["recovery"][n]["value"] for r in rows if r.get("recovery", {}).get(n)]
        mean = sum(values) / len(values)
        out[f"recovery.{n}"] = mean
        out[f"recovery.{n}_sd"] = (sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)) ** 0.5
    out["seeds"] = [r["seed"] for r in rows]
    return out


def bench(task: TaskSpec, methods: str | list[str], attacks: str | list[str] | None = None,
          budget: Budget | None = None, sweep: str | dict[str, list[Any]] | None = None,
          out_dir: str | Path | None = None, config: BenchConfig | None = None,
          original: ModelSpec | None = None, reference: ModelSpec | None = None, progress: bool = True) -> Path:
    """Unlearn, evaluate and attack with each method (and sweep value); write bench.json, bench.md and the report.

    Args:
        task: a task spec ("builtin:people:small:forget10") or a Task.
        methods: method names, as a list or a comma-separated string.
        attacks: attack names to run on every unlearned model (None or []: no attacks; "all": every attack).
        budget: the attacks' shared budget.
        sweep: one hyperparameter and its values, "steps=5,10,20" or {"steps": [5, 10, 20]}.
        original: the model every method starts from; default: for builtin:people the taught model
            ("taught:<task>", cached), otherwise the default model.
        reference: the exact-unlearning reference; default for builtin:people: "reference:<task>".
    Returns the bench folder (re-running into it resumes).
    """
    from obliviate.card import evaluate
    from obliviate.metrics import EvalConfig
    from obliviate.redteam import attack, attack_names
    from obliviate.report.html import render_report
    from obliviate.teach import copy_model
    from obliviate.unlearn import make_method, unlearn

    config = config or BenchConfig()
    budget = budget or Budget()
    methods = [m.strip() for m in methods.split(",")] if isinstance(methods, str) else list(methods)
    names = [] if not attacks or attacks == "none" else attack_names(None if attacks == "all" else attacks)
    param, values = parse_sweep(sweep)
    units = _plan(methods, param, values)
    out = Path(out_dir) if out_dir else new_run_dir(prefix="bench")
    console = Console(stderr=True, quiet=not progress)
    if original is None and isinstance(task, str):
        if task.removeprefix("builtin:").startswith("people"):  # invented facts: teach them first
            original, reference = f"taught:{task}", reference or f"reference:{task}"
        else:  # real facts the base model already knows
            original = "default"
    if original is None:
        raise ConfigError("bench needs the original model when the task is not a spec: pass original=")
    inputs = {"task": _spec(task), "methods": methods, "attacks": names, "budget": asdict(budget),
              "sweep": {param: values} if param else None, "config": asdict(config),
              "original": _spec(original), "reference": _spec(reference)}
    same_inputs_or_fail(out / "inputs.json", inputs, "bench")
    write_json(out / "inputs.json", inputs)

    cache: dict[str, Any] = {}

    def load(key: str) -> Any:
        if key not in cache:
            from obliviate.pipeline import load_task, resolve_model

            if key == "task":
                # builtin:realfacts is split by what the original knows (default: the shipped model)
                cache[key] = task if isinstance(task, Task) else load_task(task, load("original"))
            else:
                spec = original if key == "original" else reference
                cache[key] = spec if spec is None or isinstance(spec, LoadedModel) else resolve_model(spec)
        return cache[key]

    eval_config = EvalConfig(max_facts=config.max_facts, seed=config.seed)

    def card_of(lm: LoadedModel) -> Card:
        return evaluate(lm, load("task"), config.metrics, reference=load("reference"), original=load("original"),
                        config=eval_config)

    rows: list[dict[str, Any]] = []
    durations: list[float] = []
    for label in ("original", "reference"):
        path = out / "cards" / f"{label}.json"
        if not path.exists() and (label == "original" or reference is not None):
            console.print(f"card of the {label} model …")
            add_examples(out / "generations.building.json", label, load(label), load("task"), load("original"),
                         config.examples)
            seed_everything(config.seed)
            card_of(load(label)).save(path)
    original_card = Card.load(out / "cards" / "original.json")
    for i, (method, value, final) in enumerate(units):
        label = method if value is None else f"{method}@{param}={value}"
        unit_dir = out / "runs" / (method if value is None else f"{method}/{param}={value}")
        tag = f"[{i + 1}/{len(units)}] {label}"
        seed_rows = []
        for k in range(config.seeds):
            seed = config.seed + k
            sub = unit_dir if config.seeds == 1 else unit_dir / f"seed={seed}"
            who = tag if config.seeds == 1 else f"{tag} seed {seed}"
            if (sub / "result.json").exists():
                seed_rows.append(read_json(sub / "result.json"))
                console.print(f"[dim]{who}: done earlier[/dim]")
                continue
            left = (len(units) - i) * config.seeds - k
            eta = f" · ~{sum(durations) / len(durations) * left / 60:.1f} min left" if durations else ""
            console.print(f"{who} …{eta}")
            started = time.perf_counter()
            seed_everything(seed)
            settings = {param: value} if value is not None and param not in {f.name for f in fields(TrainConfig)} else {}
            m = make_method(method, **settings)
            train = TrainConfig(steps=config.steps, lr=config.lr or m.default_lr, batch_size=config.batch_size,
                                seed=seed, progress=progress)
            if value is not None and not settings:
                train = TrainConfig(**{**asdict(train), param: value})
            run = unlearn(copy_model(load("original")), load("task"), m, train=train,
                          forms=config.forms if config.forms == "auto" else tuple(config.forms.split(",")))
            write_json(sub / "config.json", run.config)
            write_json(sub / "history.json", run.history)
            seed_everything(config.seed)
            card = card_of(run.lm)
            card.save(sub / "card.json")
            report = None
            if names:
                seed_everything(config.seed)
                report = attack(run.lm, load("task"), load("original"), names, budget, reference=load("reference"),
                                seed=config.seed, progress=False, options=config.attack_options).to_dict()
                write_json(sub / "attacks.json", report)
            if final and k == 0:
                add_examples(out / "generations.building.json", label, run.lm, load("task"), load("original"),
                             config.examples)
            row = {"label": label, "method": method, "sweep": "" if value is None else f"{param}={value}",
                   "sweep_param": param if value is not None else None, "sweep_value": value, "final": final,
                   "dir": str(sub.relative_to(out)), "seed": seed, "steps": run.steps,
                   "lr": train.lr if run.steps else None, "seconds": round(run.seconds, 1),
                   **summarise(card, original_card, report)}
            write_json(sub / "result.json", row)  # last: its presence means the run is complete
            seed_rows.append(row)
            durations.append(time.perf_counter() - started)
            console.print(f"{who}: [green]done[/green] in {durations[-1]:.0f} s")
            del run
            gc.collect()
        row = across_seeds(seed_rows) if config.seeds > 1 else seed_rows[0]
        for n, est in seed_rows[0].get("recovery", {}).items():  # flat keys for the per-attack columns
            if config.seeds == 1 and est:
                row[f"recovery.{n}"], row[f"recovery.{n}_ci"] = est["value"], est["ci"]
        rows.append(row)
    if (out / "generations.building.json").exists():
        (out / "generations.building.json").replace(out / "generations.json")
    columns = [c for c in COLUMNS if c["key"] != "sweep" or param] + (
        [] if not names else [{"key": f"recovery.{n}", "title": f"{n} − control", "share": True,
                               "higher_is_better": False} for n in names])
    table = {"inputs": inputs, "columns": columns, "rows": rows, "environment": environment(),
             "seconds": round(sum(r["seconds"] for r in rows), 1)}
    write_json(out / "bench.json", table)
    (out / "bench.md").write_text(f"# bench — {_spec(task)}\n\n{bench_markdown(table)}\n")
    report = render_report(out)
    console.print(f"[bold]bench[/bold] → {out / 'bench.json'}, {out / 'bench.md'}, {report}")
    return out


def run_bench_command(task: str, methods: str, attacks: str | None, sweep: str | None, steps: int, lr: float | None,
                      metrics: str | None, max_facts: int, attack_steps: int, attack_seconds: float,
                      attack_facts: int, seed: int, out: Path | None, seeds: int = 1, forms: str = "auto",
                      settings: list[str] | None = None) -> Path:
    """What `obliviate bench` does (comma lists; attacks "all" runs every attack, None runs none; `settings`:
    `--set attack.key=value` items)."""
    from obliviate.redteam import attack_options

    config = BenchConfig(steps=steps, lr=lr, metrics=metrics.split(",") if metrics else None, max_facts=max_facts,
                         seed=seed, seeds=seeds, forms=forms, attack_options=attack_options(settings or []))
    budget = Budget(steps=attack_steps, seconds=attack_seconds, max_facts=attack_facts)
    return bench(task, methods, attacks, budget, sweep, out, config)
