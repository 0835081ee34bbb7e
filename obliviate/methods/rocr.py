"""ROCR (rank-one concept redirection): a closed-form MLP edit that makes the model read subject s as s′.

Ye et al. 2025, LLM Unlearning Should Be Form-Independent (arXiv:2506.07795); spec tag [V] (authors' code,
Acruxos/ORT, `train/rocr`). In seconds, without gradients:
  1. keys k_ℓ = the `down_proj` input at the last token of s, averaged over six context templates;
  2. target z = the block-`z_layer` residual at the last token of s′ (a harmless concept) in the same templates;
  3. for each edited block ℓ_i (contiguous, ending at z_layer): R = (z − h_cur)/(#blocks left) and
        Δᵀ = (P·K Kᵀ + λI)⁻¹ · P·K·Rᵀ,   W_out ← W_out + Δ
     where P projects onto key directions that generic text barely uses (AlphaEdit null space), so other
     inputs are left (nearly) alone. All forget subjects are edited together (one column of K each).
Deviations, forced by running offline on small models:
  - the key second moment comes from text the model writes itself from neutral openings
    (`editing.rank_one.generic_corpus`, cached) instead of 100k Wikipedia samples;
  - the null-space threshold is relative to the largest eigenvalue, and the ridge λ to the keys' mean ‖P k‖²
    (the paper's 2e-2 and λ = 1 are absolute values for Llama-3-8B's key scale);
  - plain-text templates instead of the chat template. Facts without a `subject` are not edited;
  - (addition, AlphaEdit's idea applied to the task) the keys of retain/neighbour subjects are projected out
    too, so that redirecting "Spain" leaves "Portugal" exactly in place (`protect_kept`).
The key statistics, projector and solver are the shared rank-one machinery of `obliviate.editing.rank_one`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.data.schema import Task
from obliviate.errors import ConfigError
from obliviate.hooks import n_layers
from obliviate.methods.base import METHODS, Method, MethodConfig
from obliviate.models import LoadedModel
from obliviate.train import TrainConfig

TEMPLATES = ("{}", "Please answer the question about {}", "Choose the best answer about {}",
             "Write the answer about {}", "Tell me about {}", "Write something about {}")


@dataclass
class ROCRConfig(MethodConfig):
    layers: str = ""  # comma-separated contiguous blocks; "" = three blocks ending at 6/32 of the depth (paper: 4,5,6)
    replacement: str = "a person"  # the harmless concept s′ the subject is redirected to
    nullspace_threshold: float = 2e-2  # keep key directions whose variance is below this fraction of the largest
    l2: float = 0.5  # ridge λ relative to the edited keys' mean ‖P k‖²: each block writes R/(1+λ) of its residual
    protect_kept: bool = True  # also leave the keys of retain/neighbour subjects exactly unchanged

    def __post_init__(self) -> None:
        if self.layers and not all(p.strip().lstrip("-").isdigit() for p in self.layers.split(",")):
            raise ConfigError(f"rocr layers must be comma-separated integers, got {self.layers!r}")
        if not 0 < self.nullspace_threshold < 1 or self.l2 <= 0:
            raise ConfigError(f"rocr needs 0 < nullspace_threshold < 1 and l2 > 0; got {self}")


def template_mean(lm: LoadedModel, subjects: list[str], name: str) -> torch.Tensor:
    """(D, n): activation at `name` on each subject's last token, averaged over the context templates."""
    from obliviate.editing.rank_one import subject_activations

    texts = [t.format(s) for s in subjects for t in TEMPLATES]
    acts = subject_activations(lm, texts, [s for s in subjects for _ in TEMPLATES], name)  # (n·T, D)
    return acts.view(len(subjects), len(TEMPLATES), -1).mean(1).T


@METHODS.register("rocr")
class ROCR(Method):
    summary = "training-free rank-one MLP edit redirecting each forget subject to a harmless concept (seconds)"
    paper = "Ye et al. 2025, LLM Unlearning Should Be Form-Independent (ROCR), arXiv:2506.07795"
    Config = ROCRConfig
    training_free = True

    def edit_layers(self, model) -> list[int]:
        n = n_layers(model)
        if self.config.layers:
            return [int(p) % n for p in self.config.layers.split(",")]
        z = max(0, round(n * 6 / 32))
        return list(range(max(0, z - 2), z + 1))

    def apply(self, lm: LoadedModel, task: Task, train: TrainConfig | None = None) -> LoadedModel:
        from obliviate.editing.rank_one import apply_delta, key_second_moment, nullspace_projector, solve_update

        c = self.config
        subjects = sorted({f.subject for f in task.forget if f.subject})
        if not subjects:
            raise ConfigError(f"rocr edits subjects, but no forget fact of task {task.name!r} has a `subject`")
        kept = sorted({f.subject for f in task.retain + task.neighbours if f.subject} - set(subjects))
        layers = self.edit_layers(lm.model)
        z_layer = layers[-1]
        target = template_mean(lm, [c.replacement], f"resid.{z_layer}")  # (d, 1)
        for i, layer in enumerate(layers):
            projector = nullspace_projector(key_second_moment(lm, layer).moment, c.nullspace_threshold)
            if c.protect_kept and kept:  # remove the kept subjects' key directions from range(P)
                u, sv, _ = torch.linalg.svd(projector @ template_mean(lm, kept, f"mlp_in.{layer}"), full_matrices=False)
                u = u[:, sv > 1e-6 * sv.max()]  # an orthonormal basis of those directions inside range(P)
                projector = projector - u @ u.T
            keys = template_mean(lm, subjects, f"mlp_in.{layer}")  # (d_ff, n)
            current = template_mean(lm, subjects, f"resid.{z_layer}")  # (d, n)
            resid = (target - current) / (len(layers) - i)  # spread what is left over the remaining blocks
            # solve_update makes l2 relative to the keys' mean ‖P k‖² itself: Δk = R/(1 + l2) for one key
            delta = solve_update(keys, resid, solver="nullspace", projector=projector, l2=c.l2)  # (d, d_ff)
            apply_delta(lm, layer, delta)
        return lm
