"""The one training loop. Every gradient method (and teaching) runs through `run_training`.

Plain torch + accelerate, so `accelerate launch --num_processes N` runs the same code data-parallel. In order:
  1. wrap the model (optionally in LoRA adapters) and build AdamW;
  2. compute the reference log-probs of the forget examples ONCE (they never change);
  3. for each step: draw a forget batch and a paired retain batch from a seeded schedule, ask the method for
     its loss, step, clip, and watch for collapse;
  4. checkpoint every N steps; `resume=True` continues from the newest checkpoint with identical batches.
Which examples a step sees is a pure function of (seed, step), which is what makes resuming exact.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from obliviate.errors import ConfigError, TrainingCollapseError
from obliviate.models import LoadedModel
from obliviate.scoring import EncodedPairs, encode_pairs, generate, token_logprobs
from obliviate.text import is_gibberish


@dataclass
class TrainConfig:
    """Settings of one training run (unlearning or teaching)."""

    steps: int = 30  # optimizer steps
    lr: float = 1e-5
    batch_size: int = 8  # forget examples per step (the retain batch has the same size)
    grad_accum: int = 1  # micro-batches per optimizer step; batch_size is split across them
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    max_length: int = 128
    seed: int = 0
    lora: bool = False  # train LoRA adapters instead of all weights (merged back when saving)
    lora_r: int = 8
    lora_alpha: int = 16
    lora_targets: str = "all-linear"
    checkpoint_every: int = 0  # 0 = no checkpoints
    check_every: int = 0  # call the stop check every N steps (0 = never)
    collapse_loss: float = 1e4  # |loss| above this (or NaN) stops the run as collapsed
    gibberish_every: int = 10  # every N steps, greedy answers to 4 retain prompts; 0 = never
    gibberish_share: float = 0.75  # this share of them being gibberish stops the run as collapsed
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


@dataclass
class Examples:
    """Prompt/target pairs of one stream (forget or retain)."""

    prompts: list[str]
    targets: list[str]

    def __len__(self) -> int:
        return len(self.prompts)


@dataclass
class TrainBatch:
    """What a method's loss sees at one (micro-)step."""

    forget: EncodedPairs
    retain: EncodedPairs | None
    forget_ref_logprob: torch.Tensor | None  # (B,) summed reference log-prob of each forget target
    step: int


@dataclass
class TrainContext:
    """The model being trained and, when the method asked for it, a frozen reference."""

    model: torch.nn.Module
    config: TrainConfig
    tokenizer: Any = None  # for methods that build their own targets (refusals, reasoning traces)
    reference_logits: Callable[[EncodedPairs], torch.Tensor] | None = None


@dataclass
class TrainResult:
    lm: LoadedModel
    steps_done: int
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False


LossFn = Callable[[TrainContext, TrainBatch], "tuple[torch.Tensor, dict[str, float]]"]


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


def _sum_logprob(model: torch.nn.Module, pairs: EncodedPairs) -> torch.Tensor:
    return token_logprobs(model, pairs).sum(-1)


@torch.no_grad()
def reference_logprobs(model: torch.nn.Module, tokenizer, examples: Examples, max_length: int,
                       batch_size: int = 16) -> torch.Tensor:
    """Summed log p(target | prompt) of every example under the model as it is now: (N,). Computed once."""
    out = []
    for i in range(0, len(examples), batch_size):
        pairs = encode_pairs(tokenizer, examples.prompts[i : i + batch_size], examples.targets[i : i + batch_size],
                             max_length).to(next(model.parameters()).device)
        out.append(_sum_logprob(model, pairs).float().cpu())
    return torch.cat(out)


def _wrap_lora(model: torch.nn.Module, config: TrainConfig) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    targets: Any = config.lora_targets if config.lora_targets == "all-linear" else config.lora_targets.split(",")
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0, target_modules=targets)
    return get_peft_model(model, lora)


