"""IdkPO: DPO with an "I don't know"-style refusal as the preferred answer and the true answer as rejected.

Follows the TOFU recipe (Maini et al. 2024, arXiv:2401.06121, the "preference optimisation" baseline; the DPO
loss is Rafailov et al. 2023, arXiv:2305.18290, Eq. 7):
    L = -log σ(β·[log π(y_idk|x)/π_ref(y_idk|x) − log π(y_f|x)/π_ref(y_f|x)]) + λ·CE(retain).
The rejected side's reference log-probs are the ones train.py caches once; the refusals' come from the frozen
reference the first time each (prompt, refusal) pair is seen and are cached here too, so the reference model
runs once per distinct forget prompt, not once per step. The cache belongs to one run (emptied by `setup`): the
same token ids under another reference model have another log-prob.
Deviation: TOFU samples from ~100 refusal templates; we use 8 short ones, one fixed per prompt (`_common.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.errors import ConfigError
from obliviate.methods._common import pairs_logprob, refusal_pairs, tokenizer_of
from obliviate.methods.base import METHODS, Method, MethodConfig, sequence_logprob, target_nll


@dataclass
class IdkPOConfig(MethodConfig):
    beta: float = 0.1  # DPO inverse temperature
    retain_weight: float = 1.0  # weight of the retain CE term (0 = plain IdkPO)

    def __post_init__(self) -> None:
        if self.beta <= 0:
            raise ConfigError(f"idkpo beta must be > 0, got {self.beta}")


@METHODS.register("idkpo")
class IdkPO(Method):
    summary = "DPO preferring an 'I don't know' refusal over the forget answer (+ retain CE)"
    paper = ("Maini et al. 2024, TOFU, arXiv:2401.06121 (IdkPO); Rafailov et al. 2023, "
             "Direct Preference Optimization, arXiv:2305.18290")
    Config = IdkPOConfig
    needs_retain = True
    needs_reference_logprobs = True
    needs_reference_model = True
    default_steps = 20
    default_lr = 2e-5

    def __init__(self, config=None, **overrides) -> None:
        super().__init__(config, **overrides)
        self._ref_cache: dict[tuple[int, ...], float] = {}  # refusal pair ids -> reference log-prob, this run's

    def setup(self, ctx, first) -> None:
        self._ref_cache = {}  # a new run may have another reference model: nothing cached may carry over

    def _reference_logprob(self, ctx, idk) -> torch.Tensor:
        keys = [tuple(row[m.bool()].tolist()) for row, m in zip(idk.input_ids, idk.attention_mask)]
        missing = [i for i, k in enumerate(keys) if k not in self._ref_cache]
        if missing:
            logits = ctx.reference_target_logits(idk)
            for i, lp in zip(missing, pairs_logprob(logits, idk)[missing].tolist()):
                self._ref_cache[keys[i]] = lp
        return torch.tensor([self._ref_cache[k] for k in keys], device=idk.input_ids.device)

    def loss(self, ctx, batch):
        c = self.config
        idk = refusal_pairs(tokenizer_of(ctx), batch.forget)
        chosen = sequence_logprob(ctx.model, idk) - self._reference_logprob(ctx, idk)  # (B,)
        rejected = sequence_logprob(ctx.model, batch.forget) - batch.forget_ref_logprob  # (B,)
        loss = -torch.nn.functional.logsigmoid(c.beta * (chosen - rejected)).mean()
        logs = {"dpo": loss.item(), "chosen_ratio": chosen.mean().item(), "rejected_ratio": rejected.mean().item()}
        if c.retain_weight and batch.retain is not None:
            retain = target_nll(ctx.model, batch.retain)
            loss = loss + c.retain_weight * retain
            logs["retain_nll"] = retain.item()
        return loss, logs
