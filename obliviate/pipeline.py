"""What the CLI commands do, as plain functions: resolve models and tasks, run, save, print.

Kept apart from cli.py so that the commands stay wiring and these steps can be reused (audit, bench).
"""

from __future__ import annotations

import time
from pathlib import Path

from accelerate import PartialState
from rich.console import Console
from rich.table import Table

from obliviate.card import Card, evaluate
from obliviate.data import tasks as task_registry
from obliviate.data.realfacts import real_facts
from obliviate.data.schema import Task
from obliviate.errors import ConfigError
from obliviate.examples import add_examples
from obliviate.known import known_and_unknown, known_real_facts
from obliviate.metrics import EvalConfig
from obliviate.models import LoadedModel, fast_bfloat16, load_model, with_dtype
from obliviate.report.console import print_cards
from obliviate.report.html import render_report
from obliviate.runs import environment, new_run_dir, read_json, write_json
from obliviate.teach import TeachConfig, copy_model, taught_model, taught_path
from obliviate.train import TrainConfig
from obliviate.unlearn import UNTIL_BUDGET, UnlearnRun, make_method, unlearn
from obliviate.until import UntilConfig

console = Console()


def load_task(spec: str, base: LoadedModel | None = None) -> Task:
    """Load a task; builtin real facts (people's general split, or the realfacts task) are cut to those the
    base model actually answers, since only known facts can show forgetting or damage; for builtin:realfacts
    the facts it does not know become the holdout split (the control)."""
    if spec.removeprefix("builtin:").startswith("realfacts"):
        known, unknown = known_and_unknown(base or load_model("default"))
        return task_registry.load(spec, facts=known, unknown=unknown)
    task = task_registry.load(spec)
    if task.general and {f.id for f in task.general} <= {f.id for f in real_facts()}:
        known = {f.id for f in known_real_facts(base or load_model("default"))}
        task.general = [f for f in task.general if f.id in known]
    return task


def recorded_original(model_spec: str) -> str | None:
    """The model a run started from, when `model_spec` is a run's model/ folder (its config.json "model")."""
    config = Path(model_spec).parent / "config.json"
    if Path(model_spec).name != "model" or not Path(model_spec).is_dir() or not config.is_file():
        return None
    return read_json(config).get("model")


def known_base(model_spec: str, lm: LoadedModel, original: LoadedModel | None, dtype: str | None = None) -> LoadedModel:
    """The model whose known facts split builtin:realfacts when `model_spec` is asked: the original if given,
    else the one its run recorded, else the model itself. Never the unlearned model when the original can be
    found: split by what an unlearned model still answers, the facts it forgot would become its holdout."""
    if original is not None:
        return original
    if (recorded := recorded_original(model_spec)) is not None:
        return resolve_model(recorded, dtype)
    return lm


def resolve_model(spec: str, dtype: str | None = None) -> LoadedModel:
    """A model spec: taught:<task> / reference:<task> (builtin:people, taught and cached) or anything load_model
    takes; `dtype` as in `load_model`."""
    for kind in ("taught", "reference"):
        if spec.startswith(kind + ":"):
            task = task_registry.load(spec[len(kind) + 1 :])
            return with_dtype(taught_model(task, exclude_forget=kind == "reference"), dtype)
    return load_model(spec, dtype=dtype)


def parse_settings(settings: list[str]) -> dict[str, str]:
    """["beta=0.05", ...] (--set) -> {"beta": "0.05"}; the method parses each value against its config's type."""
    out = {}
    for item in settings:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def run_teach(task_spec: str, base: str, reference: bool, out: Path | None, config: TeachConfig | None = None) -> Path:
    """Teach (or load from the cache) the task on `base`; returns the model folder to pass as --model/--reference."""
    task = task_registry.load(task_spec)
    started = time.perf_counter()
    lm = taught_model(task, base, exclude_forget=reference, config=config)
    path = taught_path(task, base, exclude_forget=reference, config=config)
    if out:
        from obliviate.models import save_model

        path = save_model(lm, out)
    kind = "reference" if reference else "taught"
    short = f" or {kind}:{task_spec}" if base == "default" and config is None else ""
    console.print(f"[green]{kind}[/green] {lm.source} in {time.perf_counter() - started:.0f} s; use it as "
                  f"{'--reference' if reference else '--model'} {path}{short}")
    return path


def build_target(model: str, target: str, out: Path, neighbours: list[str] | None = None,
                 lm: LoadedModel | None = None) -> Path:
    """Build the task of forgetting `target` from the model itself and save it as a task folder under `out`."""
    from obliviate.target import build_target_task, save_task

    lm = lm or resolve_model(model)
    task = build_target_task(lm, target, neighbours)
    folder = save_task(task, out, target, model)
    console.print(f"task of forgetting {target!r} → {folder} (edit it and pass it as --task)")
    return folder


