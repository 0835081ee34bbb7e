"""Benign relearning: fine-tune a copy for a few steps on text that says nothing about the forget set.

Łucki et al. (arXiv 2409.18025) found that fine-tuning on 10 unrelated examples brings back most of what RMU
removed: the update that hid the knowledge is undone by any small gradient step, no forget data needed. This is
the relearning attack with its "benign" source: ten neutral sentences (obliviate.text.NEUTRAL_TEXT), the same
steps, learning rate and judge, and every target judged asked directly.
"""

from __future__ import annotations

from obliviate.attacks.base import ATTACKS
from obliviate.attacks.relearning import Relearning


@ATTACKS.register("benign_relearning")
class BenignRelearning(Relearning):
    name = "benign_relearning"
    summary = "fine-tune a copy a few steps on 10 fact-free sentences; do the forget facts come back?"
    paper = "An Adversarial Perspective on Machine Unlearning for AI Safety (Łucki et al., arXiv 2409.18025)"

    def __init__(self, lr: float = 3e-5, batch_size: int = 4) -> None:
        super().__init__("benign", lr, batch_size)
