"""Concept-vector ablation: find the MLP value vectors that write the forget answers, and switch them off.

Hong et al. 2024, Intrinsic Evaluation of Unlearning Using Parametric Knowledge Traces (ConceptVectors,
arXiv:2406.11614), the "oracle" ablation baseline; spec tag [V] for the verification/ablation, [S]/[R] for
selection. A value vector is a column v = W_out[:, j] of a block's `down_proj`; its logit-lens projection
E·(γ ⊙ v) (E the unembedding, γ the final norm's weight) says which tokens it promotes. Each column is scored
by the z-score, over the vocabulary, of its projection on the forget answers' tokens; the top `n_vectors`
are zeroed (or, with `noise` > 0, perturbed with N(0, noise²) as in the paper's causal check).
Deviation: the paper selects vectors by LLM-judged coherence with a named concept (GPT-4 + manual checks);
we select them automatically by the answer tokens, since our "concept" is the set of forget answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.data.forms import target
from obliviate.data.schema import Task
from obliviate.errors import ConfigError
from obliviate.hooks import decoder_layers
from obliviate.methods.base import METHODS, Method, MethodConfig
from obliviate.models import LoadedModel


@torch.no_grad()
def projection_basis(lm: LoadedModel) -> torch.Tensor:
    """(V, d): E ⊙ γ, so that the logit-lens projection of a value vector v is E·(γ ⊙ v) = basis @ v."""
    unembed = lm.model.get_output_embeddings().weight.float()  # (V, d)
    norm = getattr(getattr(lm.model, "model", lm.model), "norm", None)
    gamma = norm.weight.float() if norm is not None and hasattr(norm, "weight") else torch.ones(unembed.shape[1])
    return unembed * gamma


@torch.no_grad()
def value_vector_scores(lm: LoadedModel, concepts: list[list[int]]) -> torch.Tensor:
    """(n_concepts, n_layers, d_ff): mean z-score of each concept's token ids in the logit-lens projection of
    every value vector. The per-column spread is computed once and shared by all concepts."""
    e = projection_basis(lm)  # (V, d)
    mean, cov = e.mean(0), torch.cov(e.T)  # (d,), (d, d)
    rows = torch.stack([e[ids].mean(0) for ids in concepts])  # (n_concepts, d): mean over a concept's tokens
    _, blocks = decoder_layers(lm.model)
    out = []
    for block in blocks:
        w = block.mlp.down_proj.weight.float()  # (d, d_ff): columns are value vectors
        std = (w * (cov @ w)).sum(0).clamp(min=1e-12).sqrt()  # (d_ff,) spread of each column's projection
        out.append(((rows @ w) - mean @ w).div(std))  # (n_concepts, d_ff)
    return torch.stack(out, 1)


def find_concept_vectors(lm: LoadedModel, concepts: list[list[int]], n: int) -> list[list[tuple[int, int]]]:
    """For each concept (a list of token ids), the (layer, column) of the `n` value vectors that promote it most.

    Shared by this method (which ablates them) and the `concept_drift` metric (which watches them change).
    """
    scores = value_vector_scores(lm, concepts)  # (n_concepts, n_layers, d_ff)
    d_ff = scores.shape[2]
    return [[divmod(flat, d_ff) for flat in s.flatten().topk(n).indices.tolist()] for s in scores]


def concept_tokens(lm: LoadedModel, answer: str) -> list[int]:
    """The token ids of an answer as it follows a prompt (with its leading space): the concept we look for."""
    return lm.tokenizer(target(answer), add_special_tokens=False)["input_ids"]


@dataclass
class ConceptAblationConfig(MethodConfig):
    n_vectors: int = 8  # value vectors ablated per forget answer
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
    def apply(self, lm: LoadedModel, task: Task) -> LoadedModel:
        c = self.config
        _, blocks = decoder_layers(lm.model)
        g = torch.Generator().manual_seed(c.seed)
        for fact in task.forget:  # one fact at a time: the next fact is scored on the already-edited weights
            for layer, col in find_concept_vectors(lm, [concept_tokens(lm, fact.answer)], c.n_vectors)[0]:
                w = blocks[layer].mlp.down_proj.weight
                if c.noise:
                    w[:, col] += (c.noise * torch.randn(w.shape[0], generator=g)).to(w.device, w.dtype)
                else:
                    w[:, col] = 0
        return lm
