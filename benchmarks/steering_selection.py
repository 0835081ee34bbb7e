"""How often activation_steering's selection names the answer on a model that knows it, against facts it does not.

The attack judges one word per fact: the one its steered samples name most (weighted by idf over the run's
questions). Its ceiling is what that selection gives on the ORIGINAL model, on forget facts it answers when asked
directly; its floor is the same run on holdout facts it never answers (a "recovery" there is the selection's own
luck). Each temperature runs both, side by side in one process, with the attack's budget.samples settings.

    python benchmarks/steering_selection.py --facts 30 --samples 4 --temperatures 1.0,0.7 --json steering_selection.json
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--task", default="builtin:realfacts:forget60")
    parser.add_argument("--facts", type=int, default=30, help="known forget facts, and as many holdout facts")
    parser.add_argument("--samples", type=int, default=4, help="the attack's budget.samples ((layer, c) settings)")
    parser.add_argument("--temperatures", default="1.0,0.7")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()

    from obliviate.attacks import activation_steering as module
    from obliviate.attacks.base import AttackContext, Budget, find_targets
    from obliviate.models import load_model
    from obliviate.pipeline import load_task
    from obliviate.stats import newcombe_difference

    lm = load_model(args.model)
    task = load_task(args.task, lm)
    budget = Budget(samples=args.samples, seconds=1e9, max_facts=len(task.forget))
    known = find_targets(AttackContext(task, lm, budget))[: args.facts]
    unknown = task.holdout[: args.facts]  # facts the original answers in no direct form
    rows = []
    for temperature in (float(t) for t in args.temperatures.split(",")):
        module.TEMPERATURE = temperature
        row: dict = {"temperature": temperature}
        for name, facts in (("known", known), ("holdout", unknown)):
            started = time.perf_counter()
            result = module.ActivationSteering().run(lm, AttackContext(task, lm, budget, list(facts)))
            row[name] = {"named": sum(o.recovered for o in result.outcomes), "n": len(result.outcomes),
                         "seconds_per_fact": (time.perf_counter() - started) / len(facts),
                         "settings": result.details["settings"], "outcomes": [o.__dict__ for o in result.outcomes]}
        row["difference"] = newcombe_difference(row["known"]["named"], row["known"]["n"],
                                                row["holdout"]["named"], row["holdout"]["n"])
        rows.append(row)
    print(f"{'T':>5}{'known':>9}{'holdout':>9}{'difference [95% CI]':>24}{'s/fact':>8}")
    for r in rows:
        d = r["difference"]
        print(f"{r['temperature']:>5}{r['known']['named']:>5}/{r['known']['n']:<3}{r['holdout']['named']:>5}/"
              f"{r['holdout']['n']:<3}{d.value * 100:>+9.0f} [{d.lo * 100:+.0f}, {d.hi * 100:+.0f}]"
              f"{r['known']['seconds_per_fact']:>8.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2, default=lambda e: e.to_dict())


if __name__ == "__main__":
    main()
