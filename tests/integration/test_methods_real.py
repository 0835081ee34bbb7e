"""Every unlearning method on the real SmolLM2 (slow).

Gradient methods, `task_vector`, `in_context`, `rocr` and `edit_redirect` run on the model taught
builtin:people "small" (forget10: 12 facts of 2 people; the taught model answers 0.92 of them and 0.94 of the 72
retain facts as plain QA). Each must bring forget QA accuracy to at most half of the taught model's while
retain QA accuracy stays within 10 points, unless `EXPECT` below records what the method reaches instead and
why. `rocr` and `concept_ablation` also run on real facts the default model knows (builtin:realfacts), the
setting they were designed for.

CI runs the core gradient methods (CORE, ~50 s each on 2 cores) and the cheap training-free ones; every other
method is marked `benchmark` (`pytest -m benchmark tests/integration/test_methods_real.py`, ~20 min): the same
assertions, left out of CI for time. Measured 2026-12-06 on one run of this whole file (-s prints each line).

Budgets are short on purpose (CPU); each method gets its own steps/lr where the defaults are too timid
for 20 steps. A failure here means a method no longer forgets (or forgets everything) at its budget.
"""

import pytest
import torch

from obliviate.data.forms import probes
from obliviate.data.people import people_task
from obliviate.data.realfacts import real_facts, verify_known
from obliviate.data.schema import Task
from obliviate.methods import METHODS
from obliviate.models import LoadedModel, load_model
from obliviate.scoring import score_probes
from obliviate.teach import copy_model, taught_model
from obliviate.train import TrainConfig
from obliviate.unlearn import unlearn

pytestmark = pytest.mark.slow

# method -> (steps, lr, method overrides); None: the method's defaults. Same batch size (8) everywhere.
BUDGET: dict[str, tuple[int, float, dict] | None] = {
    "ga": (12, 1e-5, {}),
    "graddiff": (20, 1e-5, {}),
    "npo": (20, 2e-5, {}),
    "simnpo": (20, 2e-5, {}),
    "idkpo": (20, 2e-5, {}),
    "catnip": (20, 2.5e-6, {}),
    "rmu": (20, 1e-3, {}),
    "advga": (20, 1e-4, {}),
    "advnpo": (20, 1e-4, {}),  # 5e-5 left forget QA at 0.83 on the 10-epoch taught model
    "lat": (20, 2e-5, {}),
    "tru": (20, 2e-5, {}),
    "icu": (20, 1e-5, {}),
    "roka": (20, 2e-5, {}),
    "klue": (20, 1e-3, {}),
    "wpn": (20, 5e-5, {}),  # 2e-5 left forget QA at 0.67 on the 10-epoch taught model
    "bild": (20, 2e-5, {}),
}
CORE = {"ga", "npo", "rmu"}  # graddiff: test_spine_real
# Methods that cannot reach the bar on this 135M model: (forget QA at most, retain QA at least) that they do
# reach, measured on 2026-12-06, and why they cannot do better.
EXPECT: dict[str, tuple[float, float, str]] = {
    "in_context": (0.67, 0.75, "forgets part (0.92 -> 0.58): the 135M model follows the refusal demonstrations "
                               "only sometimes, and they cost retain too (0.94 -> 0.83)"),
    "rocr": (0.75, 0.90, "removes 2 of 12 taught facts (0.92 -> 0.75): taught people's facts live where fine-tuning "
                         "put them, not only in the subject keys it edits"),
    "rocr[realfacts]": (0.25, 0.80, "removes every fact of the 3 edited subjects (1.00 -> 0.00) but costs other "
                                    "known facts' plain QA (1.00 -> 0.86)"),
    "advnpo": (0.25, 0.80, "no lr meets both bars on the 10-epoch taught model: 5e-5 keeps forget QA at 0.83, 1e-4 "
                           "forgets (0.92 -> 0.17) but retain falls 0.94 -> 0.83"),
    "wpn": (0.40, 0.80, "2e-5 keeps forget QA at 0.67; 5e-5 forgets (0.92 -> 0.33) but retain falls 0.94 -> 0.82"),
    "concept_ablation[realfacts]": (0.25, 0.70, "real facts are spread over many value vectors: the answers' top "
                                                "16 vectors also carry other facts (8 remove nothing, 64 remove both)"),
}
# Methods that do not forget at all on this model (a bound they reach would let a no-op pass): expected to fail.
DOES_NOT_FORGET = {
    "bild": "its teacher is the original model told to refuse, and SmolLM2-135M ignores the instruction (its "
            "instructed teacher still answers), so there is nothing to distil (forget QA 0.92 -> 0.92)",
}


def _marked(name: str, core: bool) -> object:
    marks = [] if core else [pytest.mark.benchmark]
    if name in DOES_NOT_FORGET:
        marks.append(pytest.mark.xfail(strict=True, reason=DOES_NOT_FORGET[name]))
    return pytest.param(name, marks=marks)


