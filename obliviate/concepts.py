"""MLP value vectors that encode a concept: found by their logit-lens projection onto the concept's tokens.

A value vector is a column v = W_out[:, j] of a block's `down_proj`; E·(γ ⊙ v) (E the unembedding, γ the final
norm's weight) says which tokens it promotes (ConceptVectors, Hong et al. 2024, arXiv:2406.11614). Shared by the
`concept_ablation` method (which switches them off) and the `concept_drift` metric (which watches them change).
"""

from __future__ import annotations

import torch

from obliviate.data.forms import target
from obliviate.hooks import final_norm_scale, n_layers, value_vectors
from obliviate.models import LoadedModel

VECTORS_PER_CONCEPT = 16  # value vectors per concept (ablated / watched); SmolLM2 real facts: 8 remove nothing


@torch.no_grad()
def projection_basis(lm: LoadedModel) -> torch.Tensor:
    """(V, d): E ⊙ γ, so that the logit-lens projection of a value vector v is E·(γ ⊙ v) = basis @ v."""
    unembed = lm.model.get_output_embeddings().weight.float()  # (V, d)
    gamma = final_norm_scale(lm.model)
    return unembed if gamma is None else unembed * gamma.float()


@torch.no_grad()
def value_vector_scores(lm: LoadedModel, concepts: list[list[int]]) -> torch.Tensor:
    """(n_concepts, n_layers, d_ff): mean z-score of each concept's token ids in the logit-lens projection of
    every value vector. The per-column spread is computed once and shared by all concepts."""
    e = projection_basis(lm)  # (V, d)
    mean, cov = e.mean(0), torch.cov(e.T)  # (d,), (d, d)
    rows = torch.stack([e[ids].mean(0) for ids in concepts])  # (n_concepts, d): mean over a concept's tokens
    out = []
    for layer in range(n_layers(lm.model)):
        w = value_vectors(lm.model, layer).float()  # (d, d_ff): columns are value vectors
        std = (w * (cov @ w)).sum(0).clamp(min=1e-12).sqrt()  # (d_ff,) spread of each column's projection
        out.append(((rows @ w) - mean @ w).div(std))  # (n_concepts, d_ff)
    return torch.stack(out, 1)


def find_concept_vectors(lm: LoadedModel, concepts: list[list[int]], n: int) -> list[list[tuple[int, int]]]:
    """For each concept (a list of token ids), the (layer, column) of the `n` value vectors that promote it most.

    Shared by the `concept_ablation` method (which ablates them) and the `concept_drift` metric (which watches them).
    """
    scores = value_vector_scores(lm, concepts)  # (n_concepts, n_layers, d_ff)
    d_ff = scores.shape[2]
    return [[divmod(flat, d_ff) for flat in s.flatten().topk(n).indices.tolist()] for s in scores]


def concept_tokens(lm: LoadedModel, answer: str) -> list[int]:
    """The token ids of an answer as it follows a prompt (with its leading space): the concept we look for."""
    return lm.tokenizer(target(answer), add_special_tokens=False)["input_ids"]
