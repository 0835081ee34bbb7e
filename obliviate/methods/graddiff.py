"""GradDiff: gradient ascent on forget plus a retain term (cross-entropy, or KL to the original model)."""

from __future__ import annotations

from dataclasses import dataclass

from obliviate.errors import ConfigError
from obliviate.methods.base import METHODS, Method, MethodConfig, retain_kl, target_nll


@dataclass
class GradDiffConfig(MethodConfig):
    retain_weight: float = 1.0  # weight of the retain term against the forget ascent
    retain_loss: str = "ce"  # "ce": keep answering retain questions; "kl": stay close to the original there

    def __post_init__(self) -> None:
        if self.retain_loss not in ("ce", "kl"):
            raise ConfigError(f"graddiff retain_loss must be 'ce' or 'kl', got {self.retain_loss!r}")


@METHODS.register("graddiff")
class GradDiff(Method):
    summary = "ascent on forget + descent (CE) or KL on retain (TOFU baseline)"
    paper = "Liu et al. 2022 / Maini et al. 2024, TOFU, arXiv:2401.06121"
    Config = GradDiffConfig
    needs_retain = True
    default_steps = 20
    default_lr = 1e-5

    @property
    def needs_reference_model(self) -> bool:  # type: ignore[override]
        return self.config.retain_loss == "kl"

    def loss(self, ctx, batch):
        forget_nll = target_nll(ctx.model, batch.forget)
        if self.config.retain_loss == "kl":
            retain = retain_kl(ctx, batch.retain)
        else:
            retain = target_nll(ctx.model, batch.retain)
        loss = -forget_nll + self.config.retain_weight * retain
        return loss, {"forget_nll": forget_nll.item(), "retain": retain.item()}