def run_unlearn(model: str, task_spec: str | None, method: str, *, steps, lr, batch_size, lora, forms, settings,
                checkpoint_every, resume, seed, out, mixed_precision: str = "auto", gibberish_every: int = 10,
                gibberish_share: float = 0.75, until: UntilConfig | None = None, keep: str | None = None,
                target: str | None = None, neighbours: list[str] | None = None) -> Path:
    if (task_spec is None) == (target is None):
        raise ConfigError("give either --task (facts to forget) or --target (a name the model knows), not both")
    lm = resolve_model(model)
    m = make_method(method, **parse_settings(settings))
    if out is None and not PartialState().is_main_process:
        raise ConfigError("under accelerate launch, pass --out so that every process uses the same run folder")
    out = Path(out) if out else new_run_dir(prefix=f"unlearn-{method}")
    if target is not None:
        task_spec = str(out / "task") if resume and (out / "task" / "task.yaml").exists() else \
            str(build_target(model, target, out / "task", neighbours, lm))
    task = load_task(task_spec, lm)
    budget = m.default_steps * (UNTIL_BUDGET if until else 1)
    train = TrainConfig(steps=steps or budget, lr=lr or m.default_lr, batch_size=batch_size, lora=lora,
                        checkpoint_every=checkpoint_every, seed=seed, mixed_precision=mixed_precision,
                        gibberish_every=gibberish_every, gibberish_share=gibberish_share)
    run = unlearn(lm, task, m, train=train, forms=forms, out_dir=out, resume=resume, until=until, keep=keep)
    run.config["model"] = model
    run.config["task_spec"] = task_spec
    if target is not None:
        run.config["target"] = target
    if not PartialState().is_main_process:  # under `accelerate launch`, rank 0 saves and prints
        return out
    run.save(out)
    console.print(f"[green]unlearned[/green] with {method} in {run.seconds:.0f} s ({run.steps} steps) → {out}/model")
    if until is not None:
        met = run.config["until"]["met"]
        console.print(f"[{'green' if met else 'red'}]until forgotten[/]: {run.config['until']['message']} "
                      f"(curve in history.json; `obliviate audit --model {out}/model --task {task_spec} --original "
                      f"{model}` adds the card, the attacks and the report)")
    return out


def run_eval(model: str, task_spec: str, reference: str | None, original: str | None, metrics, max_facts: int,
             seed: int, out: Path | None, dtype: str | None = None, batch_size: int | None = None) -> Card:
    config = EvalConfig(max_facts=max_facts, seed=seed,  # bad settings fail here, before any model loads
                        batch_size=EvalConfig.batch_size if batch_size is None else batch_size)
    lm = resolve_model(model, dtype)
    ref = resolve_model(reference, dtype) if reference else None
    orig = resolve_model(original, dtype) if original else None
    task = load_task(task_spec, known_base(model, lm, orig, dtype))
    card = evaluate(lm, task, metrics, reference=ref, original=orig, config=config)
    out = Path(out) if out else new_run_dir(prefix="eval")
    card.save(out / "card.json")
    print_cards({model: card})
    console.print(f"card → {out}/card.json")
    return card


# true/false is at chance for SmolLM2-135M even on facts it knows, and two-hop has 3 facts here: neither can
# say anything in the demo, so its card leaves them out (`obliviate audit` asks every form).
DEMO_FORMS = ("qa", "chat", "cloze", "mcq", "paraphrase")
DEMO_ATTACKS = ["in_context", "form_change"]  # the two recovering attacks that fit the demo's few minutes


