"""Concept drift, priming and RESTOR on the real SmolLM2: the numbers behind docs/metrics.md's table.

The same models and settings as tests/integration/test_metrics_real.py (which asserts on them); this script
prints the values instead. About 5 minutes on one core with the taught model cached.

    OMP_NUM_THREADS=1 python benchmarks/card_extras.py --json card_extras.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from obliviate.card import evaluate
from obliviate.data.people import people_task
from obliviate.data.schema import Task
from obliviate.known import known_real_facts
from obliviate.metrics import EvalConfig
from obliviate.models import load_model
from obliviate.restor import RestorConfig, restor
from obliviate.teach import TeachConfig, copy_model, taught_model, teach
from obliviate.train import TrainConfig
from obliviate.unlearn import unlearn

CONFIG = EvalConfig(max_facts=60)
GA = {"weak GA (10 steps, lr 1e-5)": 1e-5, "strong GA (10 steps, lr 3e-5)": 3e-5}


def values(lm, task, name, original) -> dict:
    return evaluate(lm, task, [name], original=original, config=CONFIG).metrics[name]["values"]


def scalars(d: dict) -> dict:
    """The numbers of one split's entry, rounded (lists and nested dicts left out)."""
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items() if not isinstance(v, (list, dict))}


def drift_row(lm, task, taught) -> dict:
    d = values(lm, task, "concept_drift", taught)
    return {"forget": scalars(d["forget"]), "retain": scalars(d["retain"]), "above_retain": d["drift_above_retain"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = parser.parse_args()
    task, base = people_task("small"), load_model("default")
    taught = taught_model(task, progress=False)
    out: dict = {"concept_drift": {}, "priming": {}}

    for label, lr in GA.items():
        torch.manual_seed(0)
        train = TrainConfig(steps=10, lr=lr, batch_size=8, progress=False)
        out["concept_drift"][label] = drift_row(unlearn(copy_model(taught), task, "ga", train=train).lm, task, taught)
    ablated = unlearn(copy_model(taught), task, "concept_ablation").lm
    out["concept_drift"]["concept_ablation"] = drift_row(ablated, task, taught)

    out["priming"]["taught model"] = scalars(values(taught, task, "priming", base)["forget"])
    fact = next(f for f in task.forget if f.relation == "birth_city")
    one = Task("one", forget=[fact])
    torch.manual_seed(0)
    learned = teach(copy_model(base), one, TeachConfig(epochs=20, lr=1e-4, batch_size=1, warmup_steps=0),
                    progress=False)
    out["priming"]["base + one fact (20 steps)"] = scalars(values(learned, one, "priming", base)["forget"])

    config = RestorConfig(method="ga", train=TrainConfig(steps=10, lr=2e-5, batch_size=8), progress=False)
    result = restor(base, known_real_facts(base), config)
    out["restor"] = {"models": {m: scalars(v) for m, v in result.models.items()}, "recovery": result.recovery,
                     "corruption_took": result.corruption_took}

    for section in ("concept_drift", "priming"):
        for label, row in out[section].items():
            print(f"{section:<14}{label:<32}{row}")
    print(f"{'restor':<14}{'GA 10 steps, lr 2e-5':<32}{out['restor']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
        print(f"numbers -> {args.json}")


if __name__ == "__main__":
    main()
