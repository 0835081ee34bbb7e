"""How much one unlearning result depends on which facts were drawn to forget.

`builtin:realfacts:forgetN` draws its forget facts from those the model knows with a seed (stratified by relation:
every draw forgets as many capitals, authors… in proportion; the facts differ). For each seed this
unlearns a copy of the default model with the demo's recipe (the method's tuned steps and lr, trained on every
direct form) and asks forget, neighbour and retain facts as a chat turn and as a cloze, before and after; retain
is also split by relation: facts of the relation most forget facts share (capitals, in every draw of SmolLM2's
known facts) and the others. One row per seed with Wilson 95 % intervals; the spread across rows is the draw's
share of any single run's verdict.

The JSON keeps every fact's accuracy before and after, so two settings run on the same seeds compare fact by fact:
`--compare A.json B.json` prints B − A per column, pooled over the draws both ran, with Newcombe's paired 95 %
interval (the same fact under two models), and in how many draws B was lower / higher. The pooled interval treats
(draw, fact) pairs as independent; facts trained together share their run's luck, so a second, cluster-robust
interval takes each draw as one cluster (`stats.clustered_paired_difference`): it is the one to read when the
draws disagree. Each row also keeps SAND's `still_said` refreshes and forget chat asked in the training dtype
(fp32) beside the asked dtype, to tell a suppression too thin to survive bf16 rounding from one never reached.

    python benchmarks/forget_draws.py --seeds 0,1,2,3 --json forget_draws.json
    python benchmarks/forget_draws.py --method sand --forget 20 --seeds 0,1
    python benchmarks/forget_draws.py --seeds 0,1,2 --set retain_weight=3 --steps 40
    python benchmarks/forget_draws.py --compare sand.json sand_lr6e-5.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

FORMS = ("chat", "cloze")
COLUMNS = ("forget.chat", "forget.cloze", "neighbours.chat", "retain.chat", "retain.cloze",
           "retain_top_relation.cloze", "retain_other_relations.cloze")


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
    forget_chat_trained = accuracies(run_.lm, task.forget, "chat")  # before any cast: the dtype it trained in
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
           "top_relation": top, "groups": groups,
           "still_said": [[h["step"], h["still_said"]] for h in run_.history if "still_said" in h],
           "forget.chat.trained_dtype": share(forget_chat_trained, groups["forget"]), "per_fact": {}}
    for form in FORMS:
        after = accuracies(asked, facts, form)
        row["per_fact"][form] = {"before": {f.id: before[form][f.id] for f in facts}, "after": after}
        for name, ids in groups.items():
            row[f"{name}.{form}"] = {"before": share(before[form], ids), "after": share(after, ids)}
    return row


def compare(first_path: str, second_path: str) -> list[dict]:
    """Second − first after unlearning, per column, over the seeds both files ran: pooled paired difference of
    the same facts and the per-draw signs. Facts must match (same draw: same seed, size and known list)."""
    from obliviate.stats import clustered_paired_difference, difference

    first, second = ({r["seed"]: r for r in json.load(open(p))["rows"]} for p in (first_path, second_path))
    seeds = sorted(set(first) & set(second))
    if not seeds:
        raise SystemExit(f"{first_path} and {second_path} share no seed")
    for path, rows in ((first_path, first), (second_path, second)):
        if any("per_fact" not in row for row in rows.values()):
            raise SystemExit(f"{path} holds no per-fact outcomes (written before they were kept): run it again")
    out = []
    for column in COLUMNS:
        group, form = column.split(".")
        a, b, draw, lower, higher = [], [], [], 0, 0
        for seed in seeds:
            ids = first[seed]["groups"][group]
            if ids != second[seed]["groups"][group]:
                raise SystemExit(f"seed {seed} drew other {group} facts in the two files: not the same draw")
            xs = [first[seed]["per_fact"][form]["after"][i] for i in ids]
            ys = [second[seed]["per_fact"][form]["after"][i] for i in ids]
            lower += sum(ys) < sum(xs)
            higher += sum(ys) > sum(xs)
            a, b, draw = a + xs, b + ys, draw + [seed] * len(ids)
        est = difference(b, a, paired=True)
        by_draw = clustered_paired_difference(b, a, draw) if len(set(draw)) > 1 else None
        out.append({"column": column, "n": len(a), "first": sum(a) / len(a) if a else None,
                    "second": sum(b) / len(b) if b else None, "difference": est.value, "ci": [est.lo, est.hi],
                    "ci_by_draw": [by_draw.lo, by_draw.hi] if by_draw else None,
                    "draws": len(seeds), "lower_in": lower, "higher_in": higher})
    return out


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
    parser.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"),
                        help="compare two earlier runs fact by fact (B − A) instead of running")
    args = parser.parse_args()
    if args.compare:
        rows = compare(*args.compare)
        print(f"B − A after unlearning; B = {args.compare[1]}, A = {args.compare[0]}; paired 95 % CI pooled over "
              f"{rows[0]['draws']} draws, then with each draw as one cluster")
        for r in rows:
            by_draw = f"[{r['ci_by_draw'][0]:+.2f}, {r['ci_by_draw'][1]:+.2f}]" if r["ci_by_draw"] else "—"
            print(f"{r['column']:<30} n={r['n']:<4} {r['first']:.2f} → {r['second']:.2f}  "
                  f"{r['difference']:+.2f} [{r['ci'][0]:+.2f}, {r['ci'][1]:+.2f}]  by draw {by_draw}  "
                  f"lower in {r['lower_in']}/{r['draws']} draws, higher in {r['higher_in']}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"args": vars(args), "rows": rows}, f, indent=2)
        return

    from obliviate.known import known_and_unknown
    from obliviate.models import fast_bfloat16, load_model, with_dtype
    from obliviate.pipeline import parse_settings
    from obliviate.teach import copy_model

    started = time.perf_counter()
    dtype = ("bfloat16" if fast_bfloat16() else "float32") if args.dtype == "auto" else args.dtype
    base = load_model("default")
    original = with_dtype(copy_model(base), dtype)
    known, unknown = known_and_unknown(base)
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

    print(f"\n{args.method}, {args.forget} forget facts per draw, {len(known)} known facts; before→after [95 % CI of "
          "after]")
    print(f"{'seed':<6}{'top relation':>16}  " + "".join(f"{c:<30}" for c in COLUMNS)
          + f"{'forget.chat as trained':<24}still said (step: share)")
    for r in rows:
        top = f"{r['top_relation']} {r['forget_relations'][r['top_relation']]}/{args.forget}"
        print(f"{r['seed']:<6}{top:>16}  "
              + "".join(f"{cell(r[c]) + ' n=' + str(r[c]['after']['n']):<30}" for c in COLUMNS)
              + f"{r['forget.chat.trained_dtype']['value']:<24.2f}"
              + " ".join(f"{step}:{said:.2f}" for step, said in r["still_said"]))
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "dtype": dtype, "n_known": len(known), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
