"""What sampling every steering setting in one batch saves activation_steering, on the real model, side by side.

AnonAct draws `SAMPLES_PER_SETTING` answers under each (layer, c) setting of each target. Before 2026-12-08 each
setting ran its own prompt pass and decode loop (8 rows); now several settings share one batch, each row with its
own steering vector (`RowSteering`, rows followed as they finish). Each row of the table runs the whole attack on
the same targets in one process with `SETTINGS_PER_BATCH` set; recovered counts differ only by the random streams.

    python benchmarks/steering_batch.py --json steering_batch.json
    python benchmarks/steering_batch.py --facts 10 --batches 8,1      # quicker
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--task", default="builtin:realfacts:forget60")
    parser.add_argument("--facts", type=int, default=30, help="forget facts attacked")
    parser.add_argument("--samples", type=int, default=8, help="(layer, c) settings (the attack's budget.samples)")
    parser.add_argument("--batches", default="8,1", help="comma-separated SETTINGS_PER_BATCH values, run in order")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()

    import obliviate.attacks.activation_steering as steering
    from obliviate.attacks.base import AttackContext, Budget, find_targets
    from obliviate.models import load_model
    from obliviate.pipeline import load_task

    lm = load_model(args.model)
    ctx = AttackContext(load_task(args.task, lm), None, Budget(samples=args.samples, seconds=1e9,
                                                               max_facts=args.facts))
    ctx.targets = find_targets(ctx)  # no original model given: the first `facts` forget facts
    rows = []
    for per_batch in (int(b) for b in args.batches.split(",")):
        steering.SETTINGS_PER_BATCH = per_batch
        started = time.perf_counter()
        result = steering.ActivationSteering().run(lm, ctx)
        rows.append({"settings_per_batch": per_batch, "seconds": time.perf_counter() - started,
                     "recovered": sum(o.recovered for o in result.outcomes), "n": len(result.outcomes),
                     "settings": result.details["settings"]})
    base = next((r["seconds"] for r in rows if r["settings_per_batch"] == 1), None)
    print(f"{'settings per batch':>19}{'seconds':>9}{'x vs 1':>8}{'recovered':>11}")
    for r in rows:
        ratio = f"{base / r['seconds']:.2f}" if base else "-"
        print(f"{r['settings_per_batch']:>19}{r['seconds']:>9.1f}{ratio:>8}{r['recovered']:>7}/{r['n']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
