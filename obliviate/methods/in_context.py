"""In-context unlearning (ICUL): no weight change; a fixed prefix of counter-examples precedes every prompt.

Pawelczyk et al. 2024, In-Context Unlearning: Language Models as Few-Shot Unlearners (arXiv:2310.07579).
ICUL shows each forget example with a flipped label, then a few correct demonstrations, then the query.
We adapt it from classification to generative QA: each forget question is shown with a refusal (or, with
`flip_answers`, a plausible wrong answer), followed by `n_correct` questions answered correctly. ICUL draws
those from the training data; ours are everyday questions (`DEMONSTRATIONS`) that no evaluated split holds, since
a retain fact shown with its answer in the prompt would score as kept whatever the method did to the model. A
demonstration whose question a task fact also asks is skipped; the ones used are in the run's `method_notes`.

The edit is a thin `nn.Module` wrapper around the unchanged model: its `forward` prepends the prefix token ids
and strips their positions from the logits and hidden states, and its `generate` prepends them too, so
scoring.py, metrics and attacks see a model that simply behaves differently. Saving writes the unchanged
weights plus `in_context_prefix.txt`: the prefix is part of the "model" and must be re-applied after loading.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from obliviate.data.forms import qa_prompt
from obliviate.data.schema import SPLITS, Task
from obliviate.errors import ConfigError
from obliviate.methods._common import REFUSALS
from obliviate.methods.base import METHODS, Method, MethodConfig
from obliviate.models import CACHE_ARG, LoadedModel
from obliviate.train import TrainConfig

# Correctly answered demonstrations: everyday knowledge that no builtin task asks (tests/test_methods_unit.py checks).
DEMONSTRATIONS = (
    ("How many days are there in a week?", "Seven"),
    ("How many legs does a spider have?", "Eight"),
    ("What do bees make?", "Honey"),
    ("What colour is grass?", "Green"),
    ("How many hours are there in a day?", "Twenty-four"),
    ("What is frozen water called?", "Ice"),
    ("How many minutes are there in an hour?", "Sixty"),
)


def _may_change_outputs(hook) -> bool:
    """False for transformers' output-capturing hooks: installed on every block for good at a model's first
    `output_hidden_states` or `output_attentions` call (and kept by a copy of the model), they only record."""
    return getattr(hook, "__module__", "") != "transformers.utils.output_capturing"


class PrefixedModel(nn.Module):
    """`model` with fixed `prefix_ids` prepended to every input; outputs cover the caller's positions only.

    >>> from obliviate.models import tiny_model
    >>> lm = tiny_model()
    >>> wrapped = PrefixedModel(lm.model, lm.tokenizer("Forget Mara.", return_tensors="pt").input_ids[0])
    >>> wrapped(input_ids=torch.tensor([[5, 6, 7]])).logits.shape[:2]
    torch.Size([1, 3])
    """

    def __init__(self, model: nn.Module, prefix_ids: torch.Tensor, prefix_text: str = "",
                 cache_prefix: bool = True) -> None:
        super().__init__()
        self.inner = model
        self.register_buffer("prefix_ids", prefix_ids.long().flatten(), persistent=False)
        self.prefix_text = prefix_text
        self.cache_prefix = cache_prefix  # False: run the prefix in every call (benchmarks/prompt_prefixes.py)
        self._prefix_cache: tuple[tuple, object] | None = None  # (weights' identity, the prefix's KV cache)

    def __getattr__(self, name: str):  # config, generation_config, device, ... come from the wrapped model
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.inner, name)

    def _prepend(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None):
        b = input_ids.shape[0]
        prefix = self.prefix_ids.to(input_ids.device).expand(b, -1)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        # Left-padded generation batches become [prefix, pads, tokens]; positions come from the mask, so the
        # pads in the middle are skipped exactly as leading pads would be.
        return torch.cat([prefix, input_ids], 1), torch.cat([torch.ones_like(prefix), attention_mask], 1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, **kwargs):
        """A fresh call runs the prefix in front of `input_ids`; a call that continues a KV cache (which holds
        the prefix already) only extends the mask. Given positions are shifted past the prefix, and
        `logits_to_keep` counts from the end (or, as positions, is shifted), so neither needs to know about it."""
        n = self.prefix_ids.numel()
        cache = kwargs.get(CACHE_ARG)
        if cache is None and self._prefix_states_fixed():
            return self._after_cached_prefix(input_ids, attention_mask, position_ids, **kwargs)
        fresh = cache is None or cache.get_seq_length() == 0
        ids, mask = self._prepend(input_ids, attention_mask)
        if not fresh:  # the cache holds the prefix; the caller's mask covers its own past and new tokens
            ids, mask = input_ids, None if attention_mask is None else mask
        if position_ids is not None:
            position_ids = position_ids + n
            if fresh:
                prefix_positions = torch.arange(n, device=position_ids.device).expand(position_ids.shape[0], -1)
                position_ids = torch.cat([prefix_positions, position_ids], 1)
        keep = kwargs.get("logits_to_keep", 0)
        if fresh and isinstance(keep, torch.Tensor):  # positions in the caller's ids: past the prefix here
            kwargs["logits_to_keep"] = keep + n
        out = self.inner(input_ids=ids, attention_mask=mask, position_ids=position_ids, **kwargs)
        if fresh and isinstance(keep, int) and keep == 0:
            out["logits"] = out.logits[:, n:]
        if fresh and getattr(out, "hidden_states", None) is not None:
            out["hidden_states"] = tuple(h[:, n:] for h in out.hidden_states)
        return out

    def _prefix_states_fixed(self) -> bool:
        """Whether the prefix's keys and values are what they were when cached: no gradients wanted and no hook
        that could change them (steering, latent attacks); the weights are checked by `_after_cached_prefix`."""
        hooked_globally = torch.nn.modules.module._global_forward_hooks or torch.nn.modules.module._global_forward_pre_hooks
        if not self.cache_prefix or torch.is_grad_enabled() or hooked_globally:
            return False
        return not any(_may_change_outputs(hook) for m in self.inner.modules()
                       for hook in (*m._forward_hooks.values(), *m._forward_pre_hooks.values()))

    def _after_cached_prefix(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                             position_ids: torch.Tensor | None, **kwargs):
        """The caller's tokens after a copy of the prefix's KV cache. The prefix (every forget question of the
        task: ~1,300 tokens on 60 real facts) is run once while the weights stay the same tensors, unmodified,
        instead of once per batch."""
        n, b = self.prefix_ids.numel(), input_ids.shape[0]
        weights = tuple((p.data_ptr(), p._version) for p in self.inner.parameters())
        if self._prefix_cache is None or self._prefix_cache[0] != weights:
            prefix = self.prefix_ids.to(input_ids.device)[None]
            self._prefix_cache = (weights, self.inner(input_ids=prefix, use_cache=True, logits_to_keep=1)[CACHE_ARG])
        past = copy.deepcopy(self._prefix_cache[1])
        past.batch_repeat_interleave(b)
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        mask = torch.cat([mask.new_ones(b, n), mask], 1)
        if position_ids is not None:
            position_ids = position_ids + n
        return self.inner(input_ids=input_ids, attention_mask=mask, position_ids=position_ids, **{**kwargs, CACHE_ARG: past})

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs):
        """Like HF generate; the returned ids are `input_ids` + new tokens (the prefix is not shown)."""
        n = self.prefix_ids.numel()
        ids, mask = self._prepend(input_ids, attention_mask)
        out = self.inner.generate(input_ids=ids, attention_mask=mask, **kwargs)
        return out[:, n:]

    def save_pretrained(self, out_dir, **kwargs):
        self.inner.save_pretrained(out_dir, **kwargs)
        (Path(out_dir) / "in_context_prefix.txt").write_text(self.prefix_text)


@dataclass
class InContextConfig(MethodConfig):
    instruction: str = "Some of the questions below are about things you must not reveal.\n\n"
    n_correct: int = 4  # correct demonstrations after the counter-examples (ICUL's s ≈ 2–6), from DEMONSTRATIONS
    flip_answers: bool = False  # counter-examples answer with a wrong answer (ICUL's flipped label) not a refusal

    def __post_init__(self) -> None:
        if not 0 <= self.n_correct <= len(DEMONSTRATIONS):
            raise ConfigError(f"in_context n_correct must be in 0..{len(DEMONSTRATIONS)}, got {self.n_correct}")


@METHODS.register("in_context")
class InContext(Method):
    summary = "prepend refusals for the forget questions + correct everyday demos to every prompt (no weight change)"
    paper = "Pawelczyk et al. 2024, In-Context Unlearning: Language Models as Few-Shot Unlearners, arXiv:2310.07579"
    Config = InContextConfig
    training_free = True

    def __init__(self, config=None, **overrides) -> None:
        super().__init__(config, **overrides)
        self._demos: list[str] = []

    def demonstrations(self, task: Task) -> list[tuple[str, str]]:
        """The first `n_correct` DEMONSTRATIONS whose question no fact of the task asks (none of them is scored)."""
        asked = {" ".join(f.question.lower().split()) for split in SPLITS for f in task.split(split)}
        free = [(q, a) for q, a in DEMONSTRATIONS if " ".join(q.lower().split()) not in asked]
        if len(free) < self.config.n_correct:
            raise ConfigError(f"in_context: task {task.name!r} asks {len(DEMONSTRATIONS) - len(free)} of the "
                              f"demonstration questions, leaving {len(free)} < n_correct={self.config.n_correct}")
        return free[: self.config.n_correct]

    def prefix(self, task: Task) -> str:
        c = self.config
        blocks = []
        for i, fact in enumerate(task.forget):
            wrong = fact.perturbed_answers[0] if c.flip_answers and fact.perturbed_answers else None
            blocks.append(f"{qa_prompt(fact.question)} {wrong or REFUSALS[i % len(REFUSALS)].strip()}")
        demos = self.demonstrations(task)
        self._demos = [q for q, _ in demos]
        blocks += [f"{qa_prompt(q)} {a}" for q, a in demos]
        return c.instruction + "\n\n".join(blocks) + "\n\n"

    def notes(self) -> dict:
        return {"demonstrations": self._demos}

    def apply(self, lm: LoadedModel, task: Task, train: TrainConfig | None = None) -> LoadedModel:
        text = self.prefix(task)
        ids = torch.tensor(lm.tokenizer(text, add_special_tokens=False)["input_ids"], device=lm.device)
        inner = lm.model.inner if isinstance(lm.model, PrefixedModel) else lm.model
        return LoadedModel(PrefixedModel(inner, ids, text).eval(), lm.tokenizer, lm.source)
