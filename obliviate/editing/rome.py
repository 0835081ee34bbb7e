"""ROME-style single edits and MEMIT-style batched edits of the MLP output weights.

One edit request is (subject, prompt templates with "{}" for the subject, new object). `edit(lm, requests)`:
  1. context prefixes: a few short texts the model writes itself (ROME's trick for keys that generalise);
  2. target: optimise a residual shift δ_i added at the subject's last token after block z = layers[-1] so that
     the new object becomes likely after every prefix + prompt (ROME's v* search, arXiv:2202.05262 §3.1):
        L(δ) = NLL(new | prefix + prompt) + kl_factor·KL(p₀ ‖ p_δ)("{subject} is a") + decay·‖δ‖²/‖h‖²
     with ‖δ‖ clamped to clamp_norm × ‖h‖ and, optionally, SADR's attention-drift term (`sadr.py`);
  3. update: for each edited layer ℓ in order (MEMIT's spreading, arXiv:2210.07229 Alg. 1), keys K at ℓ, the
     residual still missing at z, R = (z − h_z)/(layers left), and ΔW from `rank_one.solve_update`.
A single request at one layer with the "exact" solver is ROME; several requests or layers are MEMIT; a
`nullspace_threshold` switches to AlphaEdit's projected solve (shared with ROCR).

>>> from obliviate.models import tiny_model
>>> lm = tiny_model()
>>> req = EditRequest("Mara Quill", ("{} was born in",), "Paris")
>>> result = edit(lm, [req], EditConfig(layers=(0,), steps=3, n_prefixes=1, corpus=("Hello there.",) * 4))
>>> result.layers
(0,)
>>> result.undo()  # the weights are back to what they were
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

from obliviate.editing.rank_one import (
    NEUTRAL_OPENINGS,
    PRESERVE_SUBJECTS,
    KeyStats,
    apply_delta,
    down_proj,
    key_second_moment,
    mean_keys,
    mentions,
    nullspace_projector,
    preserved_moment,
    solve_update,
    subject_activations,
    subject_token_index,
)
from obliviate.editing.sadr import AttentionDriftRegulariser, SADRConfig, eager_attention
from obliviate.errors import ConfigError
from obliviate.hooks import hooks, n_layers, trainable_only
from obliviate.models import LoadedModel
from obliviate.progress import phase
from obliviate.scoring import forward_at, selective_log_softmax


@dataclass(frozen=True)
class EditRequest:
    """Make `subject` + relation answer `target_new`: prompts contain "{}" where the subject goes.

    >>> EditRequest("Mara Quill", ("{} was born in",), "Paris").texts()
    ['Mara Quill was born in']
    """

    subject: str
    prompts: tuple[str, ...]
    target_new: str
    target_true: str = ""

    def __post_init__(self) -> None:
        if not self.subject.strip() or not self.target_new.strip():
            raise ConfigError(f"an edit needs a subject and a new object; got {self}")
        if not self.prompts or any("{}" not in p for p in self.prompts):
            raise ConfigError(f"every edit prompt needs '{{}}' where the subject goes; got {self.prompts}")

    def texts(self, prefixes: tuple[str, ...] = ("",)) -> list[str]:
        return [f"{pre}{p.format(self.subject)}" for pre in prefixes for p in self.prompts]


@dataclass
class EditConfig:
    """Hyperparameters of one editing run (defaults tuned on SmolLM2-135M, see docs/editing.md)."""

    layers: tuple[int, ...] = ()  # edited blocks (contiguous, the last defines the target); () = default_layers
    span: int = 3  # with layers=(): this many blocks ending at block round(n/6) (MEMIT spreading; 1 = ROME)
    solver: str = "auto"  # "auto": exact (ROME) for 1 request at 1 layer, else batched (MEMIT); or nullspace
    steps: int = 25  # v* optimisation steps
    lr: float = 0.5
    kl_factor: float = 4.0  # essence KL; ROME's 0.0625 let the edit rewrite the whole subject (docs/editing.md)
    weight_decay: float = 0.5
    clamp_norm: float = 4.0  # ‖δ‖ ≤ clamp_norm · ‖h‖
    stop_nll: float = 0.05  # stop early once the mean NLL of the new object is below this
    n_prefixes: int = 2  # self-generated context prefixes (plus the empty one)
    prefix_tokens: int = 8
    cov_weight: float = 100.0  # λ of the batched (MEMIT) solver
    nullspace_threshold: float = 0.0  # > 0: AlphaEdit projected solve keeping generic keys' values
    l2: float = 0.1  # ridge of the nullspace solver, relative to ‖P k‖²
    corpus: tuple[str, ...] = ()  # generic text for C (default: self-generated, cached per model)
    corpus_file: str = ""  # or a UTF-8 file, one passage per line
    sadr: SADRConfig | None = None  # attention-drift regulariser (None = off)
    # > 0: C += preserve_weight · E[k kᵀ] of other subjects' keys in the edit's own prompts (docs/editing.md)
    preserve_weight: float = 1.0
    preserve_subjects: tuple[str, ...] = PRESERVE_SUBJECTS  # never the edited subjects (dropped if present)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.solver not in ("auto", "exact", "batched", "nullspace"):
            raise ConfigError(f"solver must be auto, exact, batched or nullspace; got {self.solver!r}")
        if self.steps < 1 or self.lr <= 0 or self.clamp_norm <= 0:
            raise ConfigError(f"need steps >= 1, lr > 0, clamp_norm > 0; got {self.steps}, {self.lr}, {self.clamp_norm}")
        if self.span < 1:
            raise ConfigError(f"span must be >= 1, got {self.span}")
        if self.preserve_weight < 0 or (self.preserve_weight > 0 and not self.preserve_subjects):
            raise ConfigError(f"preserve_weight must be >= 0 and needs preserve_subjects; got {self.preserve_weight}")
        layers = list(self.layers)
        if layers and layers != list(range(layers[0], layers[0] + len(layers))):
            raise ConfigError(f"edited layers must be contiguous and increasing, got {self.layers}")


@dataclass
class EditResult:
    """What an edit did: the layers, per-request final NLL, seconds, and how to undo it."""

    layers: tuple[int, ...]
    nll: list[float]
    seconds: float
    drift_share: list[float] = field(default_factory=list)  # SADR: share of cells flagged in the last step
    _saved: dict = field(default_factory=dict, repr=False)
    _lm: LoadedModel | None = field(default=None, repr=False)

    def undo(self) -> None:
        """Restore the edited weights (exactly)."""
        assert self._lm is not None
        with torch.no_grad():
            for layer, weight in self._saved.items():
                down_proj(self._lm, layer).weight.copy_(weight)


def preserved_subjects(config: EditConfig, requests: list[EditRequest]) -> list[str]:
    """The subjects whose keys the update protects: `config.preserve_subjects` minus any edited subject."""
    return [s for s in config.preserve_subjects if not any(mentions(r.subject, s) or mentions(s, r.subject)
                                                           for r in requests)]


def default_layers(lm: LoadedModel, span: int = 1) -> tuple[int, ...]:
    """`span` contiguous blocks ending at ~1/6 of the depth (block 5 of SmolLM2's 30), where ROME finds subject
    recall; the last one is where the v* target is set, the update is spread over all of them (MEMIT)."""
    last = max(0, round(n_layers(lm.model) / 6))
    return tuple(range(max(0, last - span + 1), last + 1))


@torch.no_grad()
def context_prefixes(lm: LoadedModel, n: int, tokens: int, seed: int = 0) -> tuple[str, ...]:
    """"" plus `n` short texts the model writes from neutral openings, each ending in ". " (ROME's templates)."""
    if n <= 0:
        return ("",)
    tok = lm.tokenizer
    tok.padding_side = "left"
    enc = tok(list(NEUTRAL_OPENINGS[:n]), return_tensors="pt", padding=True, add_special_tokens=False).to(lm.device)
    torch.manual_seed(seed)
    out = lm.model.generate(**enc, do_sample=True, top_k=5, max_new_tokens=tokens, pad_token_id=tok.pad_token_id)
    texts = tok.batch_decode(out, skip_special_tokens=True)
    cleaned = [" ".join(t.replace("{", "(").replace("}", ")").split()) for t in texts]
    return ("", *(t.rstrip(".") + ". " for t in cleaned))


def _target_batch(lm: LoadedModel, request: EditRequest, prefixes: tuple[str, ...]):
    """Rewrite rows (prefix + prompt + new object) and one essence row ("{subject} is a")."""
    texts = request.texts(prefixes)
    new_ids = lm.tokenizer(" " + request.target_new.strip(), add_special_tokens=False)["input_ids"]
    rows, subj, tgt = [], [], []
    for text in texts:
        ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
        rows.append(ids + new_ids)
        tgt.append((len(ids), len(ids) + len(new_ids)))
    essence = f"{request.subject} is a"
    rows.append(lm.tokenizer(essence, add_special_tokens=False)["input_ids"])
    subj = [subject_token_index(lm.tokenizer, t, request.subject) for t in [*texts, essence]]
    width = max(len(r) for r in rows)
    pad = lm.tokenizer.pad_token_id or 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attn = torch.zeros_like(ids)
    target = torch.zeros_like(ids, dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        attn[i, : len(r)] = 1
        if i < len(tgt):
            target[i, tgt[i][0] : tgt[i][1]] = True
    dev = lm.device
    return ids.to(dev), attn.to(dev), target.to(dev), torch.tensor(subj, device=dev), len(rows[-1]) - 1


def optimise_target(lm: LoadedModel, request: EditRequest, z_layer: int, prefixes: tuple[str, ...],
                    config: EditConfig) -> tuple[torch.Tensor, float, float]:
    """ROME's v* search at block `z_layer`: returns (z = h + δ averaged over rewrite rows (d,), NLL, drift share)."""
    use_sadr = config.sadr is not None and config.sadr.weight > 0
    # Only δ is trained: freezing the weights skips their gradients (about a third of the backward pass).
    with eager_attention(lm.model) if use_sadr else nullcontext(), trainable_only(lm.model, lambda _n: False):
        return _optimise(lm, request, z_layer, prefixes, config, use_sadr)


def _optimise(lm, request, z_layer, prefixes, config, use_sadr):
    ids, attn, target, subj, essence_last = _target_batch(lm, request, prefixes)
    model = lm.model
    rows = torch.arange(len(ids), device=ids.device)
    mask = torch.zeros(ids.shape, dtype=torch.bool, device=ids.device)
    mask[rows, subj] = True
    name = f"resid.{z_layer}"
    # Only the positions the loss reads are unembedded: those predicting the new object, and the essence's last.
    needed = torch.zeros_like(target)
    needed[:, :-1] = target[:, 1:]
    needed[-1, essence_last] = True
    labels = ids[:, 1:][target[:, 1:]]
    label_row = needed.nonzero()[:-1, 0]  # the rewrite row of each label
    n_rewrite = len(ids) - 1
    per_row = torch.bincount(label_row, minlength=n_rewrite).float()

    def forward():
        out = forward_at(model, needed, input_ids=ids, attention_mask=attn, output_attentions=use_sadr)
        return out, out.logits[0].float()

    with torch.no_grad():
        store: dict = {}
        with hooks(model, (name, lambda a, _n: store.__setitem__("h", a[rows, subj].float()))):
            base, base_logits = forward()
        h0 = store["h"]  # (B, d)
        essence_p0 = base_logits[-1].log_softmax(-1)
        reg = (AttentionDriftRegulariser(base.attentions, subj, attn, z_layer + 1, config.sadr)
               if use_sadr else None)
    delta = torch.zeros(h0.shape[1], device=ids.device, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=config.lr)
    max_norm = config.clamp_norm * h0[:-1].norm(dim=-1).mean()
    nll_value, share = float("inf"), 0.0

    def shift(act: torch.Tensor, _name: str) -> torch.Tensor:
        return act + mask.unsqueeze(-1) * delta.to(act.dtype)

    for _ in range(config.steps):
        with hooks(model, (name, shift)):
            out, logits = forward()
        lp = selective_log_softmax(logits[:-1], labels)  # one per new-object token, row-major
        nll = -(torch.zeros(n_rewrite, device=lp.device).index_add(0, label_row, lp) / per_row).mean()
        essence_p = logits[-1].log_softmax(-1)
        kl = torch.nn.functional.kl_div(essence_p, essence_p0, log_target=True, reduction="sum")
        decay = delta.norm() ** 2 / h0[:-1].norm(dim=-1).mean() ** 2
        loss = nll + config.kl_factor * kl + config.weight_decay * decay
        if reg is not None:
            drift, share = reg.loss(out.attentions)
            loss = loss + config.sadr.weight * drift
        nll_value = float(nll.detach())
        if nll_value < config.stop_nll:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            if delta.norm() > max_norm:
                delta.mul_(max_norm / delta.norm())
    z = (h0[:-1] + delta.detach()).mean(0)
    return z, nll_value, share


def edit(lm: LoadedModel, requests: list[EditRequest], config: EditConfig | None = None,
         stats: dict[int, KeyStats] | None = None) -> EditResult:
    """Apply all `requests` to `lm` in place (see the module docstring); `result.undo()` reverts them.

    Args:
        stats: precomputed key statistics per layer (else `key_second_moment`, cached on disk).

    Raises:
        ConfigError: on an empty request list, a subject missing from its prompt, or a bad layer.
    """
    config = config or EditConfig()
    if not requests:
        raise ConfigError("edit() needs at least one EditRequest")
    start = time.perf_counter()
    layers = tuple(config.layers) or default_layers(lm, config.span)
    n = n_layers(lm.model)
    if any(not 0 <= layer < n for layer in layers):
        raise ConfigError(f"edited layers {layers} are outside the model's 0..{n - 1}")
    if layers[-1] == n - 1:
        raise ConfigError(f"edited layers {layers} end at the last block: the subject's residual there reaches no "
                          f"later token, so no edit can change the answer; pick blocks below {n - 1}")
    solver = config.solver
    if solver == "auto":
        solver = "nullspace" if config.nullspace_threshold > 0 else (
            "exact" if len(requests) == 1 and len(layers) == 1 else "batched")
    prefixes = context_prefixes(lm, config.n_prefixes, config.prefix_tokens, config.seed)
    z_layer = layers[-1]
    targets, nlls, shares = [], [], []
    with phase("editing: target vector per subject", total=len(requests)) as step:
        for req in requests:
            z, nll, share = optimise_target(lm, req, z_layer, prefixes, config)
            targets.append(z)
            nlls.append(nll)
            shares.append(share)
            step(req.subject)
    z = torch.stack(targets, 1)  # (d, n)
    texts = [r.texts(prefixes) for r in requests]
    subjects = [r.subject for r in requests]
    saved = {layer: down_proj(lm, layer).weight.detach().clone() for layer in layers}
    corpus = list(config.corpus) if config.corpus else None
    for i, layer in enumerate(layers):
        st = (stats or {}).get(layer) or key_second_moment(lm, layer, corpus, config.corpus_file or None)
        moment = st.moment
        if config.preserve_weight > 0:
            prompts = sorted({p for r in requests for p in r.prompts})
            moment = moment + config.preserve_weight * preserved_moment(
                lm, layer, prompts, preserved_subjects(config, requests)).to(moment.device)
        keys = mean_keys(lm, layer, texts, subjects)  # (d_ff, n)
        flat = [t for ts in texts for t in ts]
        cur = subject_activations(lm, flat, [s for ts, s in zip(texts, subjects) for _ in ts], f"resid.{z_layer}")
        sizes = [len(ts) for ts in texts]
        cur = torch.stack([c.mean(0) for c in cur.split(sizes)], 1)  # (d, n)
        resid = (z - cur) / (len(layers) - i)
        projector = (nullspace_projector(moment, config.nullspace_threshold)
                     if solver == "nullspace" else None)
        delta = solve_update(keys, resid, moment, solver=solver, cov_weight=config.cov_weight,
                             projector=projector, l2=config.l2)
        apply_delta(lm, layer, delta)
    return EditResult(layers, nlls, time.perf_counter() - start, shares, saved, lm)
