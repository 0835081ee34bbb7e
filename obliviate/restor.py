"""RESTOR: after unlearning a corruption, does the model know again what it knew before? (a procedure)

Rezaei et al. 2025, RESTOR: Knowledge Recovery in Machine Unlearning (TMLR, arXiv:2411.00204;
research/methods.md §12). Three models are compared on the same facts:
  1. clean: a model that knows the facts (the base model on the builtin real facts it answers, or the model
     taught builtin:people on its people);
  2. corrupted: a copy taught (teach.py's recipe) WRONG objects for `n_corrupt` of those facts (each fact's
     first perturbed answer), mixed with the correct QA pairs of `n_context` known facts about other subjects,
     as RESTOR interleaves correct facts about unrelated entities into its corrupting documents;
  3. unlearned: `unlearn` with the chosen method on the corruption (forget = the wrong QA pairs, retain = the
     context facts).
Each model is scored on the corrupted facts' QA probes: `accuracy` on the true answers, `wrong_rate` (share
of probes where it states the wrong answer), and the mean length-normalised probabilities of both.
recovery = (acc_unl - acc_corr) / (acc_clean - acc_corr): 1 = back to the clean knowledge, 0 = no better than
corrupted, < 0 = worse; None when the corruption did not lower accuracy (nothing to recover). Only facts the
clean model answers are corrupted, so acc_clean = 1 and recovery <= 1. A method can score a low
`wrong_rate` with recovery ~ 0: it suppressed the wrong answer without restoring the right one, the paper's
main finding. Deviations: QA pairs instead of documents, and exact-match judging instead of a GPT judge (our
facts have one short answer each).
Cost: one known-check pass over the candidate facts, one short fine-tune (corruption), one unlearning run and
three small scoring passes; expensive next to a card metric, hence a function and `obliviate restor`.

>>> from obliviate.known import known_real_facts
>>> from obliviate.models import load_model
>>> base = load_model("default")                                                        # doctest: +SKIP
>>> result = restor(base, known_real_facts(base), RestorConfig(method="npo"))            # doctest: +SKIP
>>> print(result.corruption_took, result.recovery)                                       # doctest: +SKIP
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from obliviate.data.forms import probes
from obliviate.data.schema import Fact, Task
from obliviate.errors import ConfigError
from obliviate.judge import get_judge, normalise
from obliviate.known import answered_directly
from obliviate.models import LoadedModel
from obliviate.runs import environment, write_json
from obliviate.scoring import score_probes
from obliviate.teach import TeachConfig, copy_model, teach
from obliviate.train import TrainConfig
from obliviate.unlearn import unlearn


@dataclass
class RestorConfig:
    """One RESTOR run; saved with its results."""

    method: str = "ga"
    n_corrupt: int = 8  # known facts whose object is replaced by a wrong one
    n_context: int = 16  # known facts about other subjects taught correctly alongside the corruption
    corrupt: TeachConfig = field(default_factory=lambda: TeachConfig(epochs=10.0, batch_size=8))
    train: TrainConfig | None = None  # unlearning budget; None = the method's tuned steps and lr
    seed: int = 0  # which known facts are corrupted
    judge: str = "strict"  # obliviate.judge name used for every verdict of the run
    progress: bool = True

    def __post_init__(self) -> None:
        if self.n_corrupt < 1 or self.n_context < 0:
            raise ConfigError(f"restor needs n_corrupt >= 1 and n_context >= 0; got {self.n_corrupt}, {self.n_context}")


def recovery(acc_clean: float, acc_corr: float, acc_unl: float) -> float | None:
    """(acc_unl - acc_corr) / (acc_clean - acc_corr); None when the corruption did not lower accuracy."""
    gap = acc_clean - acc_corr
    return (acc_unl - acc_corr) / gap if gap > 0 else None


def wrong_answer(fact: Fact) -> str | None:
    """The corrupting object: the first perturbed answer, else the first wrong MCQ option; None if neither."""
    options = fact.mcq.options if fact.mcq else ()
    wrong = [a for a in (*fact.perturbed_answers, *options) if normalise(a) != normalise(fact.answer)]
    return wrong[0] if wrong else None


def select_facts(clean: LoadedModel, facts: list[Fact], config: RestorConfig) -> tuple[list[Fact], list[Fact]]:
    """(targets, context): seeded samples of the facts `clean` answers; context shares no subject with targets."""
    candidates = [f for f in facts if wrong_answer(f)]
    known = [f for f, ok in zip(candidates, answered_directly(clean, candidates, config.judge, ('qa',))) if ok]
    random.Random(config.seed).shuffle(known)
    if len(known) < config.n_corrupt:
        raise ConfigError(f"restor: the clean model answers {len(known)} of {len(candidates)} candidate facts, "
                          f"fewer than n_corrupt={config.n_corrupt}; lower n_corrupt or give facts it knows")
    targets = known[: config.n_corrupt]
    subjects = {f.subject for f in targets if f.subject}
    context = [f for f in known[config.n_corrupt :] if f.subject not in subjects][: config.n_context]
    return targets, context


def knowledge(lm: LoadedModel, targets: list[Fact], corrupted: list[Fact], context: list[Fact],
              judge: str = "strict") -> dict[str, float]:
    """What `lm` says on the targets: true-answer accuracy, wrong-answer rate, both probabilities, context accuracy."""
    qa = [probes(f, "qa")[0] for f in (*targets, *corrupted, *context)]
    results = score_probes(lm, qa, judge_fn=get_judge(judge))
    n = len(targets)
    true, wrong, kept = results[:n], results[n : 2 * n], results[2 * n :]

    def mean(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None

    return {"accuracy": mean([r.correct for r in true]), "wrong_rate": mean([r.correct for r in wrong]),
            "p_true": mean([r.probability for r in true]), "p_wrong": mean([r.probability for r in wrong]),
            "context_accuracy": mean([r.correct for r in kept])}


@dataclass
class RestorResult:
    """The three models' knowledge of the corrupted facts, and the recovery it implies."""

    config: dict[str, Any]
    facts: list[dict[str, str]]  # id, question, true answer, wrong answer
    context: list[str]  # ids of the correct facts taught alongside the corruption
    models: dict[str, dict[str, float | None]]  # clean / corrupted / unlearned -> knowledge()
    seconds: float

    @property
    def recovery(self) -> float | None:
        return recovery(*(self.models[m]["accuracy"] for m in ("clean", "corrupted", "unlearned")))

    @property
    def corruption_took(self) -> bool:
        return self.models["corrupted"]["accuracy"] < self.models["clean"]["accuracy"]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "recovery": self.recovery, "corruption_took": self.corruption_took,
                "environment": environment()}

    def save(self, path: str | Path) -> Path:
        return write_json(path, self.to_dict())