def _frozen_reference(model: torch.nn.Module, lora: bool) -> Callable[[EncodedPairs], torch.Tensor]:
    """Reference logits: LoRA's base model with adapters off (no copy), else a frozen copy of the weights."""
    if lora:
        def with_adapters_off(pairs: EncodedPairs) -> torch.Tensor:
            with torch.no_grad(), model.disable_adapter():
                return model(input_ids=pairs.input_ids, attention_mask=pairs.attention_mask).logits
        return with_adapters_off
    import copy

    frozen = copy.deepcopy(model).eval().requires_grad_(False)

    def from_copy(pairs: EncodedPairs) -> torch.Tensor:
        with torch.no_grad():
            return frozen(input_ids=pairs.input_ids, attention_mask=pairs.attention_mask).logits
    return from_copy


def _save_checkpoint(out_dir: Path, step: int, model: torch.nn.Module, optimizer, history: list) -> None:
    ckpt = out_dir / "checkpoint"
    tmp = out_dir / "checkpoint.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    trainable = {k: v.detach().cpu() for k, v in model.named_parameters() if v.requires_grad}
    torch.save({"params": trainable, "optimizer": optimizer.state_dict()}, tmp / "state.pt")
    (tmp / "progress.json").write_text(json.dumps({"step": step, "history": history}))
    shutil.rmtree(ckpt, ignore_errors=True)
    tmp.rename(ckpt)  # atomic: a crash mid-save leaves the previous checkpoint intact


