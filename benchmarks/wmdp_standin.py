"""RMU in WMDP's setting on a benign stand-in: WMDP-layout files written from builtin real facts the model knows.

The repository holds no hazardous knowledge, so this shows the WMDP path end to end on benign facts: the forget
and retain splits are written as WMDP rows (`question`, four `choices`, `answer` index) and read back through
`format: wmdp`, exactly as a user's own WMDP files would be; RMU unlearns the forget split (every direct form);
the `wmdp` metric (lm-eval with WMDP's prompt) reports accuracy per split with its interval, before and after.
Forget rows are the known facts of one relation group (e.g. capitals), retain rows other known facts.

    python benchmarks/wmdp_standin.py --json wmdp_standin.json
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path


def write_rows(facts, path: Path) -> None:
    path.write_text("".join(json.dumps({"question": f.mcq.question, "choices": list(f.mcq.options),
                                        "answer": f.mcq.answer_index}) + "\n" for f in facts), encoding="utf-8")


def main() -> None:
    from obliviate.card import evaluate
    from obliviate.data.io import load_task
    from obliviate.known import known_real_facts
    from obliviate.methods import METHODS
    from obliviate.metrics import EvalConfig
    from obliviate.models import load_model
    from obliviate.teach import copy_model
    from obliviate.train import TrainConfig
    from obliviate.unlearn import unlearn

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--relation", default="capital", help="relation whose known facts are forgotten")
    parser.add_argument("--method", default="rmu")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--forget", type=int, default=60)
    parser.add_argument("--retain", type=int, default=60)
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args()
    started = time.perf_counter()
    base = load_model("default")
    known = [f for f in known_real_facts(base) if f.mcq]
    rng = random.Random(0)
    forget = [f for f in known if f.relation == args.relation][: args.forget]
    retain = rng.sample([f for f in known if f.relation != args.relation], args.retain)
    folder = Path(tempfile.mkdtemp(prefix="wmdp-standin-"))
    write_rows(forget, folder / "forget.jsonl")
    write_rows(retain, folder / "retain.jsonl")
    (folder / "task.yaml").write_text("name: wmdp_standin\nformat: wmdp\nforget: forget.jsonl\nretain: retain.jsonl\n")
    task = load_task(folder / "task.yaml")
    config = EvalConfig(max_facts=max(args.forget, args.retain))
    before = evaluate(base, task, ["wmdp"], config=config).metrics["wmdp"]["values"]
    m = METHODS.get(args.method)
    run = unlearn(copy_model(base), task, args.method, forms="auto",
                  train=TrainConfig(steps=args.steps or m.default_steps, lr=args.lr or m.default_lr, progress=False))
    after = evaluate(run.lm, task, ["wmdp"], config=config).metrics["wmdp"]["values"]
    print(f"\nWMDP-layout stand-in: forget = known '{args.relation}' facts, retain = other known facts; "
          f"{args.method} {run.steps} steps at lr {run.config['train']['lr']}")
    print(f"{'split':<8}{'n':>4}{'before (95% CI)':>24}{'after (95% CI)':>24}")
    for split in before:
        b, a = before[split], after[split]
        print(f"{split:<8}{b['n']:>4}{b['acc']:>8.2f} [{b['acc_ci'][0]:.2f},{b['acc_ci'][1]:.2f}]"
              f"{a['acc']:>14.2f} [{a['acc_ci'][0]:.2f},{a['acc_ci'][1]:.2f}]")
    print(f"chance 0.25; total {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "before": before, "after": after,
                                               "train": run.config["train"]}, indent=2))


if __name__ == "__main__":
    main()
