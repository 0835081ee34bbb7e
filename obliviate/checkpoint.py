"""Training checkpoints that resume exactly: weights, optimizer, the method's own state, every process's RNG.

A checkpoint also records the identity of its run (method, method settings, training settings, seed, number of
processes): `--resume` with anything else is refused with one line, since it would silently mix two runs.
Written atomically (a crash mid-save keeps the previous checkpoint); each process saves its own RNG state.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from obliviate.errors import ConfigError


@dataclass
class Checkpoint:
    """What `load` found in a run folder; `restore` puts the tensors back."""

    path: Path
    step: int
    history: list[dict]
    identity: dict
    # "params" (trainable weights), "optimizer", "method" (the objective's own state), "stop" (the stop check's)
    state: dict[str, Any]


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def exists(out_dir: str | Path) -> bool:
    """Whether `out_dir` holds a checkpoint to resume from."""
    return (Path(out_dir) / "checkpoint" / "progress.json").exists()


def save(out_dir: Path, step: int, model: torch.nn.Module, optimizer, history: list, method_state: dict,
         identity: dict, accelerator, stop_state: dict | None = None) -> None:
    """Write `out_dir/checkpoint` (every process must call this: each adds its RNG state). `stop_state`: the stop
    check's own state (the `--until` curve and best weights), when it has one."""
    ckpt, tmp = out_dir / "checkpoint", out_dir / "checkpoint.partial"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    torch.save(_rng_state(), tmp / f"rng-{accelerator.process_index}.pt")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        trainable = {k: v.detach().cpu() for k, v in model.named_parameters() if v.requires_grad}
        torch.save({"params": trainable, "optimizer": optimizer.state_dict(), "method": method_state,
                    "stop": stop_state}, tmp / "state.pt")
        (tmp / "progress.json").write_text(json.dumps({"step": step, "history": history, "identity": identity}))
        shutil.rmtree(ckpt, ignore_errors=True)
        tmp.rename(ckpt)  # atomic: a crash mid-save leaves the previous checkpoint intact
    accelerator.wait_for_everyone()


def load(out_dir: Path, device: torch.device) -> Checkpoint | None:
    """The checkpoint in `out_dir`, or None when there is none (a fresh run)."""
    path = out_dir / "checkpoint"
    if not exists(out_dir):
        return None
    progress = json.loads((path / "progress.json").read_text())
    state = torch.load(path / "state.pt", map_location=device, weights_only=False)
    return Checkpoint(path, progress["step"], progress["history"], progress["identity"], state)


def check_identity(ckpt: Checkpoint, identity: dict) -> None:
    """Refuse a checkpoint written by another run (method, settings, seed or number of processes differ)."""
    now, saved = _flat(json.loads(json.dumps(identity))), _flat(ckpt.identity)  # json: tuples -> lists, as saved
    diff = sorted(k for k in set(now) | set(saved) if now.get(k) != saved.get(k))
    if diff:
        parts = "; ".join(f"{k}: checkpoint {saved.get(k)!r}, this run {now.get(k)!r}" for k in diff)
        raise ConfigError(f"the checkpoint in {ckpt.path} belongs to another run ({parts}); resume with the same "
                          "settings, or use another --out to start afresh")


def _flat(d: dict, prefix: str = "") -> dict:
    """{"train": {"lr": 1}} -> {"train.lr": 1}, so that a mismatch names the one setting that differs."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def restore(ckpt: Checkpoint, model: torch.nn.Module, optimizer, rank: int) -> None:
    """Put the checkpoint's trainable weights, optimizer state and this process's RNG state back."""
    state = ckpt.state
    params = dict(model.named_parameters())
    missing = sorted(set(state["params"]) - set(params))
    if missing:
        raise ConfigError(f"the checkpoint in {ckpt.path} holds parameters this model lacks (e.g. {missing[0]}); "
                          "resume with the model the run started from")
    with torch.no_grad():
        for name, value in state["params"].items():
            params[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    rng = ckpt.path / f"rng-{rank}.pt"
    if not rng.exists():
        raise ConfigError(f"the checkpoint in {ckpt.path} has no RNG state for process {rank}")
    _set_rng_state(torch.load(rng, weights_only=False))
