"""The one training loop. Every gradient method (and teaching) runs through `run_training`.

Plain torch + accelerate, so `accelerate launch --num_processes N` runs the same code data-parallel. In order:
  1. choose the precision (fp32 master weights always; bf16/fp16 autocast when asked or when the model was
     loaded in that dtype), wrap the model (optionally in LoRA adapters);
  2. compute the reference log-probs of the forget examples ONCE (they never change);
  3. let the objective set itself up once on the starting weights (or load its state from the checkpoint),
     freeze what it does not train, build AdamW and the data-parallel wrapper;
  4. for each step: draw a forget batch and a paired retain batch from a seeded schedule, ask the objective for
     its loss, step, clip, and watch for collapse (a collapse keeps the last good state);
  5. checkpoint every N steps; `resume=True` continues from the newest checkpoint with identical batches.
Which examples a step sees is a pure function of (seed, step), which is what makes resuming exact; the
checkpoint holds the objective's own state and every process's RNG state for the same reason.
"""

from __future__ import annotations

import math
import os
import random
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.distributed as dist
from accelerate import Accelerator
from tqdm.auto import tqdm

from obliviate import checkpoint
from obliviate.errors import ConfigError, TrainingCollapseError
from obliviate.models import LoadedModel, save_model
from obliviate.scoring import EncodedPairs, encode_pairs, generate, target_logits, token_logprobs
from obliviate.text import NEUTRAL_TEXT, is_empty, is_gibberish

PRECISIONS = ("auto", "no", "bf16", "fp16")


@dataclass
class TrainConfig:
    """Settings of one training run (unlearning or teaching)."""

    steps: int = 30  # optimizer steps
    lr: float = 1e-5
    batch_size: int = 8  # forget examples per step and process (the retain batch has the same size)
    grad_accum: int = 1  # micro-batches per optimizer step; batch_size is split across them
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    max_length: int = 128
    seed: int = 0
    # Weights are always trained in fp32 (a bf16 weight rounds away an AdamW step of 1e-5 once |w| > ~3e-3);
    # "bf16"/"fp16" run the forward and backward under that autocast. "auto": the dtype the model was loaded in.
    mixed_precision: str = "auto"
    lora: bool = False  # train LoRA adapters instead of all weights (merged back when saving)
    lora_r: int = 8
    lora_alpha: int = 16
    lora_targets: str = "all-linear"
    checkpoint_every: int = 0  # 0 = no checkpoints
    check_every: int = 0  # call the stop check every N steps (0 = never)
    collapse_loss: float = 1e4  # |loss| above this (or NaN) stops the run as collapsed
    # Collapse watch: every N steps, greedy answers to 4 retain prompts (neutral openings when there is no retain
    # stream); when this share of them is gibberish (an empty answer is not), the run stops and keeps the last
    # state that passed. 0 = off.
    gibberish_every: int = 10
    gibberish_share: float = 0.75
    ignore_k: float = 0.0  # drop this fraction of the largest per-parameter updates at the end (update pruning)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.batch_size < 1 or self.grad_accum < 1 or self.batch_size % self.grad_accum:
            raise ConfigError(
                f"batch_size {self.batch_size} must be a positive multiple of grad_accum {self.grad_accum}"
            )
        if not 0.0 <= self.ignore_k < 1.0:
            raise ConfigError(f"ignore_k is a fraction in [0, 1), got {self.ignore_k}")
        if self.mixed_precision not in PRECISIONS:
            raise ConfigError(f"mixed_precision must be one of {', '.join(PRECISIONS)}; got {self.mixed_precision!r}")
        if self.gibberish_every < 0 or not 0.0 < self.gibberish_share <= 1.0:
            raise ConfigError(f"gibberish_every must be >= 0 (0 = off) and gibberish_share in (0, 1]; got "
                              f"{self.gibberish_every} and {self.gibberish_share}")


# The settings a resumed run may change (length, logging, the watch); any other difference is another run.
_MAY_CHANGE_ON_RESUME = {"steps", "progress", "checkpoint_every", "check_every", "collapse_loss", "gibberish_every",
                      "gibberish_share", "ignore_k"}


@dataclass
class Examples:
    """Prompt/target pairs of one stream (forget or retain), with each pair's subject where it comes from a fact
    (empty for documents, or for all when unknown): where the answer is said must not be read inside the
    subject's own name ("Czech" in "the Czech Republic")."""

    prompts: list[str]
    targets: list[str]
    subjects: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.prompts)


