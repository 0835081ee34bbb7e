"""Seconds per unlearning step, tokens/s and peak memory for each method at a fixed batch.

Each (method, variant) runs in its own subprocess so that peak RSS is its own. The "per-step reference"
variant of NPO recomputes the frozen model's forget log-probs at every step (a second forward pass), which
is what train.py's one-time cache avoids; the ratio of the two rows is the saving.

    python benchmarks/unlearn_speed.py --model default --steps 4 --json speed.json
    python benchmarks/unlearn_speed.py --methods ga,npo --mixed-precision bf16   # bf16 autocast, fp32 weights
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

METHODS = ["ga", "graddiff", "npo", "npo_per_step_reference", "simnpo"]


def measure(method: str, model: str, steps: int, batch: int, lora: bool, precision: str = "no") -> dict:
    """Runs inside the subprocess: one warm-up step, then `steps` timed steps."""
    import torch

    from obliviate.data.people import people_task
    from obliviate.methods import METHODS as REGISTRY
    from obliviate.methods.base import npo_loss, target_nll
    from obliviate.models import load_model
    from obliviate.scoring import token_logprobs
    from obliviate.train import TrainConfig, run_training
    from obliviate.unlearn import fact_examples

    lm = load_model(model)
    task = people_task("small")
    forget, retain = fact_examples(task.forget), fact_examples(task.retain)
    if method == "npo_per_step_reference":
        def loss_fn(ctx, b):  # NPO as the paper's code does it: reference forward at every step
            ref = (ctx.reference_logits(b.forget)[:, :-1].float().log_softmax(-1)
                   .gather(-1, b.forget.input_ids[:, 1:, None]).squeeze(-1) * b.forget.target_mask[:, 1:]).sum(-1)
            lr = token_logprobs(ctx.model, b.forget).sum(-1) - ref
            return npo_loss(lr, 0.1) + target_nll(ctx.model, b.retain), {}
        flags = dict(needs_reference_model=True)
    else:
        m = REGISTRY.get(method)()
        loss_fn = m
        flags = dict(needs_reference_logprobs=m.needs_reference_logprobs, needs_reference_model=m.needs_reference_model)
    config = TrainConfig(steps=1, lr=1e-6, batch_size=batch, lora=lora, mixed_precision=precision, progress=False)
    run_training(lm, loss_fn, forget, retain, config, **flags)  # warm-up (and the one-time reference pass)
    started = time.perf_counter()
    run_training(lm, loss_fn, forget, retain, TrainConfig(steps=steps, lr=1e-6, batch_size=batch, lora=lora,
                                                           mixed_precision=precision, progress=False), **flags)
    seconds = time.perf_counter() - started
    tokens = sum(len(lm.tokenizer(p + t)["input_ids"]) for p, t in zip(forget.prompts, forget.targets))
    tokens_per_step = tokens / len(forget) * batch * 2  # forget + paired retain batch
    peak = (torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available()
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    return {"method": method, "lora": lora, "precision": precision, "s_per_step": seconds / steps,
            "tokens_per_s": tokens_per_step * steps / seconds, "peak_gib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters instead of all weights")
    parser.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"],
                        help="autocast over the fp32 weights (TrainConfig.mixed_precision)")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.model, args.steps, args.batch, args.lora, args.mixed_precision)))
        return
    rows = []
    for method in args.methods.split(","):
        cmd = [sys.executable, __file__, "--child", method, "--model", args.model, "--steps", str(args.steps),
               "--batch", str(args.batch), "--mixed-precision", args.mixed_precision] + (["--lora"] if args.lora else [])
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    npo = {r["method"]: r["s_per_step"] for r in rows}
    print(f"{'method':<26}{'s/step':>9}{'tokens/s':>10}{'peak GiB':>10}")
    for r in rows:
        print(f"{r['method']:<26}{r['s_per_step']:>9.2f}{r['tokens_per_s']:>10.0f}{r['peak_gib']:>10.2f}")
    if "npo" in npo and "npo_per_step_reference" in npo:
        print(f"cached reference log-probs: {npo['npo_per_step_reference'] / npo['npo']:.2f}x faster per NPO step")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
