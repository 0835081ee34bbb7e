"""TRU (targeted reasoning unlearning): teach a reasoning trace + explanatory refusal while GradDiff erases.

Liao et al. 2026, Explainable LLM Unlearning Through Reasoning (ICLR 2026, arXiv:2603.09980), spec tag [S]:
    L = −(1/N) Σ [log π(r|x) + log π(s|x, r)] + α·GradDiff(D_f, D_r)
with r a reasoning trace that recognises the query as in scope and s an explanatory refusal. Since
log π(r|x) + log π(s|x,r) = log π(r s|x), the target term is the CE of the concatenation.
The paper's traces come from a strong reasoning LLM (offline, C4). We take them from `targets_file` (JSONL of
{"question", "reasoning", "refusal"}, matched on the question, ignoring case and spacing) and otherwise use one
template trace, which is this implementation's deviation: the template says nothing question-specific. How
many forget prompts matched is warned about when not all do, recorded in the run config (`method_notes`),
and a file that matches none is an error.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from obliviate.data.forms import qa_prompt
from obliviate.errors import ConfigError
from obliviate.methods._common import tokenizer_of, with_targets
from obliviate.methods.base import METHODS, Method, MethodConfig, target_nll

REASONING = (" This question asks for a detail about someone or something I have been asked to forget,"
             " so I should not answer it from memory.")
REFUSAL = " I can't share that, but I'm happy to help with other questions."


@dataclass
class TRUConfig(MethodConfig):
    alpha: float = 0.5  # weight of the GradDiff term against the reasoning-target CE
    retain_weight: float = 1.0  # retain CE inside the GradDiff term
    targets_file: str = ""  # JSONL of {"question", "reasoning", "refusal"}; empty = the template trace

    def __post_init__(self) -> None:
        if self.alpha < 0:
            raise ConfigError(f"tru alpha must be >= 0, got {self.alpha}")
        if self.targets_file and not Path(self.targets_file).exists():
            raise ConfigError(f"tru targets_file {self.targets_file!r} does not exist")


@METHODS.register("tru")
class TRU(Method):
    summary = "CE on reasoning-trace + refusal targets for forget questions, plus GradDiff (ascent + retain CE)"
    paper = "Liao et al. 2026, Explainable LLM Unlearning Through Reasoning, arXiv:2603.09980"
    Config = TRUConfig
    needs_retain = True
    default_steps = 20
    default_lr = 2e-5

    def __init__(self, config=None, **overrides) -> None:
        super().__init__(config, **overrides)
        self._by_prompt: dict[str, str] = {}  # normalised QA prompt -> " reasoning refusal"
        if self.config.targets_file:
            for n, line in enumerate(Path(self.config.targets_file).read_text().splitlines(), 1):
                if not line.strip():
                    continue
                row = json.loads(line)
                if not {"question", "reasoning", "refusal"} <= row.keys():
                    raise ConfigError(f"{self.config.targets_file}:{n}: need question, reasoning and refusal")
                trace = " " + row["reasoning"].strip() + " " + row["refusal"].strip()
                self._by_prompt[_normalised(qa_prompt(row["question"]))] = trace
        self._traces: list[str] = []
        self._matched = 0

    def setup(self, ctx, first) -> None:
        """Give every forget example its trace: the targets_file's for its question, else the template."""
        prompts = ctx.forget.prompts
        traces = [self._by_prompt.get(_normalised(p)) for p in prompts]
        self._matched = sum(t is not None for t in traces)
        if self.config.targets_file and not self._matched:
            raise ConfigError(f"tru: none of the {len(prompts)} forget prompts matches a question of "
                              f"{self.config.targets_file} (e.g. {prompts[0]!r}); its questions must be the forget "
                              "facts' questions")
        if self.config.targets_file and self._matched < len(prompts):
            warnings.warn(f"tru: {self._matched} of {len(prompts)} forget prompts matched a question of "
                          f"{self.config.targets_file}; the other {len(prompts) - self._matched} get the template trace",
                          stacklevel=2)
        self._traces = [t or REASONING + REFUSAL for t in traces]

    def state_dict(self) -> dict:
        return {"traces": self._traces, "matched": self._matched}

    def load_state_dict(self, state: dict) -> None:
        self._traces, self._matched = state["traces"], state["matched"]

    def notes(self) -> dict:
        return {"targets_matched": self._matched, "forget_prompts": len(self._traces)}

    def loss(self, ctx, batch):
        c = self.config
        tok = tokenizer_of(ctx)
        ids = [tok(self._traces[i], add_special_tokens=False)["input_ids"] for i in batch.forget_idx]
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        target = target_nll(ctx.model, with_targets(batch.forget, ids, pad))
        forget = target_nll(ctx.model, batch.forget)
        loss = target - c.alpha * forget
        logs = {"target_nll": target.item(), "forget_nll": forget.item()}
        if c.retain_weight and batch.retain is not None:
            retain = target_nll(ctx.model, batch.retain)
            loss = loss + c.alpha * c.retain_weight * retain
            logs["retain_nll"] = retain.item()
        return loss, logs


def _normalised(prompt: str) -> str:
    """A prompt with runs of whitespace as one space and no case, for matching questions to prompts."""
    return " ".join(prompt.split()).lower()
