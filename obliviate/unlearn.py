"""Turn a Task and a method name into a training run (or a training-free edit), and save the result.

>>> from obliviate.models import tiny_model
>>> from obliviate.data.people import people_task
>>> run = unlearn(tiny_model(), people_task("test"), "ga", train=TrainConfig(steps=2, progress=False))
>>> run.steps
2
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from obliviate import checkpoint
from obliviate.data.forms import GENERATIVE_FORMS, direct_forms, has_chat_template, probes
from obliviate.data.schema import Document, Fact, Task
from obliviate.errors import ConfigError
from obliviate.methods import METHODS, Method
from obliviate.models import LoadedModel, save_model
from obliviate.runs import environment, write_json
from obliviate.train import Examples, TrainConfig, run_training
from obliviate.until import UntilConfig, UntilForgotten

UNTIL_BUDGET = 4  # with `until`, the default budget is this many times the method's tuned steps


def fact_examples(facts: list[Fact], forms: tuple[str, ...] = ("qa",),
                  documents: list[Document] = (), tokenizer=None) -> Examples:
    """Prompt/target pairs of the generative forms of `facts`, plus whole documents (empty prompt). The chat
    form (the question as a user turn through the model's chat template) needs the `tokenizer`."""
    bad = [f for f in forms if f not in GENERATIVE_FORMS]
    if bad:
        raise ConfigError(f"training forms must be generative ({', '.join(GENERATIVE_FORMS)}); got {bad}")
    if "chat" in forms and (tokenizer is None or not has_chat_template(tokenizer)):
        raise ConfigError("training form 'chat' needs a model whose tokenizer has a chat template")
    prompts, targets, subjects = [], [], []
    for fact in facts:
        for form in forms:
            for p in probes(fact, form, tokenizer):
                prompts.append(p.prompt)
                targets.append(p.answer)
                subjects.append(fact.subject)
    for doc in documents:
        prompts.append("")
        targets.append(doc.text)
        subjects.append("")
    return Examples(prompts, targets, subjects)


KEEP_SPLITS = ("retain", "neighbours", "neighbours+retain")


def keep_examples(task: Task, split: str, forms: tuple[str, ...] = ("qa",), tokenizer=None) -> Examples:
    """Pairs of the facts a method keeps ("retain", "neighbours" (retain when the task has none), or both) in
    the forget stream's forms: a retain term in plain QA does not protect what the model says in chat."""
    facts = {"retain": task.retain, "neighbours": task.neighbours or task.retain,
             "neighbours+retain": task.neighbours + task.retain}[split]
    only_neighbours = split == "neighbours" and bool(task.neighbours)  # retain documents come with retain facts
    return fact_examples(facts, forms, [] if only_neighbours else task.retain_documents, tokenizer)


@dataclass
class UnlearnRun:
    """The unlearned model and how it was made."""

    lm: LoadedModel
    method: str
    steps: int
    seconds: float
    config: dict
    history: list[dict] = field(default_factory=list)

    def save(self, out_dir: str | Path) -> Path:
        """Writes model/ (a standard HF directory), config.json and history.json."""
        out = Path(out_dir)
        save_model(self.lm, out / "model")
        write_json(out / "config.json", self.config)
        write_json(out / "history.json", self.history)
        return out


def make_method(method: str | Method, **overrides) -> Method:
    if isinstance(method, Method):
        return method
    return METHODS.get(method)(**overrides)


def unlearn(
    lm: LoadedModel,
    task: Task,
    method: str | Method = "npo",
    *,
    train: TrainConfig | None = None,
    forms: tuple[str, ...] | str = ("qa",),
    out_dir: str | Path | None = None,
    resume: bool = False,
    until: UntilConfig | None = None,
    keep: str | None = None,
    **method_overrides,
) -> UnlearnRun:
    """Make `lm` forget `task.forget` with `method`; the model is changed in place and returned in the run.

    `forms` picks which wordings of the forget facts the method trains on (QA only by default here, which is
    what lets the form-gap metric and attack show whether forgetting generalises); "auto" is every direct form
    the model is asked in: plain QA, a chat turn when the tokenizer has a chat template, and the cloze (an
    instruct model shows most of what it knows through its template, and unlearning moves mostly the format
    it trains on). The command line defaults to "auto", the case of a user's real knowledge; this function keeps
    QA for the lab measurements pinned on it. The resolved forms are recorded in the run's config.
    `train` defaults to the method's tuned steps and learning rate.
    `keep`: the facts of the retain stream for methods that have one ("retain", "neighbours" or
    "neighbours+retain"; default: the method's own `keep_split`).
    `until`: stop when forgotten (obliviate.until): probe every `until.every` steps, stop at the first checkpoint
    where forget is at the holdout control's level in every direct form with retain and neighbours kept, else
    keep the best trade-off; `train.steps` is then the budget (default: UNTIL_BUDGET x the tuned steps). The
    rule, its outcome and the curve go into config["until"]; each check's scores into its history entry.
    """
    m = make_method(method, **method_overrides)
    name = METHODS.name_of(type(m))
    if forms in ("auto", ("auto",)):
        forms = direct_forms(lm.tokenizer)
    started = time.perf_counter()
    if keep is not None and keep not in KEEP_SPLITS:
        raise ConfigError(f"keep must be one of {', '.join(KEEP_SPLITS)}; got {keep!r}")
    keep_split = (keep or m.keep_split) if m.needs_retain else None
    config = {"method": name, "method_config": asdict(m.config), "task": task.name, "model": lm.source,
              "forms": list(forms), "keep_split": keep_split,
              "environment": environment()}
    if m.training_free:
        if until is not None:
            raise ConfigError(f"--until forgotten needs training steps to check between; {name!r} is training-free")
        edited = m.apply(lm, task, train)
        config["train"] = asdict(train) if train else None
        config["method_notes"] = m.notes()
        return UnlearnRun(edited, name, 0, time.perf_counter() - started, config)
    train_config = train or TrainConfig(steps=m.default_steps * (UNTIL_BUDGET if until else 1), lr=m.default_lr)
    stop = None
    if until is not None:
        stop = UntilForgotten(task, lm.tokenizer, until)
        if not (resume and out_dir is not None and checkpoint.exists(out_dir)):  # else the checkpoint holds it
            stop.start(lm)
        train_config = replace(train_config, check_every=until.every)
    forget = fact_examples(task.forget, forms, task.forget_documents, lm.tokenizer)
    retain = keep_examples(task, keep_split, forms, lm.tokenizer) if m.needs_retain else None
    if m.needs_retain and not retain:
        raise ConfigError(f"method {name!r} needs retain data, but task {task.name!r} has an empty retain split")
    config["train"] = asdict(train_config)
    identity = {k: config[k] for k in ("method", "method_config", "task", "model", "forms", "keep_split")}
    identity["until"] = asdict(until) if until is not None else None
    result = run_training(
        lm, m, forget, retain, train_config,
        needs_reference_logprobs=m.needs_reference_logprobs, needs_reference_model=m.needs_reference_model,
        out_dir=out_dir, resume=resume, identity=identity, description=f"unlearn[{name}]", stop_check=stop,
    )
    config["precision"] = result.precision
    config["method_notes"] = m.notes()
    steps, history = result.steps_done, result.history
    if stop is not None:
        steps = stop.restore_best(result.lm.model)
        config["until"] = stop.summary(result.steps_done)
        probed = {c.step: c for c in stop.curve}
        history = [{**h, "probe": probed[h["step"]].to_dict()} if h["step"] in probed else h for h in history]
    return UnlearnRun(result.lm, name, steps, time.perf_counter() - started, config, history)
