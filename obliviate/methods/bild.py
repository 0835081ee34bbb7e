"""Bidirectional logit distillation from an instruction-prompted copy of the model (Harmonizing MO-unlearning).

Zhong, Liu, Zhu 2026, Harmonizing Multi-Objective LLM Unlearning via Unified Domain Representation and
Bidirectional Logit Distillation (arXiv:2604.15482). Spec tag [S] for the parts, [R] for the formulas:
the teacher is the frozen original model given an intent instruction I; the student sees the plain prompt.
  L+ = KL(π̃_T,K ‖ π̃_θ,K) on every answer position (both renormalised over the teacher's top-K tokens):
       imitate the teacher, on forget prompts (teacher with I) and on retain prompts (teacher without I);
  L− = Σ_{v ∈ TopK_θ \\ TopK_T} −log(1 − π_θ(v)) on forget answer positions: push down what the student
       ranks high and the instruction-prompted teacher does not;
  L  = L+(forget) + L+(retain) + μ·L−.
Deviations: our data are already QA, so there is no unification step; the instruction is a fixed refusal
intent (the paper names the target in it and adds CoT); no prefilling-attack augmentation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.errors import ConfigError
from obliviate.methods._common import build_pairs, prompt_ids, target_ids, tokenizer_of
from obliviate.methods.base import METHODS, Method, MethodConfig
from obliviate.scoring import target_logits
from obliviate.train import process_mean

INSTRUCTION = ("You have been asked to forget the answer to the next question. "
               "Do not reveal it; say that you don't know.\n\n")


def topk_kl(teacher: torch.Tensor, student: torch.Tensor, k: int) -> torch.Tensor:
    """KL(teacher ‖ student) over the teacher's top-k tokens, both renormalised there; mean over rows of (N, V)."""
    idx = teacher.topk(k, dim=-1).indices
    t = teacher.gather(-1, idx).log_softmax(-1)
    s = student.gather(-1, idx).log_softmax(-1)
    return process_mean((t.exp() * (t - s)).sum(), len(t))


def suppress_topk(teacher: torch.Tensor, student: torch.Tensor, k: int) -> torch.Tensor:
    """Σ −log(1 − p_student(v)) over the student's top-k tokens that are not in the teacher's top-k; mean over rows."""
    s_idx = student.topk(k, dim=-1).indices  # (N, k)
    t_idx = teacher.topk(k, dim=-1).indices
    outside = ~(s_idx.unsqueeze(-1) == t_idx.unsqueeze(-2)).any(-1)  # (N, k)
    p = student.softmax(-1).gather(-1, s_idx).clamp(max=1 - 1e-6)
    return process_mean((-torch.log1p(-p) * outside).sum(), len(p))


@dataclass
class BILDConfig(MethodConfig):
    top_k: int = 20  # K of both distillation terms
    suppress_weight: float = 1.0  # μ
    instruction: str = INSTRUCTION

    def __post_init__(self) -> None:
        if self.top_k < 1 or self.suppress_weight < 0:
            raise ConfigError(f"bild needs top_k >= 1 and suppress_weight >= 0; got {self}")


@METHODS.register("bild")
class BILD(Method):
    summary = "top-K logit distillation from the instruction-prompted original + suppression of the rest [R]"
    paper = ("Zhong et al. 2026, Harmonizing Multi-Objective LLM Unlearning via Unified Domain Representation "
             "and Bidirectional Logit Distillation, arXiv:2604.15482")
    Config = BILDConfig
    needs_retain = True
    needs_reference_model = True
    default_steps = 20
    default_lr = 2e-5

    def loss(self, ctx, batch):
        c, f = self.config, batch.forget
        tok = tokenizer_of(ctx)
        instr = tok(c.instruction, add_special_tokens=False)["input_ids"]
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        prompted = build_pairs([instr + p for p in prompt_ids(f)], target_ids(f), pad, f.input_ids.device)
        teacher, student = ctx.reference_target_logits(prompted), target_logits(ctx.model, f)
        imitate, push = topk_kl(teacher, student, c.top_k), suppress_topk(teacher, student, c.top_k)
        loss = imitate + c.suppress_weight * push
        logs = {"kl_forget": imitate.item(), "suppress": push.item()}
        if batch.retain is not None:
            r = batch.retain
            keep = topk_kl(ctx.reference_target_logits(r), target_logits(ctx.model, r), c.top_k)
            loss = loss + keep
            logs["kl_retain"] = keep.item()
        return loss, logs
