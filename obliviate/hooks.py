"""Scoped forward hooks by module path, the TransformerLens way, for Hugging Face decoder-only models.

Every hook point is a module path (`model.named_modules()` names) or a shorthand resolved by `resolve`:

    "embed"                -> the token embedding output
    "resid.5" / "layers.5" -> the output of decoder block 5 (0-based), i.e. HF `hidden_states[6]`
    "layers.5.mlp"         -> block 5's MLP output ("attn" for its self-attention)
    "mlp_in.5"             -> the input of block 5's `mlp.down_proj` (the MLP "keys", d_ff wide)
    "<any path>:in"        -> the *input* of that module instead of its output

Shorthands find the decoder-layer list wherever it sits, so they also work through PEFT and wrapper modules.
Where an architecture keeps its MLP, MLP output projection, attention and final norm is written once, in
`LAYOUTS` (Llama, Qwen2, Mistral, Gemma, OLMo, Phi, GPT-2, GPT-NeoX); any other `model_type` gets a one-line
`ConfigError` naming the supported ones as soon as a shorthand or a method needs those paths.

A hook function has one signature, `fn(activation, name) -> new activation or None`; returning None keeps the
activation (use it to read). `hooks(...)` removes every hook when the block ends, even after an exception;
a hook that outlives a block needs the explicit `add_hook`.

>>> from obliviate.models import tiny_model
>>> lm = tiny_model()
>>> ids = lm.tokenizer(["Mara Quill"], return_tensors="pt").input_ids
>>> with capture(lm.model, "resid.0", "mlp_in.1") as acts:
...     _ = lm.model(input_ids=ids)
>>> acts["resid.0"].shape[-1], acts["mlp_in.1"].shape[-1]
(64, 128)
>>> with add_vector(lm.model, "resid.0", torch.ones(64)):  # steer: h_0 <- h_0 + v at every position
...     steered = lm.model(input_ids=ids).logits
>>> h = run_until(lm.model, "resid.0", input_ids=ids)  # stop the forward pass early
>>> h.shape[-1]
64
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from obliviate.errors import ConfigError

HookFn = Callable[[torch.Tensor, str], "torch.Tensor | None"]

_LAYER_ALIAS = re.compile(r"^(?:resid|layers|blocks)\.(-?\d+)$")
_LAYER_SUB = re.compile(r"^(?:layers|blocks)\.(-?\d+)\.(.+)$")


@dataclass(frozen=True)
class Layout:
    """Where one architecture keeps its parts: paths inside a decoder block, and the final norm's path inside
    the module that holds the decoder-layer list."""

    mlp: str
    mlp_out: str  # the MLP's output projection; its input is the MLP "keys" (d_ff wide), its weight the values
    attn: str
    final_norm: str
    norm_offset: float = 0.0  # Gemma's RMSNorm multiplies by (1 + weight)


_LLAMA = Layout("mlp", "mlp.down_proj", "self_attn", "norm")
LAYOUTS: dict[str, Layout] = {  # config.model_type -> layout; each has a tiny random model in the unit tests
    "llama": _LLAMA,
    "qwen2": _LLAMA,
    "mistral": _LLAMA,
    "olmo": _LLAMA,
    "gemma": Layout("mlp", "mlp.down_proj", "self_attn", "norm", norm_offset=1.0),
    "phi": Layout("mlp", "mlp.fc2", "self_attn", "final_layernorm"),
    "gpt2": Layout("mlp", "mlp.c_proj", "attn", "ln_f"),
    "gpt_neox": Layout("mlp", "mlp.dense_4h_to_h", "attention", "final_layer_norm"),
}


def layout(model: nn.Module) -> Layout:
    """The `Layout` of `model` (also through PEFT, DDP and wrapper modules), or a ConfigError naming the
    supported architectures."""
    config = getattr(model, "config", None) or getattr(getattr(model, "module", None), "config", None)
    kind = getattr(config, "model_type", None)
    if kind not in LAYOUTS:
        raise ConfigError(f"architecture {kind!r} ({type(model).__name__}) is not supported by obliviate.hooks; "
                          f"supported: {', '.join(sorted(LAYOUTS))}")
    return LAYOUTS[kind]


def decoder_layers(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The path and ModuleList of the decoder blocks (`model.layers` in Llama, also under PEFT/wrappers)."""
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and name.split(".")[-1] in ("layers", "h", "blocks") and (
            n is None or len(module) == n
        ):
            return name, module
    raise ValueError(f"{type(model).__name__}: found no decoder-layer list (expected e.g. model.layers)")


def n_layers(model: nn.Module) -> int:
    return len(decoder_layers(model)[1])


