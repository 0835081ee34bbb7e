"""Edit-based unlearning: rewrite every forget subject so its facts answer a harmless object ("unknown").

Uses the ROME/MEMIT machinery of `obliviate.editing` (no gradient training of the weights: a value search per
subject, then one closed-form update). A subject's MLP key sits at its last token, before the relation is
read, so all facts about one subject share one key: we make one request per subject whose prompts are the
cloze and QA wordings of all its forget facts, with the redirect object as the new target. Optional SADR
keeps the subject from hijacking attention in other contexts, and a null-space threshold (AlphaEdit) keeps
the values of keys generic text uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from obliviate.data.schema import Task
from obliviate.editing.metrics import request_from_fact
from obliviate.editing.rome import EditConfig, EditRequest, edit
from obliviate.editing.sadr import SADRConfig
from obliviate.errors import ConfigError
from obliviate.methods.base import METHODS, Method, MethodConfig
from obliviate.models import LoadedModel
from obliviate.train import TrainConfig


@dataclass
class EditRedirectConfig(MethodConfig):
    target: str = "unknown"  # the harmless object every forget fact is redirected to
    layers: str = ""  # comma-separated contiguous blocks; "" = the editing default, 3 blocks ending at 1/6 of the depth
    steps: int = 25  # value-search steps per subject
    sadr_weight: float = 0.0  # γ of the SADR attention-drift regulariser (0 = off)
    nullspace_threshold: float = 0.0  # > 0: AlphaEdit projected update
    corpus_file: str = ""  # generic text for the key statistics (default: self-generated)
    # EditConfig.preserve_weight: other subjects' keys kept (on 60 real facts, with the 3 blocks, retain chat
    # 0.48 -> 0.67 and neighbours chat 0.28 -> 0.43 against 0 at one block, forget the same; docs/methods.md)
    preserve_weight: float = 1.0

    def __post_init__(self) -> None:
        if not self.target.strip():
            raise ConfigError("edit_redirect needs a non-empty target object (e.g. 'unknown')")
        if self.layers and not all(p.strip().isdigit() for p in self.layers.split(",")):
            raise ConfigError(f"edit_redirect layers must be comma-separated integers, got {self.layers!r}")


def subject_requests(task: Task, target: str) -> list[EditRequest]:
    """One request per forget subject, with the wordings of all its forget facts."""
    prompts: dict[str, list[str]] = {}
    for fact in task.forget:
        req = request_from_fact(fact, target)
        if req is not None:
            prompts.setdefault(fact.subject, []).extend(p for p in req.prompts if p not in prompts.get(fact.subject, []))
    return [EditRequest(s, tuple(ps), target) for s, ps in sorted(prompts.items())]


@METHODS.register("edit_redirect")
class EditRedirect(Method):
    summary = "training-free ROME/MEMIT edit redirecting each forget subject's facts to a harmless answer"
    paper = ("Meng et al. 2022, Locating and Editing Factual Associations in GPT (ROME), arXiv:2202.05262; "
             "Meng et al. 2023, MEMIT, arXiv:2210.07229; Wang et al. 2025, SADR, arXiv:2502.14838")
    Config = EditRedirectConfig
    training_free = True

    def apply(self, lm: LoadedModel, task: Task, train: TrainConfig | None = None) -> LoadedModel:
        c = self.config
        requests = subject_requests(task, c.target)
        if not requests:
            raise ConfigError(f"edit_redirect edits subjects, but no forget fact of task {task.name!r} has a "
                              "`subject` that occurs in its question or cloze")
        layers = tuple(int(p) for p in c.layers.split(",")) if c.layers else ()
        config = EditConfig(layers=layers, steps=c.steps, nullspace_threshold=c.nullspace_threshold,
                            corpus_file=c.corpus_file, preserve_weight=c.preserve_weight,
                            sadr=SADRConfig(weight=c.sadr_weight) if c.sadr_weight else None)
        edit(lm, requests, config)
        return lm
