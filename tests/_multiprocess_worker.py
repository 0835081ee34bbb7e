"""Run gradient methods for a few steps on the tiny model and save the final weights, for test_multiprocess.py.

    python tests/_multiprocess_worker.py OUT BATCH METHOD,METHOD,...            # one process
    python -m torch.distributed.run --nproc_per_node 2 tests/_multiprocess_worker.py OUT BATCH ...   # two

Writes OUT/<method>.pt (rank 0), or OUT/<method>.error with the one-line error when the method refuses to run.
"""

import os
import sys
from pathlib import Path

import torch

from obliviate.data.people import people_task
from obliviate.errors import ConfigError
from obliviate.models import tiny_model
from obliviate.train import TrainConfig
from obliviate.unlearn import unlearn


def main(out: Path, batch: int, methods: list[str]) -> None:
    task = people_task("test")
    main_process = os.environ.get("RANK", "0") == "0"  # no accelerate state of our own: run_training makes it
    for name in methods:
        try:
            run = unlearn(tiny_model(), task, name, train=TrainConfig(steps=3, lr=1e-3, batch_size=batch, progress=False))
        except ConfigError as e:
            if main_process:
                (out / f"{name}.error").write_text(str(e))
            continue
        if main_process:
            torch.save({k: v.detach().cpu() for k, v in run.lm.model.state_dict().items()}, out / f"{name}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(","))
