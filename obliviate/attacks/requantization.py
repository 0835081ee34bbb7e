"""Re-quantization: quantize the unlearned weights, then ask again.

Gradient unlearning with a small learning rate moves weights by less than a quantization step, so rounding
them can land back on the original grid point and restore the forgotten answers ("Catastrophic Failure of LLM
Unlearning via Quantization", Zhang et al., arXiv 2410.16454). We try int8 dynamic quantization (torch, CPU:
what a deployer would actually run) and, as a second variant, simulated 4-bit per-channel rounding of every
linear weight (where the paper found most recovery).
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from obliviate.attacks.base import ATTACKS, Attack, AttackContext, AttackResult, Outcome, judge_groups
from obliviate.data.forms import probes
from obliviate.models import LoadedModel

VARIANTS = ("int8_dynamic", "int4_simulated")


def int8_dynamic(lm: LoadedModel) -> LoadedModel:
    """A CPU copy with every nn.Linear replaced by torch's dynamically quantized int8 linear."""
    model = copy.deepcopy(lm.model).cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        quantized = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    return LoadedModel(quantized, lm.tokenizer, f"{lm.source}+int8")


@torch.no_grad()
def fake_quantize(lm: LoadedModel, bits: int = 4) -> LoadedModel:
    """A copy whose linear weights are rounded to `bits`-bit symmetric per-output-channel grids (absmax scale)."""
    model = copy.deepcopy(lm.model).eval()
    levels = 2 ** (bits - 1) - 1
    for module in model.modules():
        if isinstance(module, nn.Linear):
            w = module.weight
            scale = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-8) / levels  # (out, 1)
            w.copy_((w / scale).round().clamp(-levels, levels) * scale)
    return LoadedModel(model, lm.tokenizer, f"{lm.source}+int{bits}")


@ATTACKS.register("requantization")
class Requantization(Attack):
    name = "requantization"
    summary = "quantize the weights (int8 dynamic, simulated int4) and ask the QA questions again"
    paper = "Catastrophic Failure of LLM Unlearning via Quantization (Zhang et al., arXiv 2410.16454)"

    def run(self, lm: LoadedModel, ctx: AttackContext) -> AttackResult:
        """Recovered if any quantized variant answers the QA question (judged by score_probes)."""
        groups = [probes(f, "qa") for f in ctx.targets]
        best: list[Outcome] | None = None
        rates, skipped = {}, []
        for variant in VARIANTS:
            if self.out_of_time(ctx):
                skipped.append(variant)
                continue
            quantized = int8_dynamic(lm) if variant == "int8_dynamic" else fake_quantize(lm, 4)
            outcomes = judge_groups(quantized, ctx.targets, groups)
            del quantized
            rates[variant] = sum(o.recovered for o in outcomes) / len(outcomes) if outcomes else 0.0
            best = outcomes if best is None else [b if b.recovered else o for b, o in zip(best, outcomes)]
        notes = f"skipped {', '.join(skipped)} (time budget)" if skipped else ""
        if best is None:
            best = [Outcome(f.id, False) for f in ctx.targets]
        return self.result(ctx, best, notes, per_variant=rates)
