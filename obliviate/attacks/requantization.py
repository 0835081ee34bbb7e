"""Re-quantization: quantize the unlearned weights, then ask again.

Gradient unlearning with a small learning rate moves weights by less than a quantization step, so rounding
them can land back on the original grid point and restore the forgotten answers ("Catastrophic Failure of LLM
Unlearning via Quantization", Zhang et al., arXiv 2410.16454). We round every linear weight to a symmetric
absmax grid and run in fp32 (simulated weight quantization: the same weights a quantized deployment holds,
minus activation rounding). A variant is `int<bits>` (one scale per output row) or `int<bits>_g<size>` (one
scale per group of `size` input weights, as GPTQ / AWQ 4-bit checkpoints store them), or `nf4` / `nf4_g<block>`
(bitsandbytes' 4-bit NormalFloat, block 64 by default: what `load_in_4bit` deployments hold; simulated here, so
it runs on a CPU). The defaults are int8 per row, int4 in groups of 32, 64 and 128, and nf4 in blocks of 64: per-row int4 breaks SmolLM2-135M outright (the original forgets
too), while the taught SmolLM2 in grouped int4 still answers 8-9 of its 9 known forget facts, and the rounding
can take a small unlearning update away (measured: 3 of the 6 facts weak GA hid came back). `int8_dynamic` runs
torch's real dynamic int8 kernels instead; on our 2-core CPU that took minutes per model, so it is opt-in.
"""

from __future__ import annotations

import copy
import re

import torch
from torch import nn

from obliviate.attacks.base import ATTACKS, Attack, AttackContext, AttackResult, Outcome, judge_groups
from obliviate.data.forms import direct_probes
from obliviate.errors import ConfigError
from obliviate.models import LoadedModel

VARIANT = re.compile(r"(?:int([2-8])|nf4)(?:_g(\d+))?")
DEFAULT_VARIANTS = ("int8", "int4_g32", "int4_g64", "int4_g128", "nf4_g64")
NF4_OFFSET = 0.9677083  # QLoRA's choice: the outermost quantile used, so that +-1 are reachable but not extreme


def nf4_levels() -> torch.Tensor:
    """The 16 NormalFloat-4 levels of QLoRA (Dettmers et al., arXiv 2305.14314, Sec. 3): quantiles of N(0, 1) at
    evenly spaced probabilities, 8 on the positive side and 7 on the negative, plus an exact zero, scaled to
    [-1, 1]. Computed from that definition (torch's inverse normal CDF), not copied from a table."""
    positive = torch.special.ndtri(torch.linspace(NF4_OFFSET, 0.5, 9, dtype=torch.float64)[:-1])
    negative = -torch.special.ndtri(torch.linspace(NF4_OFFSET, 0.5, 8, dtype=torch.float64)[:-1])
    levels = torch.cat([positive, torch.zeros(1, dtype=torch.float64), negative]).sort().values
    return (levels / levels.abs().max()).float()