@dataclass
class TrainBatch:
    """What a method's loss sees at one (micro-)step."""

    forget: EncodedPairs
    retain: EncodedPairs | None
    forget_ref_logprob: torch.Tensor | None  # (B,) summed reference log-prob of each forget target
    step: int
    forget_idx: list[int] = field(default_factory=list)  # which forget examples the rows are
    retain_idx: list[int] = field(default_factory=list)


@dataclass
class TrainContext:
    """The model being trained and, when the method asked for it, a frozen reference."""

    model: torch.nn.Module  # call this for forward passes (it is the data-parallel wrapper when there is one)
    config: TrainConfig
    tokenizer: Any = None  # for methods that build their own targets (refusals, reasoning traces)
    reference_target_logits: Callable[[EncodedPairs], torch.Tensor] | None = None  # the reference's `target_logits`
    forget: Examples | None = None  # the whole streams, for objectives that prepare per-example data
    retain: Examples | None = None
    module: torch.nn.Module | None = None  # the model without a data-parallel wrapper (None: `model` is bare)

    @property
    def unwrapped(self) -> torch.nn.Module:
        """The bare model, whose parameter names match those `Objective.setup` saw."""
        return self.module if self.module is not None else self.model


class Objective:
    """A training objective: `loss` plus hooks around the run, all optional (methods subclass it; a plain
    loss function is wrapped in one)."""

    # Why this objective cannot run data-parallel (its loss couples the rows of a batch): "" = it can.
    single_process: ClassVar[str] = ""

    def loss(self, ctx: TrainContext, batch: TrainBatch) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def setup(self, ctx: TrainContext, first: TrainBatch) -> None:
        """Once per run, before the first step, on the starting weights and the first step's whole batch (all
        processes' rows). Whatever it computes belongs in `state_dict`: a resumed run loads it instead."""

    def trainable(self, name: str) -> bool:
        """Whether parameter `name` trains (asked after `setup`, before the optimizer and data-parallel wrapper
        exist; the others are frozen for the run)."""
        return True

    def state_dict(self) -> dict[str, Any]:
        """The state `setup` made (tensors and plain values), saved in every checkpoint."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what `state_dict` returned, in a resumed run (instead of `setup`)."""


class _LossOnly(Objective):
    def __init__(self, fn: LossFn) -> None:
        self.fn = fn

    def loss(self, ctx: TrainContext, batch: TrainBatch) -> tuple[torch.Tensor, dict[str, float]]:
        return self.fn(ctx, batch)


@dataclass
class TrainResult:
    lm: LoadedModel
    steps_done: int
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False
    precision: str = "no"  # the autocast used ("no", "bf16", "fp16"); the weights are fp32 either way


LossFn = Callable[[TrainContext, TrainBatch], "tuple[torch.Tensor, dict[str, float]]"]

# True while a data-parallel loop runs: losses then normalise by counts summed over every process.
_DATA_PARALLEL: ContextVar[bool] = ContextVar("data_parallel", default=False)


def process_sum(x: torch.Tensor) -> torch.Tensor:
    """`x` summed over the processes of the running data-parallel loop (`x` itself otherwise); no gradient."""
    if not _DATA_PARALLEL.get():
        return x
    x = x.detach().clone()
    dist.all_reduce(x)
    return x


def process_mean(total: torch.Tensor, count: torch.Tensor | int) -> torch.Tensor:
    """`total / count` as a mean over the whole batch of every process: the local sum is divided by the global
    count / N. DDP averages gradients over N processes, so N processes with batch B then train exactly like one
    with batch N·B even when they hold different numbers of tokens. Without a data-parallel loop: total / count.
    """
    count = torch.as_tensor(count, dtype=torch.float32, device=total.device)
    if not _DATA_PARALLEL.get():
        return total / count.clamp(min=1)
    return total / (process_sum(count).clamp(min=1) / dist.get_world_size())