TRAINING_FREE_ON_PEOPLE = [_marked("task_vector", True), _marked("in_context", True), _marked("rocr", True),
                           _marked("edit_redirect", False)]  # edit_redirect: ~3 min, covered by test_editing_real


def qa_accuracy(lm: LoadedModel, facts) -> float:
    ps = [p for f in facts for p in probes(f, "qa")]
    return sum(r.correct for r in score_probes(lm, ps)) / len(ps)


@pytest.fixture(scope="module")
def task() -> Task:
    return people_task("small")


@pytest.fixture(scope="module")
def taught(task) -> LoadedModel:
    torch.manual_seed(0)
    return taught_model(task, progress=False)


@pytest.fixture(scope="module")
def before(taught, task) -> dict[str, float]:
    out = {"forget": qa_accuracy(taught, task.forget), "retain": qa_accuracy(taught, task.retain)}
    assert out["forget"] >= 0.6, f"the taught model should know the forget facts: {out}"
    return out


def _check(name: str, lm: LoadedModel, task: Task, before: dict[str, float]) -> None:
    forget, retain = qa_accuracy(lm, task.forget), qa_accuracy(lm, task.retain)
    print(f"{name}: forget {before['forget']:.2f} -> {forget:.2f}, retain {before['retain']:.2f} -> {retain:.2f}")
    max_forget, min_retain, why = EXPECT.get(name, (before["forget"] / 2, before["retain"] - 0.10, "the bar"))
    assert max_forget < before["forget"], f"{name}: a bound of {max_forget:.2f} lets a no-op pass"
    assert forget <= max_forget, f"{name}: forget QA {before['forget']:.2f} -> {forget:.2f} > {max_forget:.2f} ({why})"
    assert retain >= min_retain, f"{name}: retain QA {before['retain']:.2f} -> {retain:.2f} < {min_retain:.2f} ({why})"


@pytest.mark.parametrize("name", [_marked(n, n in CORE) for n, m in METHODS.items() if not m.training_free])
def test_gradient_method_forgets_and_keeps(name, taught, task, before):
    budget = BUDGET.get(name)
    if budget is None:
        cls = METHODS.get(name)
        budget = (cls.default_steps, cls.default_lr, {})
    steps, lr, overrides = budget
    run = unlearn(copy_model(taught), task, name, train=TrainConfig(steps=steps, lr=lr, batch_size=8, progress=False),
                  **overrides)
    _check(name, run.lm, task, before)


@pytest.mark.parametrize("name", TRAINING_FREE_ON_PEOPLE)
def test_training_free_method_on_people(name, taught, task, before):
    run = unlearn(copy_model(taught), task, name)
    _check(name, run.lm, task, before)


def test_lora_ga_recipe(taught, task, before):
    """LoRA GA (the "Machine Unlearning in LLMs" recipe, without the mismatch term) is `ga` + TrainConfig(lora=True)."""
    config = TrainConfig(steps=12, lr=2e-4, batch_size=8, lora=True, progress=False)
    run = unlearn(copy_model(taught), task, "ga", train=config)
    _check("ga+lora", run.lm, task, before)


@pytest.fixture(scope="module")
def real() -> tuple[LoadedModel, Task]:
    """The default model and a realfacts task made only of facts it answers (forget = facts with a subject)."""
    lm = load_model("default")

    def known(facts):
        ps = [probes(f, "qa")[0] for f in facts]
        return [r.correct for r in score_probes(lm, ps)]

    facts = verify_known(real_facts(), known)
    by_subject: dict[str, list] = {}
    for f in facts:
        by_subject.setdefault(f.subject, []).append(f)
    # forget: every known fact of a few subjects; retain: facts of other subjects (ROCR redirects whole subjects)
    subjects = sorted(s for s in by_subject if s)[:3]
    forget = [f for s in subjects for f in by_subject[s]]
    retain = [f for s, fs in by_subject.items() if s not in subjects for f in fs]
    return lm, Task("realfacts-known", forget=forget, retain=retain).validate()


@pytest.mark.parametrize("name", ["rocr", "concept_ablation", pytest.param("in_context", marks=pytest.mark.xfail(
    strict=True, reason="SmolLM2-135M answers known real facts whatever the refusal instruction says (forget QA "
                        "1.00 -> 1.00 on 2026-12-06); in-context unlearning needs a model that follows instructions"))])
def test_training_free_method_on_real_facts(name, real):
    lm, task = real
    start = {"forget": qa_accuracy(lm, task.forget), "retain": qa_accuracy(lm, task.retain)}
    assert start["forget"] == 1.0  # verify_known kept only facts the model answers
    run = unlearn(copy_model(lm), task, name)
    _check(f"{name}[realfacts]", run.lm, task, start)
