"""Stop unlearning when the forget facts are forgotten, not after a fixed number of steps.

A fixed probe set — the first `max_facts` facts of each split in task order, the very facts the card reads
(`EvalConfig.max_facts`, 60) — is scored before training and every `every` steps: forget facts in every
direct form the task has (plain QA, the chat turn when the model has a chat template, the cloze), the
holdout facts in the same forms (the control, measured on the same checkpoint: what the model "answers" about
facts it never knew, which can rise as unlearning disturbs it), and retain and neighbour facts in the same
forms. The rule, per check:

- forgotten: in every form, forget accuracy <= control accuracy + `tolerance`;
- kept: retain accuracy in every form >= its value before training - `keep_within`, and the same for
  neighbours with `neighbours_within` (per form: a gain in one form must not hide a loss in another).

Training stops at the first check that meets both. Otherwise it runs its whole budget and the checkpoint with
the smallest shortfall (how far forget stands above the control plus how far retain / neighbours fall below
their bounds) is put back, and the summary says plainly that the rule was not met. The curve (every split and
form vs step) goes into history.json (`probe` entries) and the report. Judged as the card judges (strict
judge, greedy answers), so a stop here is what the card will read: on SAND's run the card read the probe's
number in every cell; a seeded 20 per split, the first rule, had stopped on retain chat 0.90 where the card's
60 read 0.80 (docs/methods.md). The card adds intervals and the forms the probe does not ask. Cost per check:
one greedy answer per probe (SmolLM2-135M on 2 CPU cores: ~30 s for 240, 49-59 s for the 480 of
builtin:realfacts:forget20).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from obliviate.data.forms import direct_forms, probes
from obliviate.data.schema import Task
from obliviate.errors import ConfigError
from obliviate.judge import get_judge
from obliviate.metrics.forms import per_fact
from obliviate.models import LoadedModel
from obliviate.progress import note, phase
from obliviate.scoring import score_probes
from obliviate.train import restore, snapshot

PROBE_SPLITS = ("forget", "holdout", "retain", "neighbours")


@dataclass
class UntilConfig:
    """When to look and what counts as forgotten and kept (accuracies are shares of probe facts, 0-1)."""

    every: int = 5  # optimizer steps between checks
    max_facts: int = 60  # probe facts per split, first in task order (the card's default: the rule reads its facts)
    tolerance: float = 0.05  # forget may stand this far above the control in a form (one fact in 20)
    keep_within: float = 0.05  # retain may fall this far below its value before training
    neighbours_within: float = 0.10  # neighbours may fall this far (they share subjects with the forget facts)
    judge: str = "strict"

    def __post_init__(self) -> None:
        if self.every < 1 or self.max_facts < 1:
            raise ConfigError(f"until: every and max_facts must be >= 1, got {self.every} and {self.max_facts}")
        for name in ("tolerance", "keep_within", "neighbours_within"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"until: {name} is a share in [0, 1], got {getattr(self, name)}")


@dataclass
class Check:
    """One look at the model: {split: {form: accuracy, "mean": mean over forms}} and the rule's reading."""

    step: int
    scores: dict[str, dict[str, float]]
    forgotten: bool = False
    kept: bool = False
    shortfall: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class UntilForgotten:
    """The stop check of `run_training` (`stop_check`) for `unlearn(..., until=UntilConfig())`."""

    task: Task
    tokenizer: object
    config: UntilConfig = field(default_factory=UntilConfig)

    def __post_init__(self) -> None:
        if not self.task.holdout:
            raise ConfigError(f"--until forgotten needs a control: task {self.task.name!r} has no holdout split. Add "
                              "holdout facts (same kind as forget, facts the model does not know, e.g. holdout.jsonl "
                              "in the task folder) so that 'forgotten' means 'at the level of facts it never knew', "
                              "not zero")
        self.facts = {s: self.task.split(s)[: self.config.max_facts] for s in PROBE_SPLITS}
        have = {s: {form for f in facts for form in direct_forms(self.tokenizer) if probes(f, form, self.tokenizer)}
                for s, facts in self.facts.items() if facts}
        self.forms = tuple(f for f in direct_forms(self.tokenizer) if f in have["forget"] and f in have["holdout"])
        if not self.forms:
            raise ConfigError("--until forgotten: the forget and holdout facts share no direct form (qa, chat, cloze)")
        self.baseline: Check | None = None
        self.curve: list[Check] = []
        self.best: Check | None = None
        self._best_weights: dict[str, torch.Tensor] | None = None

    def measure(self, lm: LoadedModel, step: int) -> Check:
        """Score the probe set: accuracy per split and form (a fact's probes in a form count once, by their mean)."""
        groups = [(s, form, [p for f in facts for p in probes(f, form, self.tokenizer)])
                  for s, facts in self.facts.items() for form in self.forms]
        groups = [g for g in groups if g[2]]
        scores: dict[str, dict[str, float]] = {}
        with phase(f"until probe @ step {step}", total=len(groups)) as done:
            for split, form, ps in groups:
                accuracy = per_fact(score_probes(lm, ps, judge_fn=get_judge(self.config.judge)))
                scores.setdefault(split, {})[form] = sum(accuracy.values()) / len(accuracy)
                done(f"{split} {form}")
        for split in scores.values():
            split["mean"] = sum(split.values()) / len(split)
        note(f"  step {step}: " + " | ".join(
            f"{name} " + " ".join(f"{form} {scores[name][form]:.2f}" for form in self.forms if form in scores[name])
            for name in PROBE_SPLITS if name in scores))
        return Check(step, scores)

    def start(self, lm: LoadedModel) -> None:
        """Measure the model before training: the level retain and neighbours are kept against."""
        self.baseline = self.measure(lm, 0)

    def _judge(self, check: Check) -> Check:
        cfg, s, base = self.config, check.scores, self.baseline.scores
        above = [s["forget"][f] - s["holdout"][f] - cfg.tolerance for f in self.forms]
        # Every form on its own: a retain term trained in plain QA can lift QA while chat falls, and a mean over
        # forms would let the gain hide the loss (measured with --target: retain chat 0.95 -> 0.70, mean kept).
        falls = [base[k][f] - s[k][f] - within
                 for k, within in (("retain", cfg.keep_within), ("neighbours", cfg.neighbours_within)) if k in s
                 for f in self.forms if f in s[k]]
        check.forgotten = max(above) <= 1e-9
        check.kept = all(x <= 1e-9 for x in falls)
        check.shortfall = max(0.0, max(above)) + sum(max(0.0, x) for x in falls)
        return check

    def __call__(self, lm: LoadedModel, step: int) -> bool:
        """Check at `step`; keep the weights when this is the best checkpoint so far; True = stop (rule met)."""
        if self.baseline is None:
            raise ConfigError("UntilForgotten.start(model) must measure the model before training")
        check = self._judge(self.measure(lm, step))
        self.curve.append(check)
        if self.best is None or check.shortfall < self.best.shortfall - 1e-9:
            self.best = check
            self._best_weights = snapshot(lm.model)
        return check.forgotten and check.kept

    def state_dict(self) -> dict:
        """What a checkpoint keeps so that a resumed run goes on with the same curve and best weights."""
        return {"baseline": self.baseline.to_dict(), "curve": [c.to_dict() for c in self.curve],
                "best": self.curve.index(self.best) if self.best is not None else None,
                "best_weights": self._best_weights}

    def load_state_dict(self, state: dict) -> None:
        self.baseline = Check(**state["baseline"])
        self.curve = [Check(**c) for c in state["curve"]]
        self.best = self.curve[state["best"]] if state["best"] is not None else None
        self._best_weights = state["best_weights"]

    def restore_best(self, model: torch.nn.Module) -> int:
        """Put the best checkpoint's weights back into `model` (when training went past it); its step."""
        if self.best is None:
            raise ConfigError("--until forgotten: training ended before the first check; give --steps at least "
                              f"--check-every ({self.config.every})")
        if self.best is not self.curve[-1]:
            restore(model, self._best_weights)
        self._best_weights = None
        return self.best.step

    def summary(self, steps_trained: int) -> dict:
        """What config.json records: the rule, whether it was met, the step kept, and the curve."""
        met = self.best is not None and self.best.forgotten and self.best.kept
        best = self.best
        if met:
            message = f"forgotten at step {best.step}: forget at the control's level in every form, retain kept"
        else:
            parts = [] if best.forgotten else ["forget stayed above the control"]
            parts += [] if best.kept else ["retain or neighbours fell past their bound"]
            message = (f"NOT met within {steps_trained} steps ({' and '.join(parts)}); kept the best trade-off, "
                       f"step {best.step} (shortfall {best.shortfall:.2f}). "
                       + ("Raise --steps or --lr" if best.kept else "Protect what must stay (--keep "
                          "neighbours+retain, a stronger retain term) or lower --lr"))
        return {"rule": asdict(self.config), "forms": list(self.forms), "met": met, "step": best.step,
                "steps_trained": steps_trained, "message": message,
                "n": {s: len(f) for s, f in self.facts.items() if f},
                "baseline": self.baseline.scores, "curve": [c.to_dict() for c in self.curve]}