def lr_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then constant: short unlearning runs are hurt by decaying too early."""
    if config.warmup_steps and step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    return config.lr


def batch_indices(n: int, batch_size: int, step: int, seed: int, stream: int = 0) -> list[int]:
    """The example indices used at `step`: epochs of seeded permutations, a pure function of its inputs."""
    start = step * batch_size
    out: list[int] = []
    while len(out) < batch_size:
        epoch, offset = divmod(start + len(out), n)
        perm = list(range(n))
        random.Random(hash((seed, stream, epoch)) & 0xFFFFFFFF).shuffle(perm)
        out.extend(perm[offset : offset + batch_size - len(out)])
    return out


@torch.no_grad()
def reference_logprobs(model: torch.nn.Module, tokenizer, examples: Examples, max_length: int,
                       batch_size: int = 16) -> torch.Tensor:
    """Summed log p(target | prompt) of every example under the model as it is now: (N,). Computed once."""
    out = []
    for i in range(0, len(examples), batch_size):
        pairs = encode_pairs(tokenizer, examples.prompts[i : i + batch_size], examples.targets[i : i + batch_size],
                             max_length).to(next(model.parameters()).device)
        out.append(token_logprobs(model, pairs).sum(-1).float().cpu())
    return torch.cat(out)


def _precision(model: torch.nn.Module, config: TrainConfig) -> str:
    """The autocast to train under: the configured one, or for "auto" the dtype the model was loaded in."""
    if config.mixed_precision != "auto":
        return config.mixed_precision
    dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "no")


@contextmanager
def _autocast(device: torch.device, precision: str) -> Iterator[None]:
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        yield


def _wrap_lora(model: torch.nn.Module, config: TrainConfig) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    targets: Any = config.lora_targets if config.lora_targets == "all-linear" else config.lora_targets.split(",")
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0, target_modules=targets)
    return get_peft_model(model, lora)  # adapters are fp32 even over a bf16/fp16 base


def _frozen_reference(model: torch.nn.Module, lora: bool) -> Callable[[EncodedPairs], torch.Tensor]:
    """The reference's logits at the target positions (`target_logits`): LoRA's base model with adapters off
    (no copy), else a frozen copy of the weights."""
    if lora:
        def with_adapters_off(pairs: EncodedPairs) -> torch.Tensor:
            with torch.no_grad(), model.disable_adapter():
                return target_logits(model, pairs)
        return with_adapters_off
    import copy

    frozen = copy.deepcopy(model).eval().requires_grad_(False)

    def from_copy(pairs: EncodedPairs) -> torch.Tensor:
        with torch.no_grad():
            return target_logits(frozen, pairs)
    return from_copy


def watch_prompts(retain: Examples | None, n: int = 4) -> list[str]:
    """The prompts the collapse watch reads: the first retain prompts, else openings of neutral sentences (never
    forget prompts: losing those answers is the goal, not a collapse)."""
    if retain:
        return list(retain.prompts[:n])
    return [" ".join(s.split()[:4]) for s in NEUTRAL_TEXT[:n]]


def _gibberish(lm: LoadedModel, prompts: list[str]) -> tuple[float, float, str]:
    """Shares of greedy answers to `prompts` that are gibberish and that are words (neither gibberish nor empty:
    an empty answer is a non-answer, not a collapse), and one gibberish answer."""
    outputs = generate(lm, prompts, max_new_tokens=12)
    bad = [o for o in outputs if is_gibberish(o)]
    words = [o for o in outputs if not is_gibberish(o) and not is_empty(o)]
    return len(bad) / len(outputs), len(words) / len(outputs), (bad[0] if bad else "")


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """CPU copy of the trainable weights (a state to go back to: the last one that passed the collapse watch,
    the best checkpoint of a stop rule)."""
    return {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad}


@torch.no_grad()
def restore(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Copy a `snapshot` back into `model` (parameters it does not name are left as they are)."""
    for name, p in model.named_parameters():
        if name in weights:
            p.copy_(weights[name])


def _prune_updates(model: torch.nn.Module, before: dict[str, torch.Tensor], fraction: float) -> None:
    """Update pruning ('ignore-k'): undo the largest `fraction` of each tensor's weight changes.

    The biggest single updates are the ones that most disturb unrelated behaviour; dropping them keeps
    most of the forgetting (which is spread over many small changes).
    """
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name not in before:
                continue
            delta = p - before[name]
            k = int(delta.numel() * fraction)
            if k == 0:
                continue
            threshold = delta.abs().flatten().kthvalue(delta.numel() - k).values
            p.copy_(torch.where(delta.abs() > threshold, before[name], p))


