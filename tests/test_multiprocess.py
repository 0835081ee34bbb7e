"""`accelerate launch --multi_gpu --num_processes 2` on CPU gives the same model as one process with the same global batch."""

import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from obliviate.models import tiny_model

ARGS = ["unlearn", "--model", "tiny", "--task", "builtin:people:test", "--method", "simnpo",
        "--set", "retain_weight=0", "--steps", "3", "--lr", "1e-3", "--checkpoint-every", "0"]


@pytest.mark.skipif(shutil.which("accelerate") is None, reason="accelerate CLI not on PATH")
def test_two_processes_match_one(tmp_path):
    one = subprocess.run([sys.executable, "-m", "obliviate", *ARGS, "--batch-size", "4", "--out", str(tmp_path / "one")],
                         capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-2000:]
    # `--cpu` selects accelerate's single-process launcher; `--multi_gpu` is its torchrun launcher, which our
    # loop runs on CPU processes (gloo) when no GPU is present.
    two = subprocess.run(["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                          "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "obliviate", *ARGS,
                          "--batch-size", "2", "--out", str(tmp_path / "two")], capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-2000:]
    a = load_file(tmp_path / "one" / "model" / "model.safetensors")
    b = load_file(tmp_path / "two" / "model" / "model.safetensors")
    start = {k: v for k, v in tiny_model().model.state_dict().items() if k in a}
    assert a.keys() == b.keys() == start.keys()
    update_a = torch.cat([(a[k] - start[k]).flatten() for k in a])
    update_b = torch.cat([(b[k] - start[k]).flatten() for k in a])
    # Compared as whole update vectors: the all-reduce sums gradients in another order (float noise).
    assert update_a.norm() > 0
    assert (update_a - update_b).norm() / update_a.norm() < 1e-4