def block_path(model: nn.Module, layer: int, part: str = "") -> str:
    """Module path of decoder block `layer` (negative counts from the end), or of its `part`: "mlp", "mlp_out"
    or "attn" in this architecture's names.

    >>> from obliviate.models import tiny_model
    >>> block_path(tiny_model().model, -1, "mlp_out")
    'model.layers.1.mlp.down_proj'
    """
    prefix, layers = decoder_layers(model)
    path = f"{prefix}.{layer % len(layers)}"
    if not part:
        return path
    if part not in ("mlp", "mlp_out", "attn"):
        raise ValueError(f"block part must be mlp, mlp_out or attn; got {part!r}")
    return f"{path}.{getattr(layout(model), part)}"


def mlp_out(model: nn.Module, layer: int) -> tuple[str, bool]:
    """(parameter name of block `layer`'s MLP output weight, whether it is stored d_ff × d as GPT-2's Conv1D)."""
    path = block_path(model, layer, "mlp_out")
    module = model.get_submodule(path)
    if not isinstance(getattr(module, "weight", None), nn.Parameter):
        raise ConfigError(f"{path} has no plain weight (a LoRA-wrapped or quantised layer?); "
                          "this needs the model's own MLP output weights")
    return f"{path}.weight", type(module).__name__ == "Conv1D"


def value_vectors(model: nn.Module, layer: int) -> torch.Tensor:
    """(d, d_ff) view of block `layer`'s MLP output weight: column j is value vector j (writes go through)."""
    name, transposed = mlp_out(model, layer)
    weight = model.get_parameter(name)
    return weight.T if transposed else weight


def final_norm_scale(model: nn.Module) -> torch.Tensor | None:
    """The per-dimension scale γ of the final norm (Gemma's 1 + weight), or None when it has none (OLMo)."""
    prefix, _ = decoder_layers(model)
    parent = model.get_submodule(prefix.rsplit(".", 1)[0]) if "." in prefix else model
    lay = layout(model)
    weight = getattr(parent.get_submodule(lay.final_norm), "weight", None)
    return None if weight is None else weight + lay.norm_offset


def resolve(model: nn.Module, name: str) -> tuple[str, bool]:
    """Map a hook name (shorthand or module path) to `(module path, hook the input?)`.

    >>> from obliviate.models import tiny_model
    >>> resolve(tiny_model().model, "layers.1.mlp")
    ('model.layers.1.mlp', False)
    >>> resolve(tiny_model().model, "mlp_in.-1")
    ('model.layers.1.mlp.down_proj', True)
    """
    on_input = name.endswith(":in")
    short = name[: -len(":in")] if on_input else name
    modules = dict(model.named_modules())
    if short == "embed":
        path = next((n for n, m in modules.items() if isinstance(m, nn.Embedding)), None)
        if path is None:
            raise ValueError("model has no nn.Embedding to hook as 'embed'")
        return path, on_input
    prefix, layers = None, None
    if (m := _LAYER_ALIAS.match(short)) or (m := _LAYER_SUB.match(short)) or short.startswith("mlp_in."):
        prefix, layers = decoder_layers(model)
    if short.startswith("mlp_in."):
        return block_path(model, int(short.split(".", 1)[1]), "mlp_out"), True
    if m := _LAYER_ALIAS.match(short):
        return f"{prefix}.{int(m.group(1)) % len(layers)}", on_input
    if m := _LAYER_SUB.match(short):
        layer, sub = int(m.group(1)), m.group(2)
        head, _, rest = sub.partition(".")
        path = block_path(model, layer, head) if head in ("mlp", "attn") else f"{prefix}.{layer % len(layers)}.{head}"
        path = f"{path}.{rest}" if rest else path
        if path in modules:
            return path, on_input
    if short in modules:
        return short, on_input
    raise ValueError(
        f"no module {name!r} in {type(model).__name__}; use a module path (see model.named_modules()) or a "
        "shorthand: embed, resid.L, layers.L.mlp, layers.L.attn, mlp_in.L, <path>:in"
    )


def _targets(model: nn.Module, target) -> list[tuple[str, str, bool]]:
    """(label passed to fn, module path, on_input) for a name or a predicate over module paths."""
    if callable(target):
        return [(n, n, False) for n, _ in model.named_modules() if n and target(n)]
    path, on_input = resolve(model, target)
    return [(target, path, on_input)]


def _replace(value, new: torch.Tensor):
    """Put `new` where the main tensor of a module's output/input was (tensor, or first item of a tuple)."""
    if isinstance(value, tuple):
        return (new, *value[1:])
    return new


def _main(value) -> torch.Tensor:
    return value[0] if isinstance(value, tuple) else value


