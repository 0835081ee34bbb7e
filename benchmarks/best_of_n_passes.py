"""What decoding several sampled answers per prompt pass saves best_of_n, on the real model, side by side.

`best_of_n` draws `budget.samples` answers at T = 1 to every direct question (QA, chat turn, cloze) of each
target. Each pass over the prompts runs every prompt once (prefill + the teacher-forced answer probability)
and decodes `DRAWS_PER_PASS` answers from that one cache; 1 is how it ran before (a full pass per draw).
Each row runs the attack on the same targets in one process; the recovered counts differ only by the random
streams (one generator per pass).

    python benchmarks/best_of_n_passes.py --json best_of_n_passes.json
    python benchmarks/best_of_n_passes.py --facts 20 --passes 1,4      # quicker
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--task", default="builtin:realfacts:forget60")
    parser.add_argument("--facts", type=int, default=60, help="forget facts attacked")
    parser.add_argument("--samples", type=int, default=8, help="answers drawn per question")
    parser.add_argument("--passes", default="4,1,8", help="comma-separated DRAWS_PER_PASS values, run in order")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()

    import obliviate.attacks.best_of_n as best_of_n
    from obliviate.attacks.base import AttackContext, Budget, find_targets
    from obliviate.models import load_model
    from obliviate.pipeline import load_task

    lm = load_model(args.model)
    ctx = AttackContext(load_task(args.task, lm), None, Budget(samples=args.samples, seconds=1e9,
                                                               max_facts=args.facts))
    ctx.targets = find_targets(ctx)  # no original model given: the first `facts` forget facts
    rows = []
    for per_pass in (int(p) for p in args.passes.split(",")):
        best_of_n.DRAWS_PER_PASS = per_pass
        started = time.perf_counter()
        result = best_of_n.BestOfN().run(lm, ctx)
        rows.append({"draws_per_pass": per_pass, "seconds": time.perf_counter() - started,
                     "recovered": sum(o.recovered for o in result.outcomes), "n": len(result.outcomes),
                     "recovered_after_k_samples": result.details["recovered_after_k_samples"]})
    base = next((r["seconds"] for r in rows if r["draws_per_pass"] == 1), None)
    print(f"{'draws per pass':>15}{'seconds':>9}{'x vs 1':>8}{'recovered':>11}")
    for r in rows:
        ratio = f"{base / r['seconds']:.2f}" if base else "-"
        print(f"{r['draws_per_pass']:>15}{r['seconds']:>9.1f}{ratio:>8}{r['recovered']:>7}/{r['n']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
