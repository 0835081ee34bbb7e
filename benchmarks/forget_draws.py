"""How much one unlearning result depends on which facts were drawn to forget.

`builtin:realfacts:forgetN` draws its forget facts from those the model knows with a seed (stratified by relation:
every draw forgets as many capitals, authors… in proportion; the facts differ). For each seed this
unlearns a copy of the default model with the demo's recipe (the method's tuned steps and lr, trained on every
direct form) and asks forget, neighbour and retain facts as a chat turn and as a cloze, before and after; retain
is also split by relation: facts of the relation most forget facts share (capitals, in every draw of SmolLM2's
known facts) and the others. One row per seed with Wilson 95 % intervals; the spread across rows is the draw's
share of any single run's verdict.

    python benchmarks/forget_draws.py --seeds 0,1,2,3 --json forget_draws.json
    python benchmarks/forget_draws.py --method sand --forget 20 --seeds 0,1
    python benchmarks/forget_draws.py --seeds 0,1,2 --set retain_weight=3 --steps 40
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

FORMS = ("chat", "cloze")


def accuracies(lm, facts, form: str) -> dict[str, float]:
    """{fact id: accuracy of its probes in `form`} under the strict judge."""
    from obliviate.data.forms import probes
    from obliviate.metrics.forms import per_fact
    from obliviate.scoring import score_probes

    return per_fact(score_probes(lm, [p for f in facts for p in probes(f, form, lm.tokenizer)]))


def share(acc: dict[str, float], ids: list[str]) -> dict:
    """Mean accuracy over `ids` with its Wilson interval and n."""
    from obliviate.stats import proportion

    if not ids:
        return {"value": None, "ci": None, "n": 0}
    est = proportion(sum(acc[i] for i in ids), len(ids))
    return {"value": est.value, "ci": [est.lo, est.hi], "n": len(ids)}


def run(seed: int, n_forget: int, method: str, dtype: str, base, known, unknown, before,
        steps: int | None = None, lr: float | None = None, settings: dict | None = None) -> dict:
    from obliviate.data import tasks
    from obliviate.models import with_dtype
    from obliviate.teach import copy_model
    from obliviate.train import TrainConfig
    from obliviate.unlearn import make_method, unlearn

    task = tasks.load(f"builtin:realfacts:forget{n_forget}", facts=known, unknown=unknown, seed=seed)
    started = time.perf_counter()
    m = make_method(method, **(settings or {}))
    run_ = unlearn(copy_model(base), task, m, forms="auto",
                   train=TrainConfig(steps=steps or m.default_steps, lr=lr or m.default_lr, progress=False))
    seconds = time.perf_counter() - started
    asked = with_dtype(run_.lm, dtype)
    relations = Counter(f.relation for f in task.forget).most_common()
    top = relations[0][0]
    retain = task.retain[:80]
    groups = {"forget": [f.id for f in task.forget], "neighbours": [f.id for f in task.neighbours],
              "retain": [f.id for f in retain],
              "retain_top_relation": [f.id for f in retain if f.relation == top],
              "retain_other_relations": [f.id for f in retain if f.relation != top]}
    facts = task.forget + task.neighbours + retain
    row = {"seed": seed, "method": method, "unlearn_s": round(seconds, 1), "forget_relations": dict(relations),
           "top_relation": top}
    for form in FORMS:
        after = accuracies(asked, facts, form)
        for name, ids in groups.items():
            row[f"{name}.{form}"] = {"before": share(before[form], ids), "after": share(after, ids)}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2,3", help="comma-separated draw seeds")
    parser.add_argument("--forget", type=int, default=20, help="forget facts per draw")
    parser.add_argument("--method", default="npo")
    parser.add_argument("--steps", type=int, help="training steps (default: the method's)")
    parser.add_argument("--lr", type=float, help="learning rate (default: the method's)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting of the method, e.g. retain_weight=3 (repeatable)")
    parser.add_argument("--dtype", default="auto", help="compute dtype of the questions (auto: bf16 where fast)")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()

    from obliviate.known import known_and_unknown
    from obliviate.models import fast_bfloat16, load_model, with_dtype
    from obliviate.pipeline import parse_settings
    from obliviate.teach import copy_model

    started = time.perf_counter()
    dtype = ("bfloat16" if fast_bfloat16() else "float32") if args.dtype == "auto" else args.dtype
    base = load_model("default")
    original = with_dtype(copy_model(base), dtype)
    known, unknown = known_and_unknown(original)
    before = {form: accuracies(original, known, form) for form in FORMS}  # every draw's facts, asked once
    settings = parse_settings(args.set)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        rows.append(run(seed, args.forget, args.method, dtype, base, known, unknown, before,
                        args.steps, args.lr, settings))
        print(f"seed {seed}: {rows[-1]['unlearn_s']:.0f} s unlearning", flush=True)

    def cell(entry: dict) -> str:
        b, a = entry["before"], entry["after"]
        return f"{b['value']:.2f}→{a['value']:.2f} [{a['ci'][0]:.2f},{a['ci'][1]:.2f}]" if a["n"] else "—"

    columns = ["forget.chat", "forget.cloze", "neighbours.chat", "retain.chat", "retain.cloze",
               "retain_top_relation.cloze", "retain_other_relations.cloze"]
    print(f"\n{args.method}, {args.forget} forget facts per draw, {len(known)} known facts; before→after [95 % CI of "
          "after]")
    print(f"{'seed':<6}{'top relation':>16}  " + "".join(f"{c:<30}" for c in columns))
    for r in rows:
        top = f"{r['top_relation']} {r['forget_relations'][r['top_relation']]}/{args.forget}"
        print(f"{r['seed']:<6}{top:>16}  "
              + "".join(f"{cell(r[c]) + ' n=' + str(r[c]['after']['n']):<30}" for c in columns))
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "dtype": dtype, "n_known": len(known), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