def _load_checkpoint(out_dir: Path, model: torch.nn.Module, optimizer) -> tuple[int, list]:
    ckpt = out_dir / "checkpoint"
    if not (ckpt / "progress.json").exists():
        return 0, []
    state = torch.load(ckpt / "state.pt", map_location="cpu", weights_only=False)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state["params"].items():
            params[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    progress = json.loads((ckpt / "progress.json").read_text())
    return progress["step"], progress["history"]


def _retain_prompts(forget: Examples, retain: Examples | None, n: int = 4) -> list[str]:
    """The prompts whose answers the gibberish watch reads: the first retain prompts (forget ones without retain)."""
    return list((retain or forget).prompts[:n])


def _gibberish(lm: LoadedModel, prompts: list[str]) -> tuple[float, str]:
    """Share of greedy answers to `prompts` that are not language, and one such answer."""
    outputs = generate(lm, prompts, max_new_tokens=12)
    bad = [o for o in outputs if is_gibberish(o)]
    return len(bad) / len(outputs), (bad[0] if bad else "")


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


def run_training(
    lm: LoadedModel,
    loss_fn: LossFn,
    forget: Examples,
    retain: Examples | None = None,
    config: TrainConfig | None = None,
    *,
    needs_reference_logprobs: bool = False,
    needs_reference_model: bool = False,
    out_dir: str | Path | None = None,
    resume: bool = False,
    stop_check: Callable[[LoadedModel], bool] | None = None,
    description: str = "train",
) -> TrainResult:
    """Run `loss_fn` for `config.steps` optimizer steps on forget (and paired retain) batches.

    Args:
        lm: the model to update in place (wrapped in LoRA adapters when `config.lora`).
        loss_fn: `(ctx, batch) -> (loss, logs)`; methods provide it.
        forget / retain: the two example streams; retain batches are paired one-to-one with forget batches.
        needs_reference_logprobs: precompute the frozen model's forget log-probs once (NPO-style methods).
        needs_reference_model: keep a frozen reference for per-step logits (KL-style regularisers).
        out_dir: where checkpoints go; `resume=True` continues from the one there.
        stop_check: called every `config.check_every` steps; returning True ends training early.
    Raises:
        TrainingCollapseError: loss became NaN/inf or exceeded `config.collapse_loss`.
    """
    config = config or TrainConfig()
    if len(forget) == 0:
        raise ConfigError("the forget stream is empty: nothing to train on")
    torch.manual_seed(config.seed)
    accelerator = Accelerator(gradient_accumulation_steps=config.grad_accum, cpu=lm.device.type == "cpu")
    model = lm.model
    if config.lora and not hasattr(model, "disable_adapter"):
        model = _wrap_lora(model, config)
    model.train()
    if lm.device.type == "cpu":
        model.config.use_cache = False
    ref_lp = None
    if needs_reference_logprobs:
        ref_lp = reference_logprobs(model, lm.tokenizer, forget, config.max_length)
    reference = _frozen_reference(model, config.lora) if needs_reference_model else None
    before = None
    if config.ignore_k:
        before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    model, optimizer = accelerator.prepare(model, optimizer)

    start, history = 0, []
    if out_dir is not None and resume:
        start, history = _load_checkpoint(Path(out_dir), accelerator.unwrap_model(model), optimizer)
    ctx = TrainContext(model, config, lm.tokenizer, reference)
    micro = config.batch_size // config.grad_accum
    rank, world = accelerator.process_index, accelerator.num_processes
    bar = tqdm(total=config.steps, initial=start, desc=description,
               disable=not config.progress or not accelerator.is_main_process)
    stopped_early = False
    step = start

    def in_eval_mode(check: Callable[[LoadedModel], Any]) -> Any:
        """Run a check on the model being trained, in eval mode, then go back to training."""
        model.eval()
        try:
            return check(LoadedModel(accelerator.unwrap_model(model), lm.tokenizer, lm.source))
        finally:
            model.train()

    watch = _retain_prompts(forget, retain) if config.gibberish_every and start < config.steps else []
    if watch and in_eval_mode(lambda m: _gibberish(m, watch))[0] >= 0.5:
        watch = []  # the model did not answer in language before training (a random test model): nothing to watch
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
            batch = TrainBatch(
                forget=encode_pairs(lm.tokenizer, [forget.prompts[i] for i in fi], [forget.targets[i] for i in fi],
                                    config.max_length).to(accelerator.device),
                retain=encode_pairs(lm.tokenizer, [retain.prompts[i] for i in ri], [retain.targets[i] for i in ri],
                                    config.max_length).to(accelerator.device) if ri else None,
                forget_ref_logprob=ref_lp[fi].to(accelerator.device) if ref_lp is not None else None,
                step=step,
            )
            with accelerator.accumulate(model):
                loss, logs = loss_fn(ctx, batch)
                if not torch.isfinite(loss) or abs(loss.item()) > config.collapse_loss:
                    raise TrainingCollapseError(
                        f"{description}: loss is {loss.item():.4g} at step {step}; the run collapsed. "
                        "Lower lr or steps, or add a retain term (e.g. graddiff / npo with retain)."
                    )
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.max_grad_norm:
                    accelerator.clip_grad_norm_(params, config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            for k, v in {"loss": loss.item(), **logs}.items():
                logs_sum[k] = logs_sum.get(k, 0.0) + v / config.grad_accum
        history.append({"step": step + 1, **logs_sum})
        bar.set_postfix({k: f"{v:.3g}" for k, v in list(logs_sum.items())[:4]})
        bar.update(1)
        done = step + 1
        if out_dir is not None and config.checkpoint_every and done % config.checkpoint_every == 0:
            if accelerator.is_main_process:
                _save_checkpoint(Path(out_dir), done, accelerator.unwrap_model(model), optimizer, history)
            accelerator.wait_for_everyone()
        if stop_check is not None and config.check_every and done % config.check_every == 0 and done < config.steps:
            if in_eval_mode(stop_check):
                stopped_early = True
                break
        if watch and done % config.gibberish_every == 0:
            share, example = in_eval_mode(lambda m: _gibberish(m, watch))
            if share >= config.gibberish_share:
                raise TrainingCollapseError(
                    f"{description}: at step {done}, {share:.0%} of the greedy answers to retain prompts are "
                    f"gibberish (e.g. {example!r}); the run collapsed. Lower lr or steps, or add a retain term."
                )
    bar.close()
    model = accelerator.unwrap_model(model)
    if before is not None:
        _prune_updates(model, before, config.ignore_k)
    model.eval()
    steps_done = history[-1]["step"] if history else start
    if not math.isfinite(steps_done):
        raise AssertionError("history corrupted")
    return TrainResult(LoadedModel(model, lm.tokenizer, lm.source), int(steps_done), history, stopped_early)


def config_dict(config: TrainConfig) -> dict:
    return asdict(config)
