"""Concept-vector ablation: find the MLP value vectors that write the forget answers, and switch them off.

Hong et al. 2024, Intrinsic Evaluation of Unlearning Using Parametric Knowledge Traces (ConceptVectors,
arXiv:2406.11614), the "oracle" ablation baseline; spec tag [V] for the verification/ablation, [S]/[R] for
selection. A value vector is a column v = W_out[:, j] of a block's MLP output projection (`down_proj` in Llama; the
architectures of `obliviate.hooks.LAYOUTS`); its logit-lens projection
E·(γ ⊙ v) (E the unembedding, γ the final norm's weight) says which tokens it promotes. Each column is scored
by the z-score, over the vocabulary, of its projection on the forget answers' tokens; the top `n_vectors`
are zeroed (or, with `noise` > 0, perturbed with N(0, noise²) as in the paper's causal check).
Deviation: the paper selects vectors by LLM-judged coherence with a named concept (GPT-4 + manual checks);
we select them automatically by the answer tokens, since our "concept" is the set of forget answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.concepts import VECTORS_PER_CONCEPT, concept_tokens, find_concept_vectors
from obliviate.data.schema import Task
from obliviate.errors import ConfigError
from obliviate.hooks import value_vectors
from obliviate.methods.base import METHODS, Method, MethodConfig
from obliviate.models import LoadedModel
from obliviate.train import TrainConfig


@dataclass
class ConceptAblationConfig(MethodConfig):
    n_vectors: int = VECTORS_PER_CONCEPT  # value vectors ablated per forget answer
    noise: float = 0.0  # 0: zero the vectors; > 0: add N(0, noise²) instead (the paper's causal check uses 0.1)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_vectors < 1 or self.noise < 0:
            raise ConfigError(f"concept_ablation needs n_vectors >= 1 and noise >= 0; got {self}")


@METHODS.register("concept_ablation")
class ConceptAblation(Method):
    summary = "zero the MLP value vectors whose logit-lens projection promotes the forget answers (training-free)"
    paper = "Hong et al. 2024, Intrinsic Evaluation of Unlearning Using Parametric Knowledge Traces, arXiv:2406.11614"
    Config = ConceptAblationConfig
    training_free = True

    @torch.no_grad()
    def apply(self, lm: LoadedModel, task: Task, train: TrainConfig | None = None) -> LoadedModel:
        c = self.config
        g = torch.Generator().manual_seed(c.seed)
        for fact in task.forget:  # one fact at a time: the next fact is scored on the already-edited weights
            for layer, col in find_concept_vectors(lm, [concept_tokens(lm, fact.answer)], c.n_vectors)[0]:
                w = value_vectors(lm.model, layer)  # (d, d_ff) view: writes reach the weight
                if c.noise:
                    w[:, col] += (c.noise * torch.randn(w.shape[0], generator=g)).to(w.device, w.dtype)
                else:
                    w[:, col] = 0
        return lm
