"""bfloat16 against float32 scoring on the same probes: how much faster, and how many verdicts change.

    OMP_NUM_THREADS=1 python benchmarks/dtype_agreement.py --threads 1             # 20 facts per split, ~2 min
    python benchmarks/dtype_agreement.py --max-facts 60 --json dtype.json

Both copies of the model score every probe (all forms) of the forget, retain, neighbours and general facts of
people:benchmark, and the TOFU truth ratios of those facts, side by side in one process. Prints seconds per
dtype, their ratio, the share of probes judged the same, and the mean / max change of answer probability and
log truth ratio. Whether bf16 is faster depends on the CPU: it needs bf16 units (AVX512-BF16 or AMX).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from obliviate.data.forms import FORMS, probes
from obliviate.data.tasks import load
from obliviate.metrics.tofu import log_truth_ratios
from obliviate.models import load_model
from obliviate.scoring import score_probes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--task", default="builtin:people:benchmark:forget10")
    parser.add_argument("--max-facts", type=int, default=20, help="facts per split")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    task = load(args.task)
    facts = [f for split in ("forget", "retain", "neighbours", "general") for f in task.split(split)[: args.max_facts]]
    asked = [p for f in facts for form in FORMS for p in probes(f, form)]
    runs = {}
    for dtype in ("float32", "bfloat16"):
        lm = load_model(args.model, dtype=dtype)
        started = time.perf_counter()
        results = score_probes(lm, asked)
        ratios = log_truth_ratios(lm, facts)
        runs[dtype] = {"results": results, "log_ratios": ratios, "seconds": time.perf_counter() - started}
    full, fast = runs["float32"], runs["bfloat16"]
    same = sum(a.correct == b.correct for a, b in zip(full["results"], fast["results"])) / len(asked)
    dprob = torch.tensor([abs(a.probability - b.probability) for a, b in zip(full["results"], fast["results"])])
    dlog = torch.tensor([abs(a - b) for a, b in zip(full["log_ratios"], fast["log_ratios"])])
    summary = {
        "probes": len(asked), "facts": len(facts), "threads": torch.get_num_threads(),
        "seconds_float32": round(full["seconds"], 1), "seconds_bfloat16": round(fast["seconds"], 1),
        "speedup": round(full["seconds"] / fast["seconds"], 2), "same_verdict": round(same, 4),
        "accuracy_float32": round(sum(r.correct for r in full["results"]) / len(asked), 4),
        "accuracy_bfloat16": round(sum(r.correct for r in fast["results"]) / len(asked), 4),
        "dprob_mean": round(float(dprob.mean()), 4), "dprob_max": round(float(dprob.max()), 4),
        "dlog_truth_ratio_mean": round(float(dlog.mean()), 4), "machine": platform.processor() or platform.machine(),
    }
    for key, value in summary.items():
        print(f"{key:<24}{value}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
        print(f"-> {args.json}")


if __name__ == "__main__":
    main()
