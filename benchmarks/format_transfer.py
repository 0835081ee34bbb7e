"""How much unlearning in one format carries over to the other: plain `Question: …\nAnswer:` vs the chat template.

For each task and each training format (qa = the plain prompt, chat = a user turn through the model's chat
template), copy the original model, unlearn the forget split with NPO trained on that one format only, and ask
the forget facts in both formats (and as the cloze, which neither trains on). One row per (task, trained on,
asked as): accuracy before and after with Wilson 95 % intervals over the n facts the original answers in that
format, and the mean answer NLL before and after (teacher-forced, over all forget facts). The diagonal is what
training moves; the off-diagonal is what a user of the other format still gets.

    python benchmarks/format_transfer.py --json format_transfer.json
    python benchmarks/format_transfer.py --tasks builtin:realfacts:forget60 --steps 20
"""

from __future__ import annotations

import argparse
import json
import time

ASKED = ("qa", "chat", "cloze")
TRAINED = ("qa", "chat")


def measure(lm, facts, form: str) -> tuple[dict[str, float], float]:
    """({fact id: accuracy of its probes in `form`}, mean per-token answer NLL over those probes)."""
    from obliviate.data.forms import probes
    from obliviate.judge import get_judge
    from obliviate.metrics.forms import per_fact
    from obliviate.scoring import score_probes, sequence_logprob

    ps = [p for f in facts for p in probes(f, form, lm.tokenizer)]
    accuracy = per_fact(score_probes(lm, ps, judge_fn=get_judge("strict")))
    logprob = sequence_logprob(lm, [p.prompt for p in ps], [p.answer for p in ps], normalise=True)
    return accuracy, -float(logprob.mean())


def run(task_spec: str, method: str, steps: int | None, lr: float | None) -> list[dict]:
    from obliviate.methods import METHODS
    from obliviate.models import load_model
    from obliviate.pipeline import load_task
    from obliviate.stats import proportion
    from obliviate.teach import copy_model, taught_model
    from obliviate.train import TrainConfig
    from obliviate.unlearn import unlearn

    base = load_model("default")
    task = load_task(task_spec, base)
    original = taught_model(task) if task_spec.removeprefix("builtin:").startswith("people") else base
    before = {form: measure(original, task.forget, form) for form in ASKED}
    m = METHODS.get(method)
    rows = []
    for trained in TRAINED:
        started = time.perf_counter()
        run_ = unlearn(copy_model(original), task, method, forms=(trained,),
                       train=TrainConfig(steps=steps or m.default_steps, lr=lr or m.default_lr, progress=False))
        for asked in ASKED:
            (acc0, nll0), (acc1, nll1) = before[asked], measure(run_.lm, task.forget, asked)
            known = [fid for fid, a in acc0.items() if a > 0]  # what this format showed before: what can move
            after = proportion(sum(acc1[fid] for fid in known), len(known)) if known else None
            rows.append({"task": task_spec, "method": method, "trained_on": trained, "asked_as": asked,
                         "n_facts": len(acc0), "n_known": len(known),
                         "before": sum(acc0.values()) / len(acc0), "after": sum(acc1.values()) / len(acc1),
                         "after_on_known": None if after is None else after.value,
                         "after_on_known_ci": None if after is None else [after.lo, after.hi],
                         "nll_before": round(nll0, 3), "nll_after": round(nll1, 3),
                         "unlearn_s": round(time.perf_counter() - started, 1)})
        print(f"{task_spec} trained on {trained}: {time.perf_counter() - started:.0f} s", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="builtin:realfacts:forget60,builtin:people:small:forget10")
    parser.add_argument("--method", default="npo")
    parser.add_argument("--steps", type=int, default=None, help="unlearning steps (default: the method's)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: the method's)")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = [r for spec in args.tasks.split(",") for r in run(spec, args.method, args.steps, args.lr)]
    print(f"\n{'task':<34}{'trained':>8}{'asked':>7}{'before':>8}{'after':>7}{'kept of known (95% CI)':>26}"
          f"{'NLL before→after':>19}")
    for r in rows:
        kept = "—" if r["after_on_known"] is None else (
            f"{r['after_on_known']:.2f} [{r['after_on_known_ci'][0]:.2f},{r['after_on_known_ci'][1]:.2f}] "
            f"n={r['n_known']}")
        print(f"{r['task']:<34}{r['trained_on']:>8}{r['asked_as']:>7}{r['before']:>8.2f}{r['after']:>7.2f}"
              f"{kept:>26}{r['nll_before']:>10.2f}→{r['nll_after']:<8.2f}")
    print(f"total {time.perf_counter() - started:.0f} s; method {args.method}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
