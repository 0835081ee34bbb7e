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

from obliviate.data.schema import Task
from obliviate.errors import ConfigError
from obliviate.hooks import decoder_layers
from obliviate.methods.base import METHODS, Method, MethodConfig
from obliviate.models import LoadedModel


@torch.no_grad()
def value_vector_scores(lm: LoadedModel, token_ids: list[int]) -> torch.Tensor:
    """(n_layers, d_ff): mean z-score of `token_ids` in the logit-lens projection of every value vector."""
    unembed = lm.model.get_output_embeddings().weight.float()  # (V, d)
    norm = getattr(getattr(lm.model, "model", lm.model), "norm", None)
    gamma = norm.weight.float() if norm is not None and hasattr(norm, "weight") else torch.ones(unembed.shape[1])
    e = unembed * gamma  # (V, d): E·(γ ⊙ v) = (E γ)·v
    mean, cov = e.mean(0), torch.cov(e.T)  # (d,), (d, d)
    rows = e[token_ids]  # (n_tok, d)
    _, blocks = decoder_layers(lm.model)
    out = []
    for block in blocks:
        w = block.mlp.down_proj.weight.float()  # (d, d_ff): columns are value vectors
        std = (w * (cov @ w)).sum(0).clamp(min=1e-12).sqrt()  # (d_ff,) spread of each column's projection
        out.append(((rows @ w) - mean @ w).div(std).mean(0))
    return torch.stack(out)


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
        for fact in task.forget:
            ids = lm.tokenizer(" " + fact.answer.strip(), add_special_tokens=False)["input_ids"]
            scores = value_vector_scores(lm, ids)  # (n_layers, d_ff)
            for flat in scores.flatten().topk(c.n_vectors).indices.tolist():
                layer, col = divmod(flat, scores.shape[1])
                w = blocks[layer].mlp.down_proj.weight
                if c.noise:
                    w[:, col] += (c.noise * torch.randn(w.shape[0], generator=g)).to(w.device, w.dtype)
                else:
                    w[:, col] = 0
        return lm