def run_demo(out: Path | None, method: str = "npo", steps: int | None = None, people_config: str = "small",
             task: str = "realfacts", n_forget: int = 20, dtype: str = "auto") -> Path:
    """The whole pitch in one run. Default: real facts the default model knows are unlearned (through every
    direct form, the chat template included), then the forget card, two attacks against the holdout control and
    the report. `task="people"`: teach fictitious people (cached), unlearn forget10, cards side by side.
    `dtype` of the realfacts demo's compute: "auto" is bfloat16 where bf16 runs faster than fp32 (a CPU with
    bf16 units, or CUDA): the cards and the attacks run on bf16 copies (faster on this CPU, 98 % of verdicts
    unchanged; docs/metrics.md "Speed"; the known-fact check that draws the split always asks in fp32), while
    unlearning trains the fp32 model in fp32 (bf16 autocast is at most 1.24x faster per step here and, on the same 20 facts,
    left forget chat at 0.70 of 0.95 where fp32 training reached 0.45); the saved model is fp32."""
    if task == "people":
        return _people_demo(out, method, steps, people_config)
    if task != "realfacts":
        raise ConfigError(f"demo --task is realfacts or people, got {task!r}")
    if dtype not in ("auto", "float32", "bfloat16"):
        raise ConfigError(f"demo --dtype is auto, float32 or bfloat16, got {dtype!r}")
    from obliviate.attacks import Budget
    from obliviate.audit import AuditConfig, audit

    started = time.perf_counter()
    out = Path(out) if out else new_run_dir(prefix="demo")
    if dtype == "auto":
        dtype = "bfloat16" if fast_bfloat16() else "float32"
    base = load_model("default")  # fp32: unlearning starts from the model as shipped
    asked = with_dtype(copy_model(base), dtype)  # the original as every question asks it
    task_spec = f"builtin:realfacts:forget{n_forget}"
    the_task = load_task(task_spec, base)
    console.print(f"[bold]task[/bold] {task_spec}: forget {len(the_task.forget)} facts the model knows, keep "
                  f"{len(the_task.neighbours)} neighbours and {len(the_task.retain)} other known facts; control: "
                  f"{len(the_task.holdout)} facts it does not answer")
    run = _unlearn_copy(base, the_task, method, steps, out, "auto")
    forms = run.config["forms"]
    console.print(f"[green]unlearned[/green] with {method} on {', '.join(forms)} in {run.seconds:.0f} s; "
                  f"evaluating in {dtype}")
    config = AuditConfig(metrics=["forms"], attacks=DEMO_ATTACKS, budget=Budget(samples=2, max_facts=n_forget),
                         max_facts=2 * n_forget, forms=list(DEMO_FORMS))
    del base
    audit(with_dtype(run.lm, dtype), asked, the_task, out, config=config)
    print_cards({label: Card.load(out / "cards" / f"{label}.json") for label in ("original", "unlearned")})
    seconds = time.perf_counter() - started
    write_json(out / "demo.json", {"task": task_spec, "method": method, "forms": list(forms), "steps": run.steps,
                                   "dtype": dtype,
                                   "seconds": seconds, "audit": str(out / "audit.json"), "environment": environment()})
    console.print(f"[green]done[/green] in {seconds / 60:.1f} min → {out / 'report.html'}")
    return out


def _unlearn_copy(original: LoadedModel, task: Task, method: str, steps: int | None, out: Path,
                  forms: tuple[str, ...] | str = ("qa",)) -> UnlearnRun:
    """Unlearn a copy of `original` with the method's tuned steps (or `steps`) and lr; the run is saved in `out`."""
    m = make_method(method)
    run = unlearn(copy_model(original), task, m, train=TrainConfig(steps=steps or m.default_steps, lr=m.default_lr),
                  forms=forms)
    run.save(out)
    return run


def _people_demo(out: Path | None, method: str, steps: int | None, people_config: str) -> Path:
    """Teach a small people task (cached), unlearn forget10, and show four forget cards side by side."""
    started = time.perf_counter()
    out = Path(out) if out else new_run_dir(prefix="demo")
    base = load_model("default")
    task_spec = f"builtin:people:{people_config}:forget10"
    task = load_task(task_spec, base)
    console.print(f"[bold]task[/bold] {task.name}: {len(task.forget)} forget / {len(task.retain)} retain / "
                  f"{len(task.neighbours)} neighbour / {len(task.general)} general facts")
    taught = taught_model(task)
    reference = taught_model(task, exclude_forget=True)
    run = _unlearn_copy(taught, task, method, steps, out)
    config = EvalConfig()
    cards = {}
    for label, lm in (("base", base), ("taught", taught), ("reference", reference), (method, run.lm)):
        console.print(f"evaluating {label} …")
        cards[label] = evaluate(lm, task, ["forms"], reference=reference, original=taught, config=config)
        cards[label].save(out / "cards" / f"{label}.json")
        add_examples(out / "generations.json", label, lm, task, taught)
    print_cards(cards)
    seconds = time.perf_counter() - started
    write_json(out / "demo.json", {"task": task_spec, "method": method, "steps": run.steps, "seconds": seconds,
                                   "eval": config.__dict__, "environment": environment()})
    report = render_report(out)
    console.print(f"[green]done[/green] in {seconds / 60:.1f} min → {report} (and model/, cards/, config.json, "
                  "history.json, report.md)")
    return out


def print_registry(registry, kind: str) -> None:
    table = Table(kind, "what it does")
    for name, cls in registry.items():
        table.add_row(name, cls.summary)
    console.print(table)


def show_task(spec: str) -> None:
    import json

    task = task_registry.load(spec)
    table = Table("split", "facts")
    for split in ("forget", "retain", "neighbours", "general", "holdout"):
        table.add_row(split, str(len(task.split(split))))
    table.add_row("forget documents", str(len(task.forget_documents)))
    table.add_row("teach documents", str(len(task.teach_documents)))
    console.print(table)
    if task.forget:
        console.print_json(json.dumps(task.forget[0].to_dict()))
