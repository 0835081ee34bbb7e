"""Data parallelism changes nothing: N processes with batch B train exactly like one process with batch N·B.

Two CPU processes synchronise over gloo (`torch.distributed.run`, what `accelerate launch --multi_gpu` starts).
Every gradient method is run either way from the same tiny model and must end at the same weights; a method
whose loss couples the rows of a batch refuses to run data-parallel with a one-line error instead.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from obliviate.methods import METHODS
from obliviate.models import tiny_model

WORKER = Path(__file__).with_name("_multiprocess_worker.py")
GRADIENT = [n for n, m in METHODS.items() if not m.training_free]
SINGLE = [n for n in GRADIENT if METHODS.get(n).single_process]
TWO = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]  # a free port


def _relative_difference(a: dict, b: dict) -> float:
    """‖update_a − update_b‖ / ‖update_a‖ over all weights, updates measured from the shared starting model.

    Compared as whole update vectors: the all-reduce sums gradients in another order (float noise only).
    """
    start = tiny_model().model.state_dict()
    assert a.keys() == b.keys()
    ua = torch.cat([(a[k].float() - start[k].float()).flatten() for k in sorted(a)])
    ub = torch.cat([(b[k].float() - start[k].float()).flatten() for k in sorted(a)])
    assert ua.norm() > 0, "the run did not train"
    return ((ua - ub).norm() / ua.norm()).item()


def test_every_gradient_method_trains_the_same_on_two_processes(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    methods = ",".join(GRADIENT)
    one = subprocess.run([sys.executable, str(WORKER), str(tmp_path / "one"), "4", methods],
                         capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([*TWO, str(WORKER), str(tmp_path / "two"), "2", methods], capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-2000:]
    for name in GRADIENT:
        if name in SINGLE:
            error = (tmp_path / "two" / f"{name}.error").read_text()
            assert "cannot run data-parallel" in error and "\n" not in error, name
            assert (tmp_path / "one" / f"{name}.pt").exists(), f"{name} must still run in one process"
            continue
        a, b = (torch.load(tmp_path / d / f"{name}.pt") for d in ("one", "two"))
        assert _relative_difference(a, b) < 1e-4, name


def test_single_process_methods_are_the_ones_that_couple_rows():
    assert set(SINGLE) == {"wpn", "roka"}


@pytest.mark.skipif(shutil.which("accelerate") is None, reason="accelerate CLI not on PATH")
def test_the_cli_under_accelerate_launch_matches_one_process(tmp_path):
    """The command line under `accelerate launch` (rank 0 saves) with a retain term: NPO's default."""
    args = ["unlearn", "--model", "tiny", "--task", "builtin:people:test", "--method", "npo", "--steps", "3",
            "--lr", "1e-3", "--checkpoint-every", "0"]
    one = subprocess.run([sys.executable, "-m", "obliviate", *args, "--batch-size", "4", "--out", str(tmp_path / "one")],
                         capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-2000:]
    # `--cpu` selects accelerate's single-process launcher; `--multi_gpu` is its torchrun launcher, which our
    # loop runs on CPU processes (gloo) when no GPU is present.
    two = subprocess.run(["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                          "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "obliviate", *args,
                          "--batch-size", "2", "--out", str(tmp_path / "two")], capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-2000:]
    a = load_file(tmp_path / "one" / "model" / "model.safetensors")
    b = load_file(tmp_path / "two" / "model" / "model.safetensors")
    assert _relative_difference(a, b) < 1e-4
