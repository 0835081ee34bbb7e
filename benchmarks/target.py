"""`--target` on several real names: forgetting per RWKU probe kind, neighbours and retain, per target and pooled.

For each name: build the task from the model (obliviate.target), unlearn with `--until forgotten` (NPO by
default, every direct form), then ask the original and the unlearned model RWKU's three probe kinds (the `rwku`
metric: fill-in-the-blank, QA, adversarial; strict-judge accuracy) on forget and neighbour facts, and the
`forms` metric on retain (chat turn) and on the holdout control. Pooled rows add up the facts of every
target (Wilson 95 % intervals on the pooled counts).

    python benchmarks/target.py --json target.json
    python benchmarks/target.py --targets "Albert Einstein,Japan" --method simnpo
"""

from __future__ import annotations

import argparse
import json
import time

KINDS = ("fb", "qa", "aa")


def cell(values: dict | None, split: str, kind: str) -> tuple[float, int]:
    """(facts answered, facts) of one split and RWKU kind (accuracy is a per-fact mean, so the count may be
    fractional for adversarial rewrites)."""
    v = (values or {}).get(split, {}).get(kind)
    return (v["accuracy"] * v["n"], v["n"]) if v else (0.0, 0)


def run_target(name: str, method: str) -> dict:
    from obliviate.card import evaluate
    from obliviate.methods import METHODS
    from obliviate.metrics import EvalConfig
    from obliviate.models import load_model
    from obliviate.target import build_target_task
    from obliviate.teach import copy_model
    from obliviate.train import TrainConfig
    from obliviate.unlearn import UNTIL_BUDGET, unlearn
    from obliviate.until import UntilConfig

    started = time.perf_counter()
    base = load_model("default")
    task = build_target_task(base, name)
    m = METHODS.get(method)
    run = unlearn(copy_model(base), task, method, forms="auto", until=UntilConfig(),
                  train=TrainConfig(steps=m.default_steps * UNTIL_BUDGET, lr=m.default_lr, progress=False))
    config = EvalConfig(max_facts=40)
    cards = {label: evaluate(lm, task, ["rwku", "forms"], config=config) for label, lm in
             (("original", base), ("unlearned", run.lm))}
    row = {"target": name, "method": method, "steps": run.steps, "until": run.config["until"]["message"],
           "forget_facts": len(task.forget), "neighbour_facts": len(task.neighbours), "seconds": 0.0}
    for label, card in cards.items():
        values = card.metrics["rwku"].get("values")
        for split in ("forget", "neighbours"):
            for kind in KINDS:
                row[f"{label}.{split}.{kind}"] = cell(values, split, kind)
        forms = card.metrics["forms"]["values"]
        for split in ("retain", "holdout"):
            v = forms[split]["chat"]
            row[f"{label}.{split}.chat"] = (v["accuracy"] * v["n"], v["n"])
    row["seconds"] = round(time.perf_counter() - started, 1)
    print(f"{name}: {row['forget_facts']} forget / {row['neighbour_facts']} neighbour facts, {run.steps} steps, "
          f"{row['seconds']:.0f} s; {row['until']}", flush=True)
    return row


def fmt(k: float, n: int) -> str:
    from obliviate.stats import proportion

    if not n:
        return "—"
    p = proportion(k, n)
    return f"{p.value:.2f} [{p.lo:.2f},{p.hi:.2f}] n={n}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", default="Albert Einstein,Japan,Isaac Newton")
    parser.add_argument("--method", default="npo")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = [run_target(name.strip(), args.method) for name in args.targets.split(",")]
    columns = [(s, k) for s in ("forget", "neighbours") for k in KINDS] + [("retain", "chat"), ("holdout", "chat")]
    print(f"\n{'target':<18}{'split.kind':<16}{'original':>30}{'unlearned':>30}")
    for r in [*rows, None]:
        label = r["target"] if r else "pooled"
        for split, kind in columns:
            key = f"{split}.{kind}"
            pairs = [(x[f"original.{key}"], x[f"unlearned.{key}"]) for x in ([r] if r else rows)]
            o = (sum(p[0][0] for p in pairs), sum(p[0][1] for p in pairs))
            u = (sum(p[1][0] for p in pairs), sum(p[1][1] for p in pairs))
            print(f"{label:<18}{key:<16}{fmt(*o):>30}{fmt(*u):>30}")
    print(f"total {time.perf_counter() - started:.0f} s; method {args.method}, --until forgotten, forms auto")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
