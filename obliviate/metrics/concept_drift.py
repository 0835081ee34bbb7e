"""Concept-vector drift: did unlearning change the weights that store the forgotten concepts? (section intrinsic)

ConceptVectors (Hong et al. 2024, arXiv:2406.11614; research/methods.md §14). The concept of a fact is its
answer's tokens (" Velmora"). In the ORIGINAL model (`original=`, the model before unlearning; the metric
does not apply without it) we locate, per forget fact, the `N_VECTORS` MLP value vectors (columns of a block's
`down_proj`) whose logit-lens projection promotes those tokens most, with the finder of the
`concept_ablation` method and its default count, so after that method the metric watches exactly the vectors
it ablated. Each vector is compared with the same column of the model under test:

- `cosine`: mean cosine similarity before vs after, in [-1, 1] (a zeroed vector counts as 0).
- `drift` = 1 - `cosine`, in [0, 2]: 0 = the vectors are untouched, 1 = orthogonal or erased.
- `relative_l2`: mean ||v_after - v_before|| / ||v_before||, >= 0.
- `top_token_jaccard`: mean Jaccard overlap of the top-k tokens of the two vectors' vocabulary projections
  (each through its own model's final norm and unembedding; k = min(200, V/10), the paper's 200 on real
  vocabularies), in [0, 1]; a zeroed vector promotes nothing and scores 0.

The same numbers on the retain answers' concept vectors (those not also found for a forget answer: people
share cities and employers) are the control, and `drift_above_retain` = forget
drift - retain drift says whether the forget concepts moved more than the rest (a method that rewrites every
weight drifts everywhere). Reading: forget answers no longer produced but drift ~ 0 means the parametric
knowledge is still there, suppressed rather than removed (what the paper finds for GA, NPO and DPO); drift
near 1 only for forget is erasure. No single direction (None): on forget, higher drift / lower cosine and
Jaccard mean more of the trace is gone; on retain, lower drift is better.
Cost: no forward pass; one d x d covariance and one d x d_ff product per layer on the original to locate the
vectors, then one V x d projection per compared vector (seconds on SmolLM2-135M).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from obliviate.concepts import VECTORS_PER_CONCEPT, concept_tokens, find_concept_vectors, projection_basis
from obliviate.data.schema import Fact
from obliviate.hooks import n_layers, value_vectors
from obliviate.metrics.base import METRICS, EvalContext, Metric
from obliviate.models import LoadedModel

N_VECTORS = VECTORS_PER_CONCEPT  # per fact, as many as concept_ablation removes
TOP_K = 200  # the paper's top tokens per projection; capped at V / 10 so small vocabularies still discriminate


def concept_locations(lm: LoadedModel, facts: list[Fact], n: int = N_VECTORS) -> list[tuple[int, int]]:
    """Distinct (layer, column) of the value vectors that promote the facts' answers in `lm`, in finding order."""
    found = find_concept_vectors(lm, [concept_tokens(lm, f.answer) for f in facts], n)
    return list(dict.fromkeys(loc for locs in found for loc in locs))


@torch.no_grad()
def vectors_at(lm: LoadedModel, locations: list[tuple[int, int]]) -> torch.Tensor:
    """(n, d): the value vectors at `locations` (layer, column of the MLP output weight)."""
    return torch.stack([value_vectors(lm.model, layer)[:, col].float().cpu() for layer, col in locations])


@torch.no_grad()
def _top_tokens(lm: LoadedModel, vectors: torch.Tensor, k: int) -> torch.Tensor:
    """(n, V) bool: the top-k tokens of each vector's vocabulary projection; none for a zero vector."""
    logits = vectors @ projection_basis(lm).cpu().T  # (n, V)
    mask = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, logits.topk(k, dim=1).indices, True)
    return mask & (vectors.norm(dim=1, keepdim=True) > 0)


def vector_drift(before: LoadedModel, after: LoadedModel, locations: list[tuple[int, int]]) -> dict[str, float]:
    """Cosine, drift, relative L2 and top-token Jaccard of the same value vectors in two models (means)."""
    vb, va = vectors_at(before, locations), vectors_at(after, locations)  # (n, d) each
    cosine = F.cosine_similarity(va, vb, dim=1)  # (n,); 0 when either is zero (eps-clamped norm)
    k = min(TOP_K, before.model.get_output_embeddings().weight.shape[0] // 10)
    tb, ta = _top_tokens(before, vb, k), _top_tokens(after, va, k)
    jaccard = (tb & ta).sum(1) / (tb | ta).sum(1).clamp(min=1)
    return {"cosine": float(cosine.mean()), "drift": float(1 - cosine.mean()),
            "relative_l2": float(((va - vb).norm(dim=1) / vb.norm(dim=1).clamp(min=1e-12)).mean()),
            "top_token_jaccard": float(jaccard.mean()), "n_vectors": len(locations)}


@METRICS.register("concept_drift")
class ConceptDrift(Metric):
    summary = "change of the MLP value vectors that promote the forget answers in the original (ConceptVectors)"
    section = "intrinsic"
    higher_is_better = None  # forget: higher drift = more of the trace gone; retain (control): lower is better
    cost = "no forward pass: locate vectors in the original (one d x d_ff product per layer), compare projections"

    def applies(self, ctx: EvalContext) -> bool:
        return ctx.original is not None and bool(ctx.facts("forget"))

    def compute(self, lm, ctx):
        if _mlp_shapes(lm) != _mlp_shapes(ctx.original):
            return {"skipped": "the original has another architecture: its value vectors have no counterpart here"}
        key = ("concept_locations", id(ctx.original.model))
        if key not in ctx.cache:
            forget = concept_locations(ctx.original, ctx.facts("forget"))
            retain = concept_locations(ctx.original, ctx.facts("retain")) if ctx.facts("retain") else []
            ctx.cache[key] = {"forget": forget, "retain": sorted(set(retain) - set(forget))}
        out = {split: vector_drift(ctx.original, lm, locs) for split, locs in ctx.cache[key].items() if locs}
        if "retain" in out:
            out["drift_above_retain"] = out["forget"]["drift"] - out["retain"]["drift"]
        return out


def _mlp_shapes(lm: LoadedModel) -> list[torch.Size]:
    return [value_vectors(lm.model, layer).shape for layer in range(n_layers(lm.model))]
