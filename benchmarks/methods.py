"""Every unlearning method on builtin:people under one budget: forget accuracy per form, keep, time, memory.

Each method unlearns a fresh copy of the taught SmolLM2 (`obliviate.teach.taught_model`) with the same number
of steps and batch size (its own tuned learning rate), in its own subprocess so that peak memory is its own.
Accuracy is `scoring.score_probes` (greedy generation + judge for generative forms, best-scoring option for
MCQ and true/false) on: every form of the forget facts, QA of retain and neighbour facts, and QA of
builtin realfacts ("general": knowledge the base model had before teaching).
Training-free edits also report seconds per edited subject; ROCR's key statistics (computed once per model
and layer, then cached on disk) are timed apart as `stats s`, so `s/subject` is the cost of one more target.

    python benchmarks/methods.py                          # all methods, 20 steps, table on stdout
    python benchmarks/methods.py --methods ga,npo,rmu --steps 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

FORMS = ("qa", "cloze", "mcq", "true_false", "paraphrase", "two_hop")


def evaluate(lm, task, general) -> dict[str, float]:
    """Accuracy per forget form, and QA accuracy of retain / neighbours / general."""
    from obliviate.data.forms import probes
    from obliviate.scoring import score_probes

    def accuracy(facts, form):
        ps = [p for f in facts for p in probes(f, form)]
        return sum(r.correct for r in score_probes(lm, ps)) / len(ps) if ps else None

    row = {f"forget_{form}": accuracy(task.forget, form) for form in FORMS}
    row.update(retain=accuracy(task.retain, "qa"), neighbours=accuracy(task.neighbours, "qa"),
               general=accuracy(general, "qa"))
    return row


def run_one(method: str, args) -> dict:
    """Unlearn with one method (or none: "original") and evaluate; runs inside the subprocess."""
    import torch

    from obliviate.data.people import people_task
    from obliviate.data.realfacts import real_facts
    from obliviate.methods import METHODS
    from obliviate.teach import taught_model
    from obliviate.train import TrainConfig
    from obliviate.unlearn import unlearn

    torch.manual_seed(args.seed)
    task = people_task(args.config, args.forget)
    lm = taught_model(task, progress=False)
    seconds, steps, extra = 0.0, 0, {}
    if method != "original":
        cls = METHODS.get(method)
        if method == "rocr":  # one-time cost, cached per model and layer: not part of an edit
            from obliviate.editing.rank_one import key_second_moment

            started = time.perf_counter()
            for layer in cls().edit_layers(lm.model):
                key_second_moment(lm, layer)
            extra["stats_s"] = round(time.perf_counter() - started, 1)
        train = None if cls.training_free else TrainConfig(steps=args.steps, lr=cls.default_lr,
                                                           batch_size=args.batch_size, seed=args.seed, progress=False)
        started = time.perf_counter()
        run = unlearn(lm, task, method, train=train)
        seconds, steps, lm = time.perf_counter() - started, run.steps, run.lm
        if cls.training_free:
            extra["per_subject_s"] = round(seconds / len({f.subject for f in task.forget if f.subject}), 2)
    row = {"method": method, "steps": steps, "seconds": round(seconds, 1), **extra, **evaluate(lm, task, real_facts())}
    row["peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return row


def table(rows: list[dict]) -> str:
    cols = ["method", "steps", *(f"forget_{f}" for f in FORMS), "retain", "neighbours", "general", "seconds",
            "per_subject_s", "stats_s", "peak_mb"]
    heads = ["method", "steps", *FORMS, "retain", "neigh", "general", "time s", "s/subject", "stats s", "peak MB"]
    out = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            cells.append("—" if v is None else f"{v:.2f}" if isinstance(v, float) and c.startswith(
                ("forget", "retain", "neigh", "general")) else str(v))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="", help="comma-separated; default: every registered method")
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps for every gradient method")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--config", default="small", help="people config (test, small, benchmark)")
    parser.add_argument("--forget", default="forget10")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default="", help="also write the rows to this JSON file")
    parser.add_argument("--one", default="", help=argparse.SUPPRESS)  # internal: run one method, print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args)))
        return
    from obliviate.methods import METHODS

    methods = ["original", *(args.methods.split(",") if args.methods else METHODS.names())]
    rows = []
    for m in methods:
        cmd = [sys.executable, __file__, "--one", m, "--steps", str(args.steps), "--batch-size", str(args.batch_size),
               "--config", args.config, "--forget", args.forget, "--seed", str(args.seed)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{m}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            rows.append({"method": m, "error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"})
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{m}: done in {rows[-1]['seconds']} s", file=sys.stderr)
    print(table(rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
