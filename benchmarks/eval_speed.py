"""How long a full forget card takes: every metric on up to 200 facts per split x all forms, timed per family.

    nice -n 5 python benchmarks/eval_speed.py                      # default model, people:benchmark, 200 facts
    python benchmarks/eval_speed.py --max-facts 20 --model tiny    # seconds, for a smoke test
    python benchmarks/eval_speed.py --json out.json
    python benchmarks/eval_speed.py --dtype bfloat16               # opt-in bf16 compute (CPUs with bf16 units)
    python benchmarks/eval_speed.py --task builtin:realfacts:forget60 --max-facts 60 --metrics forms --compare-shared-prefix

The model under test and a second copy as the reference/original are both loaded, so the reference-side
passes (forget quality, PrivLeak, perplexity ratio) are included in the timing. The per-form metric runs
first: its probes are cached and reused by form gap, abstention, over-refusal, model utility and MUSE, so its
time is the shared base cost and theirs is what they add. Prints one row per metric and per family (file).
`--compare-shared-prefix` first runs the same card with every prompt run whole (`scoring.SHARED_PREFIX_MIN`
out of reach), then the timed card, and prints both times and how many per-form accuracies differ.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import torch

from obliviate import scoring
from obliviate.card import evaluate
from obliviate.data.tasks import load
from obliviate.metrics import METRICS, EvalConfig
from obliviate.models import load_model


def accuracy_cells_that_differ(a, b) -> int:
    """How many (split, form) accuracies of the per-form metric differ between two cards of the same model."""
    va, vb = a.metrics["forms"]["values"], b.metrics["forms"]["values"]
    return sum(va[s][f]["accuracy"] != vb[s][f]["accuracy"] for s in va for f in va[s] if "accuracy" in va[s][f])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="model spec (default, tiny, a directory, a hub id)")
    parser.add_argument("--task", default="builtin:people:benchmark:forget10")
    parser.add_argument("--max-facts", type=int, default=200, help="facts per split")
    parser.add_argument("--batch-size", type=int, default=EvalConfig.batch_size, help="prompts per forward pass")
    parser.add_argument("--metrics", default=None, help="comma-separated names (default: the card's default set, "
                        "which leaves out opt-in lm_eval_utility)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--dtype", default=None, help="compute dtype, as `obliviate eval --dtype` (default: float32 on CPU)")
    parser.add_argument("--json", type=Path, default=None, help="write the timings here")
    parser.add_argument("--compare-shared-prefix", action="store_true",
                        help="also time the card with every prompt run whole, side by side")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    started = time.perf_counter()
    lm, other = load_model(args.model, dtype=args.dtype), load_model(args.model, dtype=args.dtype)
    task = load(args.task)
    load_s = time.perf_counter() - started
    names = args.metrics.split(",") if args.metrics else [n for n, cls in METRICS.items() if cls.default]
    names = sorted(names, key=lambda n: n != "forms")  # the shared probe cache is filled first
    config = EvalConfig(max_facts=args.max_facts, batch_size=args.batch_size)
    whole = None
    if args.compare_shared_prefix:
        shared_min, scoring.SHARED_PREFIX_MIN = scoring.SHARED_PREFIX_MIN, 10**9
        started = time.perf_counter()
        whole = evaluate(lm, task, names, reference=other, original=other, config=config), time.perf_counter() - started
        scoring.SHARED_PREFIX_MIN = shared_min
    started = time.perf_counter()
    card = evaluate(lm, task, names, reference=other, original=other, config=config)
    total = time.perf_counter() - started

    rows, families = [], {}
    for name in names:
        entry = card.metrics[name]
        family = METRICS.get(name).__module__.rsplit(".", 1)[-1]
        seconds = entry.get("seconds", 0.0)
        rows.append({"metric": name, "family": family, "seconds": seconds, "skipped": "skipped" in entry})
        families[family] = families.get(family, 0.0) + seconds
    sizes = {s: min(len(task.split(s)), args.max_facts) for s in ("forget", "retain", "neighbours", "general", "holdout")}
    print(f"task {task.name}: facts per split {sizes}; model {args.model} ({card.config['dtype']}); "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'metric':<16}{'family':<12}{'seconds':>9}{'share':>8}")
    for r in rows:
        note = "  (skipped: does not apply)" if r["skipped"] else ""
        print(f"{r['metric']:<16}{r['family']:<12}{r['seconds']:>9.1f}{r['seconds'] / total:>8.0%}{note}")
    print(f"{'family totals':<28}")
    for family, seconds in sorted(families.items(), key=lambda kv: -kv[1]):
        print(f"{'':<16}{family:<12}{seconds:>9.1f}{seconds / total:>8.0%}")
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"total card {total:.1f} s (+ {load_s:.1f} s loading two models); peak RSS {peak_gib:.2f} GiB")
    differ = None if whole is None else accuracy_cells_that_differ(whole[0], card)
    if whole is not None:
        print(f"every prompt run whole: {whole[1]:.1f} s; a shared prefix run once: {total:.1f} s "
              f"({whole[1] / total:.2f}x faster); per-form accuracies that differ: {differ}")
    if args.json:
        compared = {} if whole is None else {"whole_prompts_seconds": round(whole[1], 2),
                                             "accuracy_cells_that_differ": differ}
        args.json.write_text(json.dumps({**compared,
            "task": task.name, "model": args.model, "dtype": card.config["dtype"], "max_facts": args.max_facts,
            "facts": sizes,
            "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
            "total_seconds": round(total, 2), "load_seconds": round(load_s, 2), "peak_rss_gib": round(peak_gib, 2),
            "metrics": rows, "families": {k: round(v, 2) for k, v in families.items()},
        }, indent=2))
        print(f"timings -> {args.json}")


if __name__ == "__main__":
    main()