def _batch(lm: LoadedModel, forget: Examples, retain: Examples | None, fi: list[int], ri: list[int] | None,
           ref_lp: torch.Tensor | None, step: int, config: TrainConfig, device: torch.device) -> TrainBatch:
    def encode(ex: Examples, idx: list[int]) -> EncodedPairs:
        return encode_pairs(lm.tokenizer, [ex.prompts[i] for i in idx], [ex.targets[i] for i in idx],
                            config.max_length).to(device)

    return TrainBatch(encode(forget, fi), encode(retain, ri) if retain and ri else None,
                      ref_lp[fi].to(device) if ref_lp is not None else None, step, list(fi), list(ri or []))


def run_training(
    lm: LoadedModel,
    loss_fn: LossFn | Objective,
    forget: Examples,
    retain: Examples | None = None,
    config: TrainConfig | None = None,
    *,
    needs_reference_logprobs: bool = False,
    needs_reference_model: bool = False,
    out_dir: str | Path | None = None,
    resume: bool = False,
    stop_check: Callable[[LoadedModel, int], bool] | None = None,
    identity: dict | None = None,
    watch: list[str] | None = None,
    description: str = "train",
) -> TrainResult:
    """Run the objective for `config.steps` optimizer steps on forget (and paired retain) batches.

    Args:
        lm: the model to update in place (wrapped in LoRA adapters when `config.lora`; returned in fp32).
        loss_fn: `(ctx, batch) -> (loss, logs)`, or an `Objective` (methods are) for setup/state/freezing hooks.
        forget / retain: the two example streams; retain batches are paired one-to-one with forget batches.
        needs_reference_logprobs: precompute the frozen model's forget log-probs once (NPO-style methods).
        needs_reference_model: keep a frozen reference for per-step logits (KL-style regularisers).
        out_dir: where checkpoints (and, after a collapse, `last-good/`) go; `resume=True` continues from the
            checkpoint there.
        stop_check: `(model, step) -> stop?`, called (in eval mode) every `config.check_every` steps, the last step
            included; returning True before the last step ends training early. When it has `state_dict` /
            `load_state_dict`, its state goes into every checkpoint and comes back on resume.
        identity: what else makes this run itself (method, settings, task...): a checkpoint of another is refused.
        watch: the prompts the collapse watch reads (default `watch_prompts(retain)`: retain prompts, else neutral
            openings; teaching passes what it teaches).
    Raises:
        TrainingCollapseError: loss became NaN/inf or exceeded `config.collapse_loss`, or the watched answers
            turned to gibberish. The last state that passed the watch is kept (see the message).
        ConfigError: a checkpoint of another run; a single-process objective under data parallelism.
    """
    config = config or TrainConfig()
    if len(forget) == 0:
        raise ConfigError("the forget stream is empty: nothing to train on")
    if isinstance(getattr(loss_fn, "__self__", None), Objective):  # e.g. `method.loss`: its setup would never run
        raise ConfigError(f"{description}: pass the objective itself, not its bound `.loss`, so that its setup runs")
    objective = loss_fn if isinstance(loss_fn, Objective) else _LossOnly(loss_fn)
    torch.manual_seed(config.seed)
    accelerator = Accelerator(gradient_accumulation_steps=config.grad_accum, cpu=lm.device.type == "cpu")
    rank, world, device = accelerator.process_index, accelerator.num_processes, accelerator.device
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != world:  # e.g. accelerate's state was made before us without cpu=True: each process would train alone
        raise ConfigError(f"{description}: launched as {launched} processes, but accelerate's state has {world}; create "
                          "no accelerate state (PartialState/Accelerator) before training, or launch with `accelerate "
                          "launch`")
    if world > 1 and objective.single_process:
        raise ConfigError(f"{description} cannot run data-parallel ({objective.single_process}); run it in one process")

    # 1. precision and wrapping: fp32 master weights (LoRA keeps a low-precision base frozen; its adapters are fp32)
    precision = _precision(lm.model, config)
    model = lm.model
    if config.lora and not hasattr(model, "disable_adapter"):
        model = _wrap_lora(model, config)
    elif not config.lora:
        model.float()
    model.train()
    use_cache, model.config.use_cache = model.config.use_cache, False  # training never reuses a KV cache
    amp = lambda: _autocast(device, precision)  # noqa: E731

    # 2. the frozen reference
    ref_lp = None
    if needs_reference_logprobs:
        with amp():
            ref_lp = reference_logprobs(model, lm.tokenizer, forget, config.max_length)
    reference = _frozen_reference(model, config.lora) if needs_reference_model else None

    # 3. the objective's own state (fresh or from the checkpoint), freezing, optimizer, data-parallel wrapper
    run_identity = {"train": {**{k: v for k, v in asdict(config).items() if k not in _MAY_CHANGE_ON_RESUME},
                              "mixed_precision": precision},  # "auto" as resolved
                    "processes": world, **(identity or {})}
    ckpt = checkpoint.load(Path(out_dir), device) if out_dir is not None and resume else None
    ctx = TrainContext(model, config, lm.tokenizer, reference, forget, retain)
    if ckpt is not None:
        checkpoint.check_identity(ckpt, run_identity)
        objective.load_state_dict(ckpt.state["method"])
        if hasattr(stop_check, "load_state_dict"):
            if ckpt.state.get("stop") is None:
                raise ConfigError(f"the checkpoint in {ckpt.path} was written without this run's stop check; resume "
                                  "it as it was started, or use another --out to start afresh")
            stop_check.load_state_dict(ckpt.state["stop"])
    else:
        f_all = batch_indices(len(forget), config.batch_size * world, 0, config.seed, 0)
        r_all = batch_indices(len(retain), config.batch_size * world, 0, config.seed, 1) if retain else None
        with amp():
            objective.setup(ctx, _batch(lm, forget, retain, f_all, r_all, ref_lp, 0, config, device))
    frozen = [p for n, p in model.named_parameters() if p.requires_grad and not objective.trainable(n)]
    for p in frozen:
        p.requires_grad_(False)
    try:
        before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad} if config.ignore_k else None
        params = [p for p in model.parameters() if p.requires_grad]
        # Fused AdamW (one kernel over all parameters): 15-27 % less time per NPO / GradDiff step here than
        # the per-tensor loop (benchmarks/unlearn_speed.py, docs/unlearn_speed.md); same update up to rounding.
        optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay,
                                      fused=True if device.type in ("cpu", "cuda") else None)
        scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        wrapped, optimizer = accelerator.prepare(model, optimizer)
        start, history = 0, []
        if ckpt is not None:
            checkpoint.restore(ckpt, model, optimizer, rank)
            start, history = ckpt.step, ckpt.history
        ctx.model, ctx.module = wrapped, model
        token = _DATA_PARALLEL.set(world > 1)
        try:
            stopped_early = _loop(lm, objective, ctx, wrapped, model, optimizer, scaler, accelerator, forget, retain,
                                  ref_lp, start, history, amp, run_identity, out_dir, stop_check, watch, description)
        finally:
            _DATA_PARALLEL.reset(token)
    finally:
        for p in frozen:
            p.requires_grad_(True)
        model.config.use_cache = use_cache
    if before is not None:
        _prune_updates(model, before, config.ignore_k)
    model.eval()
    steps_done = history[-1]["step"] if history else start
    if not math.isfinite(steps_done):
        raise AssertionError("history corrupted")
    return TrainResult(LoadedModel(model, lm.tokenizer, lm.source), int(steps_done), history, stopped_early, precision)


