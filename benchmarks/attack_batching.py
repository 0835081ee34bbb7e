"""What batching saves the two sampling attacks, on the real model, side by side in one process.

- `best_of_n` draws `budget.samples` answers at T = 1 to every direct question (QA, chat turn, cloze) of each
  target; each pass over the prompts runs every prompt once and decodes `DRAWS_PER_PASS` answers from that one
  cache (1: how it ran before 2026-12-07, a full pass per draw).
- `activation_steering` draws `SAMPLES_PER_SETTING` answers under each (layer, c) setting of each target;
  `SETTINGS_PER_BATCH` settings share one batch, each row with its own steering vector (1: how it ran before
  2026-12-08, a prompt pass and decode loop per setting).

Each row runs the whole attack on the same targets with the constant set; recovered counts differ only by the
random streams.

    python benchmarks/attack_batching.py --attack best_of_n --values 4,1,8 --json best_of_n_passes.json
    python benchmarks/attack_batching.py --attack activation_steering --facts 10 --values 8,1
"""

from __future__ import annotations

import argparse
import json
import time

CONSTANTS = {"best_of_n": "DRAWS_PER_PASS", "activation_steering": "SETTINGS_PER_BATCH"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--attack", choices=sorted(CONSTANTS), required=True)
    parser.add_argument("--model", default="default")
    parser.add_argument("--task", default="builtin:realfacts:forget60")
    parser.add_argument("--facts", type=int, default=60, help="forget facts attacked")
    parser.add_argument("--samples", type=int, default=8, help="the attack's budget.samples (draws / settings)")
    parser.add_argument("--values", default="4,1", help="comma-separated values of the constant, run in order")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()

    import importlib

    from obliviate.attacks import ATTACKS
    from obliviate.attacks.base import AttackContext, Budget, find_targets
    from obliviate.models import load_model
    from obliviate.pipeline import load_task

    module = importlib.import_module(f"obliviate.attacks.{args.attack}")
    constant = CONSTANTS[args.attack]
    lm = load_model(args.model)
    ctx = AttackContext(load_task(args.task, lm), None, Budget(samples=args.samples, seconds=1e9,
                                                               max_facts=args.facts))
    ctx.targets = find_targets(ctx)  # no original model given: the first `facts` forget facts
    rows = []
    for value in (int(v) for v in args.values.split(",")):
        setattr(module, constant, value)
        started = time.perf_counter()
        result = ATTACKS.get(args.attack)().run(lm, ctx)
        rows.append({constant: value, "seconds": time.perf_counter() - started, "details": result.details,
                     "recovered": sum(o.recovered for o in result.outcomes), "n": len(result.outcomes)})
    base = next((r["seconds"] for r in rows if r[constant] == 1), None)
    print(f"{args.attack}: {constant}")
    print(f"{'value':>6}{'seconds':>9}{'x vs 1':>8}{'recovered':>11}")
    for r in rows:
        ratio = f"{base / r['seconds']:.2f}" if base else "-"
        print(f"{r[constant]:>6}{r['seconds']:>9.1f}{ratio:>8}{r['recovered']:>7}/{r['n']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2, default=str)


if __name__ == "__main__":
    main()