@torch.no_grad()
def _int8_linear(linear: nn.Linear) -> nn.Module:
    """torch's dynamically quantized linear (int8 weights, activations quantized on the fly), per-channel scales."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    w = linear.weight.detach().float().cpu()
    scale = (w.abs().amax(dim=1) / 127).clamp_min(1e-8).double()
    qweight = torch.quantize_per_channel(w, scale, torch.zeros(len(scale), dtype=torch.long), 0, torch.qint8)
    out = DynamicLinear(linear.in_features, linear.out_features, dtype=torch.qint8)
    out.set_weight_bias(qweight, None if linear.bias is None else linear.bias.detach().float().cpu())
    return out


def int8_dynamic(lm: LoadedModel) -> LoadedModel:
    """A CPU copy with every nn.Linear replaced by torch's dynamic int8 linear (fbgemm/x86 kernels).

    Built module by module rather than with `quantize_dynamic`, whose observers took minutes on SmolLM2 here
    (same kernels, same int8 weights; per-channel symmetric scales, as torch's per-channel dynamic qconfig).
    """
    model = copy.deepcopy(lm.model).cpu().eval()
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, _int8_linear(child))
    return LoadedModel(model, lm.tokenizer, f"{lm.source}+int8")


@torch.no_grad()
def fake_quantize(lm: LoadedModel, bits: int = 4, group: int | None = None) -> LoadedModel:
    """A copy whose linear weights are rounded to `bits`-bit symmetric absmax grids: one scale per output row,
    or per `group` consecutive input weights of a row (the last group of a row may be shorter)."""
    model = copy.deepcopy(lm.model).eval()
    levels = 2 ** (bits - 1) - 1
    for module in model.modules():
        if isinstance(module, nn.Linear):
            w = module.weight
            rows, cols = w.shape
            size = min(group or cols, cols)
            padded = nn.functional.pad(w, (0, -cols % size)).view(rows, -1, size)  # zero padding never sets a scale
            scale = padded.abs().amax(-1, keepdim=True).clamp_min(1e-8) / levels
            w.copy_(((padded / scale).round().clamp(-levels, levels) * scale).view(rows, -1)[:, :cols])
    return LoadedModel(model, lm.tokenizer, f"{lm.source}+int{bits}" + (f"_g{group}" if group else ""))


@torch.no_grad()
def nf4_quantize(lm: LoadedModel, block: int = 64) -> LoadedModel:
    """A copy whose linear weights are rounded as bitsandbytes' 4-bit NF4 stores them: per block of `block`
    consecutive weights of a row (bitsandbytes blocks the flattened tensor; for rows that are a multiple of 64
    long, as in SmolLM2, the blocks are the same), scale = the block's absmax, each weight / scale rounded to the
    nearest NF4 level. The absmax itself is kept in fp32 (bitsandbytes' double quantization rounds it once more).
    The output layer stays as it is, as transformers' `load_in_4bit` leaves it."""
    model = copy.deepcopy(lm.model).eval()
    output = model.get_output_embeddings()
    for module in model.modules():
        if isinstance(module, nn.Linear) and module is not output:
            w = module.weight
            levels = nf4_levels().to(w.device, w.dtype)
            rows, cols = w.shape
            size = min(block, cols)
            padded = nn.functional.pad(w, (0, -cols % size)).view(rows, -1, size)
            scale = padded.abs().amax(-1, keepdim=True).clamp_min(1e-8)
            nearest = torch.bucketize((padded / scale).contiguous(), (levels[1:] + levels[:-1]) / 2)  # sorted levels
            w.copy_((levels[nearest] * scale).view(rows, -1)[:, :cols])
    return LoadedModel(model, lm.tokenizer, f"{lm.source}+nf4_g{block}")


def quantized(lm: LoadedModel, variant: str) -> LoadedModel:
    """The model under one variant name (see the module docstring)."""
    if variant == "int8_dynamic":
        return int8_dynamic(lm)
    bits, group = VARIANT.fullmatch(variant).groups()
    if variant.startswith("nf4"):
        return nf4_quantize(lm, int(group) if group else 64)
    return fake_quantize(lm, int(bits), int(group) if group else None)


@ATTACKS.register("requantization")
class Requantization(Attack):
    name = "requantization"
    summary = ("round the weights to int8 / grouped int4 / NF4 grids (or torch int8 dynamic) and ask the direct "
               "questions again")
    paper = "Catastrophic Failure of LLM Unlearning via Quantization (Zhang et al., arXiv 2410.16454)"

    def __init__(self, variants: tuple[str, ...] = DEFAULT_VARIANTS) -> None:
        super().__init__()
        unknown = [v for v in variants if v != "int8_dynamic" and not VARIANT.fullmatch(v)]
        if unknown:
            raise ConfigError(f"requantization: unknown variant(s) {unknown}; use int<bits> or int<bits>_g<group> "
                              "(bits 2-8, e.g. int8, int4_g64), nf4 / nf4_g<block> or int8_dynamic")
        self.variants = tuple(variants)

    def run(self, lm: LoadedModel, ctx: AttackContext) -> AttackResult:
        """Recovered if any quantized variant answers the fact asked directly (QA, chat, cloze; score_probes)."""
        groups = [direct_probes(f, lm.tokenizer) for f in ctx.targets]
        best: list[Outcome] | None = None
        rates, skipped = {}, []
        for variant in self.variants:
            if rates and self.out_of_time(ctx):  # the first variant always runs
                skipped.append(variant)
                continue
            rounded = quantized(lm, variant)
            outcomes = judge_groups(rounded, ctx.targets, groups)
            del rounded
            rates[variant] = sum(o.recovered for o in outcomes) / len(outcomes) if outcomes else 0.0
            best = outcomes if best is None else [b if b.recovered else o for b, o in zip(best, outcomes)]
        notes = f"skipped {', '.join(skipped)} (time budget)" if skipped else ""
        if best is None:
            best = [Outcome(f.id, False) for f in ctx.targets]
        return self.result(ctx, best, notes, per_variant=rates)
