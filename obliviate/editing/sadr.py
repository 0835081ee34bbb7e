"""SADR: Selective Attention Drift Restriction (Wang et al., ICLR 2025, arXiv:2502.14838), spec tag [S]/[R].

After a locate-then-edit update, heads in the layers above the edit put too much attention on the edited
subject, so the new object leaks into any prompt that merely mentions the subject ("specificity failure").
SADR adds a KL term to the value optimisation, only on the heads that drift:

    L = L_edit(δ) + γ · mean_prompts Σ_{ℓ>L, h, q} M_{ℓ,h,q} · KL(A⁰_{ℓ,h,q} ‖ A^δ_{ℓ,h,q})
    M_{ℓ,h,q} = 1[a^δ_{ℓ,h,q} > m*]

A_{ℓ,h,q} is head h's attention distribution in layer ℓ from query position q, A⁰ the unedited model's,
a the weight on the subject's last token, recomputed every step. Our reading of the reviews ([R]):
- `threshold="global"` (the spec's formalisation): m* = the unedited model's largest subject weight over all
  heads and queries of that prompt; only heads attending more than any head did before are pulled back.
- `threshold="head"`: m* = that head's own unedited subject weight (any increase counts as drift).
- Queries: every position after the subject (the spec names only the final one; the later positions are the
  ones that read the subject, and using them all gives the regulariser more signal on short prompts).
Attention weights need the eager implementation; `eager_attention` switches to it for the block.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from obliviate.errors import ConfigError


@dataclass
class SADRConfig:
    """The attention-drift regulariser: γ and how the drifting heads are chosen."""

    weight: float = 1.0  # γ
    threshold: str = "global"  # "global" (m* over all heads) or "head" (each head's own unedited weight)

    def __post_init__(self) -> None:
        if self.threshold not in ("global", "head") or self.weight < 0:
            raise ConfigError(f"SADR needs weight >= 0 and threshold 'global' or 'head'; got {self}")


@contextmanager
def eager_attention(model) -> Iterator[None]:
    """Use the eager attention kernel during the block (sdpa/flash do not return attention weights)."""
    before = getattr(model.config, "_attn_implementation", None)
    if before == "eager" or not hasattr(model, "set_attn_implementation"):
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(before)


class AttentionDriftRegulariser:
    """Holds the unedited attention on a fixed batch and scores the drift of a new forward pass.

    Args:
        attentions: the unedited model's `output_attentions` for the batch (one (B, H, T, T) per layer).
        subject_idx: (B,) subject-last-token index per row.
        attention_mask: (B, T) of the batch (padding rows/columns are ignored).
        first_layer: only layers ≥ this are regularised (the layers above the edit).
    """

    def __init__(self, attentions, subject_idx: torch.Tensor, attention_mask: torch.Tensor, first_layer: int,
                 config: SADRConfig) -> None:
        self.config = config
        self.first = first_layer
        self.subject = subject_idx
        b, t = attention_mask.shape
        pos = torch.arange(t, device=attention_mask.device)
        # Queries after the subject on real tokens: (B, T)
        self.queries = (pos[None] > subject_idx[:, None]) & attention_mask.bool()
        self.reference = self._stack(attentions).detach()  # (L, B, H, T, T)
        a0 = self._subject_weight(self.reference)  # (L, B, H, T)
        if config.threshold == "global":
            masked = a0.masked_fill(~self.queries[None, :, None, :], 0)
            self.limit = masked.amax(dim=(0, 2, 3))[None, :, None, None]  # (1, B, 1, 1)
        else:
            self.limit = a0

    def _stack(self, attentions) -> torch.Tensor:
        return torch.stack([a.float() for a in attentions[self.first :]])  # (L, B, H, T, T)

    def _subject_weight(self, att: torch.Tensor) -> torch.Tensor:
        idx = self.subject.view(1, -1, 1, 1, 1).expand(*att.shape[:4], 1)
        return att.gather(-1, idx).squeeze(-1)  # (L, B, H, T)

    def loss(self, attentions) -> tuple[torch.Tensor, float]:
        """(mean over prompts of the masked KL sum, share of (layer, head, query) cells flagged as drifting)."""
        att = self._stack(attentions)
        drift = (self._subject_weight(att).detach() > self.limit) & self.queries[None, :, None, :]  # (L, B, H, T)
        ref = self.reference
        kl = (ref * (ref.clamp_min(1e-10).log() - att.clamp_min(1e-10).log())).sum(-1)  # (L, B, H, T)
        total = (kl * drift).sum() / att.shape[1]
        share = float(drift.sum()) / max(1, int(self.queries.sum()) * att.shape[0] * att.shape[2])
        return total, share


def subject_attention(attentions, subject_idx: torch.Tensor, query_idx: torch.Tensor,
                      first_layer: int = 0) -> torch.Tensor:
    """Attention weight from each row's `query_idx` to its subject token, per layer ≥ first_layer and head.

    Returns (B, L, H); a diagnostic for attention drift (compare before and after an edit).
    """
    att = torch.stack([a.float() for a in attentions[first_layer:]], 1)  # (B, L, H, T, T)
    rows = torch.arange(att.shape[0], device=att.device)
    return att[rows, :, :, query_idx, subject_idx]