def add_hook(model: nn.Module, target, fn: HookFn) -> list[torch.utils.hooks.RemovableHandle]:
    """Attach `fn` permanently (until you call `.remove()` on every returned handle). Prefer `hooks(...)`."""
    handles = []
    for label, path, on_input in _targets(model, target):
        module = model.get_submodule(path)
        if on_input:
            def pre(_module, args, label=label):
                new = fn(_main(args), label)
                return None if new is None else _replace(args, new)
            handles.append(module.register_forward_pre_hook(pre))
        else:
            def post(_module, _args, output, label=label):
                new = fn(_main(output), label)
                return None if new is None else _replace(output, new)
            handles.append(module.register_forward_hook(post))
    if not handles:
        raise ValueError(f"hook target {target!r} matched no module")
    return handles


@contextmanager
def hooks(model: nn.Module, *pairs: tuple) -> Iterator[None]:
    """Attach `(name or predicate, fn)` pairs for the duration of the block; always removes them.

    >>> from obliviate.models import tiny_model
    >>> lm = tiny_model()
    >>> seen = []
    >>> with hooks(lm.model, ("layers.0.mlp", lambda a, name: seen.append(name))):
    ...     _ = lm.model(input_ids=torch.tensor([[5, 6]]))
    >>> seen
    ['layers.0.mlp']
    """
    handles: list = []
    try:
        for target, fn in pairs:
            handles.extend(add_hook(model, target, fn))
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def capture(model: nn.Module, *names: str, detach: bool = True) -> Iterator[dict[str, torch.Tensor]]:
    """Record the activation at each name during the block: a dict name -> tensor of the LAST forward call.

    `detach=False` keeps the graph, so a loss on the captured activation trains the model (RMU does this).
    """
    store: dict[str, torch.Tensor] = {}

    def keep(act: torch.Tensor, name: str) -> None:
        store[name] = act.detach() if detach else act

    with hooks(model, *((n, keep) for n in names)):
        yield store


@contextmanager
def add_vector(model: nn.Module, name: str, vector: torch.Tensor, mask: torch.Tensor | None = None,
               scale: float = 1.0) -> Iterator[None]:
    """Add `scale * vector` to the activation at `name` during the block (steering, perturbation, LAT/LAU).

    `vector` is (H,) (same shift everywhere) or (B, T, H) (a per-token delta, may require grad). `mask` (B, T)
    limits the shift to chosen positions; it applies to forward passes of that shape only, so during cached
    generation (one new position per call) a masked shift is skipped while an unmasked one applies to every
    new token.
    """

    def shift(act: torch.Tensor, _name: str) -> torch.Tensor | None:
        delta = scale * vector.to(act.dtype)
        if mask is None:
            if delta.dim() == 3 and delta.shape[:2] != act.shape[:2]:
                return None
            return act + delta
        if mask.shape != act.shape[:2]:
            return None
        return act + delta * mask.unsqueeze(-1).to(act.dtype)

    with hooks(model, (name, shift)):
        yield


class _Stop(Exception):
    pass


def run_until(model: nn.Module, name: str, **inputs) -> torch.Tensor:
    """Run the forward pass only until `name` and return its activation (with its graph, for losses).

    Saves the cost of the blocks after the hook point (RMU/LAT read layer L of a 30-layer model). A
    DistributedDataParallel model runs its whole forward pass instead: DDP prepares the gradient all-reduce at the
    end of its forward, so a pass cut short would leave every process with its own gradients.
    """
    if isinstance(model, nn.parallel.DistributedDataParallel):
        with capture(model, name, detach=False) as acts:
            model(**inputs)
        return acts[name]
    store: dict[str, torch.Tensor] = {}

    def stop(act: torch.Tensor, _name: str) -> None:
        store["act"] = act
        raise _Stop

    with hooks(model, (name, stop)):
        try:
            model(**inputs)
        except _Stop:
            pass
    if "act" not in store:
        raise ValueError(f"hook point {name!r} was not reached by the forward pass")
    return store["act"]


@contextmanager
def trainable_only(model: nn.Module, keep: Callable[[str], bool]) -> Iterator[None]:
    """During the block, only parameters whose name satisfies `keep` (and that were trainable) take gradients.

    Use it around a method's forward pass: parameters left out of the graph get no `.grad`, so AdamW skips
    them, and their `requires_grad` flags are restored afterwards (later training is unaffected). Not for a
    training loss: DDP buckets the parameters when it wraps the model, so a method declares what it trains with
    `Objective.trainable` instead (the editing value search and the suffix attack use this).
    """
    frozen = [p for n, p in model.named_parameters() if p.requires_grad and not keep(n)]
    try:
        for p in frozen:
            p.requires_grad_(False)
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)
