"""Gradient ascent: maximise the forget answers' loss (the simplest baseline; collapses fast)."""

from __future__ import annotations

from obliviate.methods.base import METHODS, Method, target_nll


@METHODS.register("ga")
class GradientAscent(Method):
    summary = "gradient ascent on forget answers (baseline; no retain term, collapses if run long)"
    paper = "Jang et al. 2023, Knowledge Unlearning for Mitigating Privacy Risks in LMs, arXiv:2210.01504"
    default_steps = 12
    default_lr = 1e-5

    def loss(self, ctx, batch):
        nll = target_nll(ctx.model, batch.forget)
        return -nll, {"forget_nll": nll.item()}