def restor(clean: LoadedModel, facts: list[Fact], config: RestorConfig | None = None) -> RestorResult:
    """Corrupt a copy of `clean` on some of `facts` it knows, unlearn the corruption, and score all three."""
    config = config or RestorConfig()
    started = time.perf_counter()
    targets, context = select_facts(clean, facts, config)
    corrupted = [replace(f, answer=wrong_answer(f), object=wrong_answer(f)) for f in targets]
    task = Task(name="restor", forget=corrupted, retain=context)
    models = {"clean": knowledge(clean, targets, corrupted, context, config.judge)}
    lm = teach(copy_model(clean), task, config.corrupt, progress=config.progress)
    models["corrupted"] = knowledge(lm, targets, corrupted, context, config.judge)
    train = replace(config.train, progress=config.progress) if config.train else None
    lm = unlearn(lm, task, config.method, train=train).lm  # in place: the corrupted copy is not needed again
    models["unlearned"] = knowledge(lm, targets, corrupted, context, config.judge)
    rows = [{"id": t.id, "question": t.question, "true": t.answer, "wrong": c.answer}
            for t, c in zip(targets, corrupted)]
    return RestorResult({**asdict(config), "clean_model": clean.source}, rows, [f.id for f in context], models,
                        time.perf_counter() - started)


def run_restor_command(model: str, task_spec: str, config: RestorConfig, out: str | Path | None) -> RestorResult:
    """What `obliviate restor` does: resolve the clean model and the task, run RESTOR, print, save restor.json.

    The candidate facts are every fact of the task but its general split (which builtin:people fills with real
    facts): builtin:realfacts with the base model, or builtin:people with its taught model.
    """
    from rich.console import Console
    from rich.table import Table

    from obliviate.pipeline import load_task, resolve_model
    from obliviate.runs import new_run_dir

    clean = resolve_model(model)
    task = load_task(task_spec, clean)
    facts = [f for split in ("forget", "retain", "neighbours", "holdout") for f in task.split(split)]
    result = restor(clean, facts, config)
    result.config.update(model=model, task=task_spec)
    out = Path(out) if out else new_run_dir(prefix=f"restor-{config.method}")
    path = result.save(out / "restor.json")
    table = Table("model", "true-answer accuracy", "wrong-answer rate", "context accuracy")
    for name, k in result.models.items():
        table.add_row(name, f"{k['accuracy']:.2f}", f"{k['wrong_rate']:.2f}",
                      "-" if k["context_accuracy"] is None else f"{k['context_accuracy']:.2f}")
    console = Console()
    console.print(table)
    rec = "undefined (the corruption did not take)" if result.recovery is None else f"{result.recovery:.2f}"
    console.print(f"recovery {rec} → {path}")
    return result
