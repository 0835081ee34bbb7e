"""The shared rank-one machinery: MLP keys, their second moment on generic text, the null-space projector and
the closed-form updates of ROME, MEMIT and AlphaEdit/ROCR.

Notation (all column vectors): W is a `mlp.down_proj` weight (d × d_ff); a *key* k is its input at one token
(d_ff), a *value* is W k (d). K (d_ff × n) holds one key per edit and R (d × n) the residual each edit still
needs (v* − W k). C = E[k kᵀ] is the uncentred key second moment over generic text.

- `exact` (ROME, Meng et al. 2022, arXiv:2202.05262, Eq. 2, generalised to n keys):
      Δ = R (Kᵀ C⁻¹ K)⁻¹ Kᵀ C⁻¹
  the smallest change in the C-metric with Δ K = R exactly; for n = 1 it is ROME's
  Δ = (v* − W k)(C⁻¹k)ᵀ / (kᵀ C⁻¹ k).
- `batched` (MEMIT, Meng et al. 2023, arXiv:2210.07229, Eq. 14): Δ = R Kᵀ (λ C + K Kᵀ + C_prev)⁻¹, a
  least-squares compromise between the new keys and the λ-weighted generic keys.
- `nullspace` (AlphaEdit, Fang et al. 2025, arXiv:2410.02355; ROCR's solver, spec [V]):
      Δᵀ = (P (K Kᵀ + C_prev) + l2·I)⁻¹ P K Rᵀ
  with P the projector onto key directions generic text barely uses (our l2 is relative, see `solve_update`). Every column of Δᵀ lies in range(P)
  (rearrange: l2·y = P(x − M y)), so Δ k₀ = 0 *exactly* for any k₀ with P k₀ = 0: preserved keys keep their
  values up to float error.

ROCR (`obliviate.methods.rocr`) solves the same `nullspace` system through `solve_update`; `l2` is relative
there already, so a caller passes it as is (scaling it by ‖P k‖² again made the written share of the residual
fall with the key norm: 1/(1 + l2·‖P k‖²) instead of 1/(1 + l2)).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from obliviate.errors import ConfigError
from obliviate.hooks import block_path, capture, run_until
from obliviate.models import LoadedModel, cache_dir
from obliviate.progress import phase
from obliviate.runs import read_json, write_json
from obliviate.scoring import encode_pairs

# Openings the model continues to build its own "generic corpus" (no Wikipedia offline; ROME's idea of
# self-generated context prefixes, applied to the covariance as well).
NEUTRAL_OPENINGS = (
    "The", "In the morning", "Once upon a time", "Today", "Scientists", "The history of", "A simple recipe",
    "My favourite", "The city", "When I was young", "The weather", "In many countries", "The report said",
    "Music", "The company", "Students", "A new study", "The river", "Yesterday", "The best way to",
    "People often", "The game", "In 1990,", "The museum", "Technology", "The teacher", "Football",
    "The old house", "Health experts", "The market", "Travel", "The book",
)


# Subjects whose keys an edit may protect (`EditConfig.preserve_weight`): well-known entities of many kinds that
# are deliberately *not* subjects, objects or prompt words of any builtin task (realfacts, people), so protecting
# them never touches what the editing benchmark measures; `tests/test_editing.py` checks the disjointness and
# `editing.metrics.evaluate_edits` refuses a preserved subject that occurs in a case's probes.
PRESERVE_SUBJECTS = (
    # countries (none of builtin:realfacts')
    "Brazil", "Chile", "Colombia", "Poland", "Turkey", "Iran", "Vietnam", "Indonesia", "Pakistan", "Ukraine",
    "Austria", "Belgium", "Denmark", "Finland", "Ireland", "Hungary", "Morocco", "Ghana", "Ethiopia", "Cuba",
    "New Zealand", "Venezuela", "Saudi Arabia", "Israel", "the Philippines", "Malaysia", "Iceland", "Romania",
    # cities
    "Chicago", "Toronto", "Sydney", "Istanbul", "Barcelona", "Venice", "Shanghai", "Mumbai", "Dubai", "Vienna",
    # people
    "Albert Einstein", "Isaac Newton", "Marie Curie", "Napoleon", "Mozart", "Beethoven", "Cleopatra",
    "Charles Darwin", "Galileo", "Abraham Lincoln",
    # elements, works, organisations, places, things
    "calcium", "zinc", "uranium", "sulfur", "neon", "chlorine", "magnesium",
    "Hamlet", "The Great Gatsby", "Dracula", "Jane Eyre", "The Last Supper", "The Night Watch",
    "Microsoft", "Toyota", "NASA", "the Sahara", "Mount Fuji", "the Amazon", "the Eiffel Tower",
    "the violin", "the elephant", "the tomato", "basketball",
)


def mentions(text: str, subject: str) -> bool:
    """Whether `subject` occurs in `text` as whole words (case-insensitive)."""
    return re.search(rf"(?<!\w){re.escape(subject)}(?!\w)", text, flags=re.IGNORECASE) is not None


def subject_token_index(tokenizer, text: str, subject: str) -> int:
    """Index of the last token of the *last* occurrence of `subject` in `text` (ROME's `subject_last`).

    Tokenises the text up to the end of the subject, so the index matches the full text's tokens whenever the
    subject ends on a token boundary (it does for words followed by a space or punctuation).
    """
    at = text.lower().rfind(subject.lower())
    if at < 0:
        raise ConfigError(f"subject {subject!r} does not occur in prompt {text!r}; put it (or '{{}}') in the prompt")
    return len(tokenizer(text[: at + len(subject)], add_special_tokens=False)["input_ids"]) - 1


def encode_with_positions(tokenizer, texts: list[str], subjects: list[str], device) -> tuple:
    """Right-padded batch of `texts` and each row's subject-last-token index: (EncodedPairs, (B,) long)."""
    batch = encode_pairs(tokenizer, texts, [""] * len(texts)).to(device)
    idx = torch.tensor([subject_token_index(tokenizer, t, s) for t, s in zip(texts, subjects)], device=device)
    return batch, idx


@torch.no_grad()
def subject_activations(lm: LoadedModel, texts: list[str], subjects: list[str], name: str) -> torch.Tensor:
    """Activation at hook point `name` (e.g. "mlp_in.5", "resid.5") at each row's subject token: (N, D) fp32."""
    batch, idx = encode_with_positions(lm.tokenizer, texts, subjects, lm.device)
    acts = run_until(lm.model, name, input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    return acts[torch.arange(len(texts), device=idx.device), idx].float()


def mean_keys(lm: LoadedModel, layer: int, texts_per_edit: list[list[str]], subjects: list[str]) -> torch.Tensor:
    """K (d_ff × n): the `down_proj` input at the subject's last token, averaged over each edit's texts."""
    flat = [t for texts in texts_per_edit for t in texts]
    subj = [s for texts, s in zip(texts_per_edit, subjects) for _ in texts]
    acts = subject_activations(lm, flat, subj, f"mlp_in.{layer}")  # (sum n_i, d_ff)
    out, start = [], 0
    for texts in texts_per_edit:
        out.append(acts[start : start + len(texts)].mean(0))
        start += len(texts)
    return torch.stack(out, 1)


def down_proj(lm: LoadedModel, layer: int) -> torch.nn.Module:
    """The MLP output projection W of block `layer`, named by `hooks.LAYOUTS` (Llama `mlp.down_proj`, GPT-2
    `mlp.c_proj`, Phi `mlp.fc2`, GPT-NeoX `mlp.dense_4h_to_h`...)."""
    return lm.model.get_submodule(block_path(lm.model, layer, "mlp_out"))


# ---- the generic corpus and key statistics -------------------------------------------------------------------

def _model_tag(lm: LoadedModel) -> str:
    """Cache key of a model: its source plus a fingerprint of its embedding (edits never touch it)."""
    emb = lm.model.get_input_embeddings().weight
    fp = f"{lm.source}|{tuple(emb.shape)}|{float(emb[:8].double().sum()):.6e}"
    return hashlib.sha256(fp.encode()).hexdigest()[:16]


@torch.no_grad()
def generic_corpus(lm: LoadedModel, n_texts: int = 96, max_new_tokens: int = 48, seed: int = 0,
                   use_cache: bool = True) -> list[str]:
    """Text the model writes itself from neutral openings (sampled, seeded): the offline stand-in for Wikipedia.

    Cached per model. This is corpus building, not scoring, so it samples with `model.generate` directly.
    """
    path = cache_dir() / "editing" / _model_tag(lm) / f"corpus-{n_texts}-{max_new_tokens}-{seed}.json"
    if use_cache and path.exists():
        return read_json(path)["texts"]
    tok = lm.tokenizer
    tok.padding_side = "left"
    openings = [NEUTRAL_OPENINGS[i % len(NEUTRAL_OPENINGS)] for i in range(n_texts)]
    torch.manual_seed(seed)
    texts: list[str] = []
    with phase("editing: generic corpus (once per model)", total=-(-n_texts // 16)) as step:
        for i in range(0, n_texts, 16):
            enc = tok(openings[i : i + 16], return_tensors="pt", padding=True, add_special_tokens=False).to(lm.device)
            out = lm.model.generate(**enc, do_sample=True, top_k=50, temperature=1.0, max_new_tokens=max_new_tokens,
                                    pad_token_id=tok.pad_token_id)
            texts += tok.batch_decode(out, skip_special_tokens=True)
            step()
    if use_cache:
        write_json(path, {"model": lm.source, "texts": texts})
    return texts


@dataclass
class KeyStats:
    """C = E[k kᵀ] (d_ff × d_ff, fp32) of one layer's MLP keys over `n_tokens` generic tokens."""

    layer: int
    moment: torch.Tensor
    n_tokens: int


@torch.no_grad()
def key_second_moment(lm: LoadedModel, layer: int, texts: list[str] | None = None, text_file: str | Path | None = None,
                      batch_size: int = 16, use_cache: bool = True) -> KeyStats:
    """Second moment of the `down_proj` inputs of block `layer` over every token of a generic corpus.

    The corpus is `texts`, else the lines of `text_file`, else `generic_corpus(lm)`. Cached per model, layer and
    corpus under the obliviate cache, so each layer is paid for once (a few seconds on CPU for SmolLM2).

    >>> from obliviate.models import tiny_model
    >>> st = key_second_moment(tiny_model(), 0, texts=["Hello there.", "Mara Quill was born."], use_cache=False)
    >>> st.moment.shape
    torch.Size([128, 128])
    """
    if texts is None and text_file is not None:
        path = Path(text_file)
        if not path.is_file():
            raise ConfigError(f"corpus file {text_file} does not exist; pass a UTF-8 text file, one passage per line")
        texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = texts if texts is not None else generic_corpus(lm, use_cache=use_cache)
    if not texts:
        raise ConfigError("the key-statistics corpus is empty; pass some generic text")
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]
    path = cache_dir() / "editing" / _model_tag(lm) / f"mom2-layer{layer}-{digest}.pt"
    if use_cache and path.exists():
        saved = torch.load(path, map_location=lm.device)
        return KeyStats(layer, saved["moment"], saved["n_tokens"])
    total, count = None, 0
    name = f"mlp_in.{layer}"
    with phase(f"editing: key statistics of block {layer} (once per model)", total=-(-len(texts) // batch_size)) as step:
        for i in range(0, len(texts), batch_size):
            chunk = texts[i : i + batch_size]
            batch = encode_pairs(lm.tokenizer, chunk, [""] * len(chunk)).to(lm.device)
            with capture(lm.model, name) as acts:
                lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
            k = acts[name][batch.attention_mask.bool()].double()  # (tokens, d_ff)
            total = k.T @ k if total is None else total + k.T @ k
            count += len(k)
            step()
    stats = KeyStats(layer, (total / count).float(), count)
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"moment": stats.moment.cpu(), "n_tokens": count}, path)
    return stats


@torch.no_grad()
def preserved_moment(lm: LoadedModel, layer: int, prompts: list[str], subjects: list[str],
                     batch_size: int = 64) -> torch.Tensor:
    """E[k kᵀ] (d_ff × d_ff) of the keys at each subject's last token in every prompt ("{}") × subject.

    Added to C with a weight (`EditConfig.preserve_weight`), it makes the update expensive along the keys other
    subjects have in the edit's own prompts, so their values (their answers to the same question) move less.
    """
    texts = [p.format(s) for p in prompts for s in subjects]
    subj = [s for _ in prompts for s in subjects]
    total = None
    for i in range(0, len(texts), batch_size):
        k = subject_activations(lm, texts[i : i + batch_size], subj[i : i + batch_size], f"mlp_in.{layer}").double()
        total = k.T @ k if total is None else total + k.T @ k
    return (total / len(texts)).float()


def nullspace_projector(moment: torch.Tensor, threshold: float = 2e-2) -> torch.Tensor:
    """P onto the eigen-directions of C whose eigenvalue is below `threshold` × the largest one (AlphaEdit).

    The paper's τ = 2e-2 is absolute for Llama-3-8B; we make it relative so one value suits any model. A key
    k₀ that generic text uses (P k₀ ≈ 0) is then left unchanged by a `nullspace` update.

    >>> p = nullspace_projector(torch.diag(torch.tensor([1.0, 1e-4, 1e-5])))
    >>> torch.allclose(p, torch.diag(torch.tensor([0.0, 1.0, 1.0])))
    True
    """
    if not 0 < threshold < 1:
        raise ConfigError(f"nullspace threshold must be in (0, 1), got {threshold}")
    values, vectors = torch.linalg.eigh(moment.double())
    small = vectors[:, values < threshold * values.max()]
    return (small @ small.T).to(moment.dtype)


def solve_update(keys: torch.Tensor, resid: torch.Tensor, moment: torch.Tensor | None = None, *,
                 solver: str = "exact", cov_weight: float = 1.0, projector: torch.Tensor | None = None,
                 prev: torch.Tensor | None = None, l2: float = 1.0, ridge: float = 1e-6) -> torch.Tensor:
    """ΔW (d × d_ff) for keys K (d_ff × n) and residuals R (d × n); see the module docstring for the solvers.

    Args:
        solver: "exact" (ROME), "batched" (MEMIT) or "nullspace" (AlphaEdit / ROCR; needs `projector`).
        cov_weight: λ on C in "batched".
        prev: Σ K Kᵀ of earlier edits (sequential editing keeps them in place), for "batched"/"nullspace".
        l2: the ridge of "nullspace", relative to the mean ‖P k‖² of the new keys (ROCR's l2 = 1 is absolute
            for Llama-3-8B; relative, one value suits any model: l2 = 0.1 reaches ~90 % of each residual).
        ridge: × the mean diagonal of C, regularises C⁻¹ in "exact".

    >>> k, r = torch.randn(8, 2), torch.randn(4, 2)
    >>> delta = solve_update(k, r, torch.eye(8))
    >>> torch.allclose(delta @ k, r, atol=1e-5)
    True
    """
    k, r = keys.double(), resid.double()
    d_ff = k.shape[0]
    eye = torch.eye(d_ff, dtype=k.dtype, device=k.device)
    prev = torch.zeros_like(eye) if prev is None else prev.double()
    if solver == "nullspace":
        if projector is None:
            raise ConfigError("solver 'nullspace' needs a projector (nullspace_projector(stats.moment))")
        p = projector.double()
        scale = (p @ k).square().sum(0).mean().clamp_min(1e-12)  # mean ‖P k‖²: makes l2 relative
        delta_t = torch.linalg.solve(p @ (k @ k.T + prev) + l2 * scale * eye, p @ k @ r.T)  # (d_ff, d)
        return delta_t.T.float()
    if moment is None:
        raise ConfigError(f"solver {solver!r} needs the key second moment (key_second_moment(lm, layer))")
    c = moment.double()
    if solver == "exact":
        c = c + ridge * c.diagonal().mean() * eye
        cinv_k = torch.linalg.solve(c, k)  # (d_ff, n)
        gram = k.T @ cinv_k  # (n, n)
        return (r @ torch.linalg.solve(gram, cinv_k.T)).float()
    if solver == "batched":
        a = cov_weight * c + prev + k @ k.T  # (d_ff, d_ff), symmetric
        return torch.linalg.solve(a, k @ r.T).T.float()
    raise ConfigError(f"unknown solver {solver!r}; choose exact, batched or nullspace")


@torch.no_grad()
def apply_delta(lm: LoadedModel, layer: int, delta: torch.Tensor) -> None:
    """W ← W + Δ for block `layer`'s MLP output weight (in place). Handles Conv1D (GPT-2) orientation."""
    weight = down_proj(lm, layer).weight
    if weight.shape == delta.shape:
        weight.add_(delta.to(device=weight.device, dtype=weight.dtype))
    elif weight.shape == delta.T.shape:
        weight.add_(delta.T.to(device=weight.device, dtype=weight.dtype))
    else:
        raise ConfigError(f"update of shape {tuple(delta.shape)} does not fit weight {tuple(weight.shape)}")
