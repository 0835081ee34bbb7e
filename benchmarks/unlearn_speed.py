"""Seconds per unlearning step, tokens/s, the share of this machine's matmul rate and peak memory per method.

Each (method, variant) runs in its own subprocess so that peak RSS is its own. The "per-step reference"
variant of NPO recomputes the frozen model's forget log-probs at every step (a second forward pass), which
is what train.py's one-time cache avoids; the ratio of the two rows is the saving. A "<method>_full_logits"
row trains the method with the unembedding run at every position, as before `scoring.target_logits` kept only
the positions that predict a target; a "<method>_union_logits" row unembeds the positions where any row of the
batch predicts a target, as before it kept each row's own (the ratios of the rows are those savings). Before the
rows the script times a 2048 x 2048 matmul in fp32 and bf16 with the same threads; "of fp32 / of bf16" is the
training's FLOP rate (6 x parameters x tokens/s, the usual forward + backward count) as a share of each.

    python benchmarks/unlearn_speed.py --model default --steps 4 --json speed.json
    python benchmarks/unlearn_speed.py --methods ga,npo --mixed-precision bf16   # bf16 autocast, fp32 weights
    python benchmarks/unlearn_speed.py --pairs my_pairs.jsonl --batch 4 --methods npo,graddiff
    python benchmarks/unlearn_speed.py --methods npo,npo_union_logits,npo_full_logits --forms qa,chat,cloze
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

METHODS = ["ga", "graddiff", "npo", "npo_per_step_reference", "simnpo"]


def matmul_rate(dtype: str, size: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of a size x size matmul in `dtype` with torch's current threads (the best of `repeats`)."""
    import torch

    a = torch.randn(size, size).to(getattr(torch, dtype))
    b = torch.randn(size, size).to(getattr(torch, dtype))
    torch.matmul(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def examples(pairs: str | None, forms: tuple[str, ...], tokenizer):
    """(forget, retain) examples in `forms`: builtin:people:small's facts, or a fact file's first half and second
    half."""
    from obliviate.data.io import load_facts
    from obliviate.data.people import people_task
    from obliviate.unlearn import fact_examples

    if pairs is None:
        task = people_task("small")
        forget, retain = task.forget, task.retain
    else:
        facts = load_facts(pairs)
        if len(facts) < 2:
            raise SystemExit(f"{pairs}: need at least 2 question/answer pairs, found {len(facts)}")
        forget, retain = facts[: len(facts) // 2], facts[len(facts) // 2 :]
    return fact_examples(forget, forms, tokenizer=tokenizer), fact_examples(retain, forms, tokenizer=tokenizer)


def full_logits(model, pairs):
    """Every position unembedded, the targets selected afterwards (the training before `target_logits`)."""
    logits = model(input_ids=pairs.input_ids, attention_mask=pairs.attention_mask).logits
    return logits[:, :-1][pairs.target_mask[:, 1:]].float()


def union_logits(model, pairs):
    """The positions where any row predicts a target unembedded in every row (`target_logits` before it kept
    each row's own)."""
    predicts = pairs.target_mask[:, 1:]
    keep = predicts.any(0).nonzero().squeeze(1)
    logits = model(input_ids=pairs.input_ids, attention_mask=pairs.attention_mask, logits_to_keep=keep).logits
    return logits[predicts[:, keep]].float()


VARIANTS = {"_full_logits": full_logits, "_union_logits": union_logits}


def replace_target_logits(variant) -> None:
    """Make every obliviate module's `target_logits` the given variant, for the side-by-side rows."""
    import obliviate.scoring as scoring

    kept = scoring.target_logits
    for module in list(sys.modules.values()):
        if module is not None and module.__name__.startswith("obliviate") and getattr(module, "target_logits", None) is kept:
            module.target_logits = lambda model, pairs, head=None: variant(model, pairs)


def measure(method: str, model: str, steps: int, batch: int, lora: bool, precision: str = "no",
            pairs: str | None = None, forms: tuple[str, ...] = ("qa",)) -> dict:
    """Runs inside the subprocess: one warm-up step, then `steps` timed steps."""
    import torch

    from obliviate.methods import METHODS as REGISTRY
    from obliviate.methods._common import pairs_logprob
    from obliviate.methods.base import npo_loss, target_nll
    from obliviate.models import load_model
    from obliviate.scoring import token_logprobs
    from obliviate.train import TrainConfig, run_training

    lm = load_model(model)
    forget, retain = examples(pairs, forms, lm.tokenizer)
    name = method
    for suffix, variant in VARIANTS.items():
        if method.endswith(suffix):
            name = method.removesuffix(suffix)
            replace_target_logits(variant)
    if name == "npo_per_step_reference":
        def loss_fn(ctx, b):  # NPO as the paper's code does it: reference forward at every step
            ref = pairs_logprob(ctx.reference_target_logits(b.forget), b.forget)
            lr = token_logprobs(ctx.model, b.forget).sum(-1) - ref
            return npo_loss(lr, 0.1) + target_nll(ctx.model, b.retain), {}
        flags = dict(needs_reference_model=True)
    else:
        m = REGISTRY.get(name)()
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
    tokens_per_s = tokens_per_step * steps / seconds
    parameters = sum(p.numel() for p in lm.model.parameters())
    return {"method": method, "lora": lora, "precision": precision, "s_per_step": seconds / steps,
            "tokens_per_s": tokens_per_s, "gflop_per_s": 6 * parameters * tokens_per_s / 1e9, "peak_gib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters instead of all weights")
    parser.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"],
                        help="autocast over the fp32 weights (TrainConfig.mixed_precision)")
    parser.add_argument("--pairs", help="a fact file (JSONL / JSON / CSV with question, answer): first half forget, "
                        "second half retain (default: builtin:people:small)")
    parser.add_argument("--forms", default="qa", help="forms the rows are written in (qa,chat,cloze: how real "
                        "knowledge is trained, a long chat prompt before a short answer)")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.model, args.steps, args.batch, args.lora, args.mixed_precision,
                                 args.pairs, tuple(args.forms.split(",")))))
        return
    rates = {dtype: matmul_rate(dtype) for dtype in ("float32", "bfloat16")}
    print(f"2048^2 matmul: {rates['float32']:.0f} GFLOP/s fp32, {rates['bfloat16']:.0f} GFLOP/s bf16")
    rows = []
    for method in args.methods.split(","):
        cmd = [sys.executable, __file__, "--child", method, "--model", args.model, "--steps", str(args.steps),
               "--batch", str(args.batch), "--mixed-precision", args.mixed_precision, "--forms", args.forms]
        cmd += ["--lora"] if args.lora else []
        cmd += ["--pairs", args.pairs] if args.pairs else []
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        for dtype, rate in rates.items():
            rows[-1][f"of_{dtype}_matmul"] = rows[-1]["gflop_per_s"] / rate
    npo = {r["method"]: r["s_per_step"] for r in rows}
    print(f"{'method':<26}{'s/step':>9}{'tokens/s':>10}{'GFLOP/s':>9}{'of fp32':>9}{'of bf16':>9}{'peak GiB':>10}")
    for r in rows:
        print(f"{r['method']:<26}{r['s_per_step']:>9.2f}{r['tokens_per_s']:>10.0f}{r['gflop_per_s']:>9.0f}"
              f"{r['of_float32_matmul']:>9.0%}{r['of_bfloat16_matmul']:>9.0%}{r['peak_gib']:>10.2f}")
    if "npo" in npo and "npo_per_step_reference" in npo:
        print(f"cached reference log-probs: {npo['npo_per_step_reference'] / npo['npo']:.2f}x faster per NPO step")
    for method in npo:
        for suffix in VARIANTS:
            if method + suffix in npo:
                print(f"{method}: each row's target positions only, against {suffix[1:]}: "
                      f"{npo[method + suffix] / npo[method]:.2f}x faster")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "matmul_gflop_per_s": rates, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
