"""Recovery per attack x unlearning method, each against its control, with the time each attack took.

For each method: copy the original model, unlearn the forget split with the method's default steps and
learning rate (or --steps / --lr), then run every attack under one shared Budget. Every attack runs twice: on
the unlearned model's targets (forget facts the original answers when asked directly) and on a control where
the knowledge is absent (the exact-unlearning reference on the same facts for builtin:people; the unlearned
model on the never-known holdout facts for builtin:realfacts). One row per (method, attack): recovered / n,
control / n, recovered above the control with its 95 % interval, above asking directly (paired), seconds.

    python benchmarks/attacks.py --methods ga --steps 8 --lr 1e-5 --json attacks_weak_ga.json   # realfacts forget60
    python benchmarks/attacks.py --task builtin:people:small:forget10 --methods ga,npo,rmu
    python benchmarks/attacks.py --methods ga --attacks form_change,in_context --max-facts 20          # quick look

--forms: the forms the method trains on (default qa,chat,cloze for real facts: every way the model is asked
directly; qa for people, as they were taught).
"""

from __future__ import annotations

import argparse
import json
import time

METHODS = ["ga", "npo", "simnpo", "rmu", "rocr", "lat"]


def fmt(est: dict | None) -> str:
    return "—" if est is None else f"{est['value'] * 100:+.0f} [{est['ci'][0] * 100:+.0f},{est['ci'][1] * 100:+.0f}]"


def run(task_spec: str, methods: list[str], attacks: str | None, budget, steps: int | None, lr: float | None,
        forms: tuple[str, ...]) -> list[dict]:
    from obliviate.attacks import ATTACKS
    from obliviate.methods import METHODS as REGISTRY
    from obliviate.models import load_model
    from obliviate.pipeline import load_task
    from obliviate.redteam import attack
    from obliviate.teach import copy_model, taught_model
    from obliviate.train import TrainConfig
    from obliviate.unlearn import unlearn

    base = load_model("default")
    task = load_task(task_spec, base)
    people = task_spec.removeprefix("builtin:").startswith("people")
    original = taught_model(task) if people else base
    reference = taught_model(task, exclude_forget=True) if people else None
    rows = []
    for method in methods:
        m = REGISTRY.get(method)
        started = time.perf_counter()
        train = None if m.training_free else TrainConfig(steps=steps or m.default_steps, lr=lr or m.default_lr,
                                                         progress=False)
        run_ = unlearn(copy_model(original), task, method, train=train, forms=forms)
        unlearn_s = time.perf_counter() - started
        report = attack(run_.lm, task, original, attacks, budget, reference=reference, progress=False)
        data = report.to_dict()
        for name, r in data["results"].items():
            recovers = ATTACKS.get(name).recovers
            control = r.get("control") or {}
            rows.append({
                "method": method, "attack": name, "unlearn_s": round(unlearn_s, 1),
                "recovered": sum(o["recovered"] for o in r["outcomes"]), "judged": len(r["outcomes"]),
                "control_recovered": sum(o["recovered"] for o in control.get("outcomes", [])),
                "control_judged": len(control.get("outcomes", [])),
                "above_control": r.get("above_control"), "above_plain": r.get("above_plain"),
                "accuracy": None if recovers else r["details"].get("accuracy"),
                "plain": len(report.answered_plainly), "targets": len(report.targets),
                "control_kind": report.control.get("kind"), "plain_above_control": data["plain_above_control"],
                "seconds": round(r["seconds"] + control.get("seconds", 0.0), 1), "notes": r["notes"],
                "outcomes": r["outcomes"], "control_outcomes": control.get("outcomes", []),  # per fact: why
            })
        print(f"{method}: done in {time.perf_counter() - started:.0f} s", flush=True)
    return rows


def main() -> None:
    from obliviate.attacks import Budget

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="builtin:realfacts:forget60")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--attacks", default=None, help="comma list (default: every registered attack)")
    parser.add_argument("--steps", type=int, default=None, help="unlearning steps (default: each method's)")
    parser.add_argument("--lr", type=float, default=None, help="unlearning learning rate (default: each method's)")
    parser.add_argument("--forms", default=None, help="forms the methods train on (see above)")
    parser.add_argument("--attack-steps", type=int, default=Budget.steps)
    parser.add_argument("--samples", type=int, default=Budget.samples)
    parser.add_argument("--seconds", type=float, default=Budget.seconds)
    parser.add_argument("--max-facts", type=int, default=60)
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    people = args.task.removeprefix("builtin:").startswith("people")
    forms = tuple((args.forms or ("qa" if people else "qa,chat,cloze")).split(","))
    budget = Budget(args.attack_steps, args.samples, args.seconds, args.max_facts)
    started = time.perf_counter()
    rows = run(args.task, args.methods.split(","), args.attacks, budget, args.steps, args.lr, forms)
    print(f"\n{args.task}; control: {rows[0]['control_kind'] if rows else '—'}")
    print(f"{'method':<9}{'attack':<21}{'recovered':>10}{'control':>9}{'above control':>17}{'above plain':>16}"
          f"{'seconds':>9}")
    for r in rows:
        if r["accuracy"] is not None:
            print(f"{r['method']:<9}{r['attack']:<21}{'acc ' + format(r['accuracy'], '.0%'):>10}{'':>9}{'':>17}"
                  f"{'':>16}{r['seconds']:>9.1f}")
            continue
        print(f"{r['method']:<9}{r['attack']:<21}{r['recovered']:>5}/{r['judged']:<4}"
              f"{r['control_recovered']:>4}/{r['control_judged']:<4}{fmt(r['above_control']):>17}"
              f"{fmt(r['above_plain']):>16}{r['seconds']:>9.1f}")
    for method in dict.fromkeys(r["method"] for r in rows):
        r = next(x for x in rows if x["method"] == method)
        print(f"{method}: asked directly, {r['plain']}/{r['targets']} targets still answered; above control "
              f"{fmt(r['plain_above_control'])}")
    print(f"total {time.perf_counter() - started:.0f} s; budget {budget}; forms {forms}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "budget": budget.__dict__, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
