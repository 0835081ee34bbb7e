"""ICU (iterative contrastive unlearning): GA on forget, learning + KL anchor on neighbours, per-sample stopping.

Tang et al. 2024, Learn while Unlearn (arXiv:2407.20271); spec tag [V] (himalalps/ICU):
    L = −u_w·CE(D_f ∩ still-known) + l_w·CE(N) + k·KL(π_ref ‖ π_θ) on N
Deviations, to fit obliviate's streams: the neighbour batch N comes from the task's neighbour facts (its
retain split when it has none) instead of each forget sample's nearest training sequence mined with sentence
embeddings; and "iterative refinement" drops, at every step, the forget rows the model no longer
reproduces under greedy decoding (teacher-forced argmax ≠ answer at some token) instead of thresholding
BERTScore/BLEU of a generation once per epoch. Rows come back if they are relearned.
"""

from __future__ import annotations

from dataclasses import dataclass

from obliviate.errors import ConfigError
from obliviate.methods._common import greedy_known
from obliviate.methods.base import METHODS, Method, MethodConfig, retain_kl, target_nll
from obliviate.scoring import on_targets, selective_log_softmax, target_labels, target_logits
from obliviate.train import process_mean


@dataclass
class ICUConfig(MethodConfig):
    unlearn_weight: float = 1.0  # u_w
    learn_weight: float = 0.5  # l_w: CE on the neighbour (retain) batch
    kl_weight: float = 1.0  # k: KL to the original model on the neighbour batch

    def __post_init__(self) -> None:
        if min(self.unlearn_weight, self.learn_weight, self.kl_weight) < 0:
            raise ConfigError(f"icu weights must be >= 0, got {self}")


@METHODS.register("icu")
class ICU(Method):
    summary = "GA on still-known forget rows + CE and KL anchor on neighbours (per-sample stopping)"
    paper = "Tang et al. 2024, Learn while Unlearn: An Iterative Unlearning Framework for LLMs, arXiv:2407.20271"
    Config = ICUConfig
    needs_retain = True
    keep_split = "neighbours"
    needs_reference_model = True
    default_steps = 20
    default_lr = 1e-5

    def loss(self, ctx, batch):
        c, f = self.config, batch.forget
        logits = target_logits(ctx.model, f)  # (N_target_tokens, V)
        mask = f.target_mask[:, 1:]
        lp = on_targets(f, selective_log_softmax(logits, target_labels(f)))  # (B, T-1)
        known = greedy_known(logits, f)  # (B,) greedy still reproduces the answer
        forget_nll = -process_mean((lp * known.unsqueeze(-1)).sum(), (mask & known.unsqueeze(-1)).sum())
        loss = -c.unlearn_weight * forget_nll
        logs = {"forget_nll_known": forget_nll.item(), "known_rows": known.float().mean().item()}
        if batch.retain is not None:
            learn = target_nll(ctx.model, batch.retain)
            kl = retain_kl(ctx, batch.retain)
            loss = loss + c.learn_weight * learn + c.kl_weight * kl
            logs.update(learn_nll=learn.item(), kl=kl.item())
        return loss + 0.0 * lp.sum(), logs  # keep the graph even when every row is forgotten
