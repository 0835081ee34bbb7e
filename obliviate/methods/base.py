"""What a method is: a config dataclass plus either a loss for train.py or an `apply` for training-free edits.

A method file defines one class, decorated with `@METHODS.register("name")`, and touches nothing else.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import torch

from obliviate.data.schema import Task
from obliviate.errors import ConfigError, UnknownNameError
from obliviate.models import LoadedModel
from obliviate.registry import Registry
from obliviate.scoring import EncodedPairs, target_logits, token_logprobs
from obliviate.train import Objective, TrainBatch, TrainConfig, TrainContext, process_mean


@dataclass
class MethodConfig:
    """Base of every method's hyperparameters (a method without any uses it as is)."""


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def parse_setting(owner: str, key: str, value: Any, kind: Any) -> Any:
    """`value` as the type `kind` of a config field; strings (from `--set key=value`) are parsed.

    bool takes true/false, 1/0, yes/no, on/off; int and float take numbers; tuple[X, ...] takes a comma-separated
    list. Anything else is a one-line ConfigError naming the setting and the expected type.
    """
    def bad() -> ConfigError:
        return ConfigError(f"{owner} setting {key}={value!r} is not a valid {getattr(kind, '__name__', kind)}")

    if typing.get_origin(kind) is tuple:
        inner = typing.get_args(kind)[0]
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise bad()
        return tuple(parse_setting(owner, key, item.strip() if isinstance(item, str) else item, inner)
                     for item in items if not (isinstance(item, str) and not item.strip()))
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise bad()
    if kind is int:
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise bad() from None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad()
    if kind is float:
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise bad() from None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise bad()
    if kind is str:
        if not isinstance(value, str):
            raise bad()
        return value
    raise ConfigError(f"{owner} setting {key} has a type ({kind}) that settings cannot parse")


class Method(Objective):
    """Base class: subclasses set the class attributes and implement `loss` (gradient) or `apply` (edit).

    A gradient method is an `obliviate.train.Objective`: besides `loss` it may override `setup` (once per run,
    on the starting weights), `trainable`, `state_dict` / `load_state_dict` (what setup made, for exact
    resumes) and `single_process` (why it cannot run data-parallel).
    """

    summary: ClassVar[str] = ""  # one line for `obliviate methods`
    paper: ClassVar[str] = ""  # title and arXiv id, shown in reports
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    needs_retain: ClassVar[bool] = False
    # The facts of the paired "retain" stream: "retain", "neighbours" (look-alikes; retain when a task has none)
    # or "neighbours+retain".
    keep_split: ClassVar[str] = "retain"
    needs_reference_logprobs: ClassVar[bool] = False
    needs_reference_model: ClassVar[bool] = False
    training_free: ClassVar[bool] = False
    # Default step budget and learning rate on the default model (tuned on builtin:people).
    default_steps: ClassVar[int] = 30
    default_lr: ClassVar[float] = 1e-5

    def __init__(self, config: MethodConfig | None = None, **overrides) -> None:
        config = config or self.Config()
        owner = self.name()
        types = typing.get_type_hints(type(config))
        known = sorted(f.name for f in fields(config))
        for key, value in overrides.items():
            if key not in known:
                raise ConfigError(f"{owner} has no setting {key!r}; its settings: {', '.join(known) or 'none'}")
            setattr(config, key, parse_setting(owner, key, value, types[key]))
        if hasattr(config, "__post_init__"):
            config.__post_init__()
        self.config = config

    def name(self) -> str:
        """The registered name (the class name for an unregistered subclass, e.g. in a test)."""
        try:
            return METHODS.name_of(type(self))
        except UnknownNameError:
            return type(self).__name__

    def loss(self, ctx: TrainContext, batch: TrainBatch) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError(f"{type(self).__name__} is training-free; call apply()")

    def apply(self, lm: LoadedModel, task: Task, train: TrainConfig | None = None) -> LoadedModel:
        """Edit `lm` in place. `train`: the caller's training settings, for methods that train inside (seed)."""
        raise NotImplementedError(f"{type(self).__name__} is a gradient method; run it through obliviate.unlearn")

    def notes(self) -> dict[str, Any]:
        """What the last run chose that a reader of its config needs (e.g. which facts were demonstrations)."""
        return {}


METHODS: Registry[type[Method]] = Registry("method")


# Shared pieces of the losses (one implementation each, used by every method that needs them).

def target_nll(model: torch.nn.Module, pairs: EncodedPairs) -> torch.Tensor:
    """Mean cross-entropy over target tokens (the usual LM loss restricted to answers): scalar.

    The mean is over every data-parallel process's tokens (`process_mean`), so N processes train as one.
    """
    lp = token_logprobs(model, pairs)  # (B, T-1)
    return -process_mean(lp.sum(), pairs.target_mask[:, 1:].sum())


def sequence_logprob(model: torch.nn.Module, pairs: EncodedPairs) -> torch.Tensor:
    """Summed target log-prob per example: (B,)."""
    return token_logprobs(model, pairs).sum(-1)


def target_lengths(pairs: EncodedPairs) -> torch.Tensor:
    """Number of target tokens per example: (B,)."""
    return pairs.target_mask[:, 1:].sum(-1).clamp(min=1)


def npo_rows(log_ratio: torch.Tensor, beta: float) -> torch.Tensor:
    """NPO per row (Zhang et al. 2024, arXiv:2404.05868, Eq. 3): (2/β) · log(1 + (π/π_ref)^β) = -(2/β) logσ(-β·r)."""
    return -(2.0 / beta) * torch.nn.functional.logsigmoid(-beta * log_ratio)


def npo_loss(log_ratio: torch.Tensor, beta: float) -> torch.Tensor:
    """NPO's loss: the mean of `npo_rows` over the batch."""
    return npo_rows(log_ratio, beta).mean()


def retain_kl(ctx: TrainContext, pairs: EncodedPairs) -> torch.Tensor:
    """KL(reference ‖ current) on retain target tokens, averaged over those tokens: scalar."""
    assert ctx.reference_target_logits is not None, "method must set needs_reference_model"
    kl = torch.nn.functional.kl_div(target_logits(ctx.model, pairs).log_softmax(-1),
                                    ctx.reference_target_logits(pairs).log_softmax(-1), log_target=True, reduction="sum")
    return process_mean(kl, pairs.target_mask[:, 1:].sum())