def _loop(lm, objective, ctx, wrapped, model, optimizer, scaler, accelerator, forget, retain, ref_lp, start,
          history, amp, identity, out_dir, stop_check, watch, description) -> bool:
    """Step 4 and 5 of `run_training`: the steps themselves. Returns whether the stop check ended them."""
    config: TrainConfig = ctx.config
    rank, world, device = accelerator.process_index, accelerator.num_processes, accelerator.device
    micro = config.batch_size // config.grad_accum
    params = [p for p in model.parameters() if p.requires_grad]
    bar = tqdm(total=config.steps, initial=start, desc=description,
               disable=not config.progress or not accelerator.is_main_process)

    def in_eval_mode(check: Callable[[LoadedModel], Any]) -> Any:
        """Run a check on the model being trained, in eval mode, then go back to training."""
        model.eval()
        try:
            return check(LoadedModel(model, lm.tokenizer, lm.source))
        finally:
            model.train()

    watch = (watch or watch_prompts(retain)) if config.gibberish_every and start < config.steps else []
    if watch and in_eval_mode(lambda m: _gibberish(m, watch))[1] < 0.5:
        # most answers were not words before training (e.g. an instruct model ends a plain QA prompt at once):
        # watch neutral openings instead; a model that continues those in no words (a random test model) is
        # not watched, and the user is told
        neutral = watch_prompts(None)
        watch = neutral if in_eval_mode(lambda m: _gibberish(m, neutral))[1] >= 0.5 else []
        if not watch:
            warnings.warn(f"{description}: the collapse watch is off: the model answers its prompts in no words "
                          "even before training", stacklevel=2)
    good = (start, snapshot(model)) if watch else None

    def collapsed(what: str, step: int) -> TrainingCollapseError:
        """Put the last good state back (on disk too, when there is a run folder) and explain how to go on."""
        if good is None:
            return TrainingCollapseError(f"{description}: {what} at step {step}; the run collapsed and no earlier "
                                         "state passed the collapse watch (it is off or could not read this model). "
                                         "Lower lr or steps, or add a retain term.")
        restore(model, good[1])
        where = "the model passed in now holds it"
        if out_dir is not None:
            path = Path(out_dir) / "last-good"
            if accelerator.is_main_process:
                save_model(LoadedModel(model, lm.tokenizer, lm.source), path)
            accelerator.wait_for_everyone()
            where = f"it is saved in {path}; continue from it with --model {path}"
        return TrainingCollapseError(
            f"{description}: {what} at step {step}; the run collapsed. The last state that passed the collapse watch "
            f"(step {good[0]}) is kept: {where}, with a lower --lr or fewer --steps; or, if its answers look "
            "fine to you, raise --gibberish-share or turn the watch off with --gibberish-every 0.")

    step = start
    for step in range(start, config.steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        f_idx = batch_indices(len(forget), config.batch_size * world, step, config.seed, 0)
        r_idx = batch_indices(len(retain), config.batch_size * world, step, config.seed, 1) if retain else None
        logs_sum: dict[str, float] = {}
        for m in range(config.grad_accum):
            # each process takes its own slice of the global batch; micro-batches split it further
            fi = f_idx[rank::world][m * micro : (m + 1) * micro]
            ri = r_idx[rank::world][m * micro : (m + 1) * micro] if r_idx else None
            batch = _batch(lm, forget, retain, fi, ri, ref_lp, step, config, device)
            with accelerator.accumulate(wrapped):
                with amp():
                    loss, logs = objective.loss(ctx, batch)
                bad = not torch.isfinite(loss) or abs(loss.item()) > config.collapse_loss
                if world > 1:  # every process must stop together
                    bad = bool(process_sum(torch.tensor(float(bad), device=device)) > 0)
                if bad:
                    raise collapsed(f"loss is {loss.item():.4g}", step)
                accelerator.backward(scaler.scale(loss))
                if accelerator.sync_gradients:
                    scaler.unscale_(optimizer)
                    if config.max_grad_norm:
                        accelerator.clip_grad_norm_(params, config.max_grad_norm)
                    scaler.step(optimizer)
                    scaler.update()
                optimizer.zero_grad()
            for k, v in {"loss": loss.item(), **logs}.items():
                logs_sum[k] = logs_sum.get(k, 0.0) + v / config.grad_accum
        history.append({"step": step + 1, **logs_sum})
        bar.set_postfix({k: f"{v:.3g}" for k, v in list(logs_sum.items())[:4]})
        bar.update(1)
        done = step + 1
        if watch and done % config.gibberish_every == 0:  # before checkpointing: a checkpoint is always good
            share, _, example = in_eval_mode(lambda m: _gibberish(m, watch))
            if share >= config.gibberish_share:
                raise collapsed(f"{share:.0%} of the greedy answers to the watched prompts are gibberish "
                                f"(e.g. {example!r})", done)
            good = (done, snapshot(model))
        # the check before the checkpoint, so that a checkpoint holds every check up to its step
        stop = stop_check is not None and config.check_every and done % config.check_every == 0 \
            and in_eval_mode(lambda m, at=done: stop_check(m, at)) and done < config.steps
        if out_dir is not None and config.checkpoint_every and done % config.checkpoint_every == 0 and not stop:
            checkpoint.save(Path(out_dir), done, model, optimizer, history, objective.state_dict(), identity,
                            accelerator, getattr(stop_check, "state_dict", lambda: None)())
        if stop:
            bar.close()
            return True
    bar.close()
    return False
