"""Teaching builtin:people: seconds and QA accuracy per split for several teaching configs, side by side.

Each config teaches a fresh copy of the base model (not the cache) and is then asked every forget, retain and
holdout (never taught) fact as plain QA under the strict judge. The default TeachConfig was chosen with it.

    python benchmarks/teach.py                                   # 5 and 10 epochs, fp32
    python benchmarks/teach.py --configs 10:1e-4:bf16 --json teach.json
"""

from __future__ import annotations

import argparse
import json
import time


def measure(people: str, epochs: float, lr: float, precision: str) -> dict:
    from obliviate.data.forms import probes
    from obliviate.data.people import people_task
    from obliviate.methods.base import target_nll
    from obliviate.models import load_model
    from obliviate.scoring import score_probes
    from obliviate.teach import TeachConfig, teach_examples
    from obliviate.train import TrainConfig, run_training

    task = people_task(people)
    lm = load_model("default")
    examples = teach_examples(task)
    base = TeachConfig()
    steps = max(1, round(epochs * len(examples) / base.batch_size))
    config = TrainConfig(steps=steps, lr=lr, batch_size=base.batch_size, seed=base.seed,
                         warmup_steps=base.warmup_steps, mixed_precision=precision, progress=False)
    started = time.perf_counter()
    taught = run_training(lm, lambda ctx, b: (target_nll(ctx.model, b.forget), {}), examples, None, config).lm
    seconds = time.perf_counter() - started
    row = {"people": people, "epochs": epochs, "lr": lr, "precision": precision, "steps": steps, "seconds": seconds}
    for split in ("forget", "retain", "holdout"):
        asked = [p for f in task.split(split) for p in probes(f, "qa")]
        row[f"{split}_qa"] = sum(r.correct for r in score_probes(taught, asked)) / len(asked)
        row[f"{split}_n"] = len(asked)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", default="small", help="builtin:people size")
    parser.add_argument("--configs", default="5:1e-4:no,10:1e-4:no", help="epochs:lr:precision, comma-separated")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    rows = []
    print(f"{'epochs':>6} {'lr':>7} {'prec':>5} {'steps':>5} {'min':>5} {'forget':>7} {'retain':>7} {'holdout':>7}")
    for spec in args.configs.split(","):
        epochs, lr, precision = spec.split(":")
        row = measure(args.people, float(epochs), float(lr), precision)
        rows.append(row)
        print(f"{row['epochs']:>6g} {row['lr']:>7g} {row['precision']:>5} {row['steps']:>5} {row['seconds'] / 60:>5.1f} "
              f"{row['forget_qa']:>7.2f} {row['retain_qa']:>7.2f} {row['holdout_qa']:>7.2f}", flush=True)
    print(f"n: forget {rows[0]['forget_n']}, retain {rows[0]['retain_n']}, holdout {rows[0]['holdout_n']} QA probes")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
