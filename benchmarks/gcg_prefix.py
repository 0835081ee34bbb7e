"""What running the questions once saves adversarial_suffix's GCG search, on the real model, side by side.

Each GCG step scores `candidates` suffixes on every training question. The question part (chat header, question)
never changes, so `_Problem` runs it once (`scoring.PromptCache`) and each loss runs only [suffix, answer cue,
answer] after it, unembedding only the positions that predict the answer. The other row runs the same losses as
whole right-padded sequences, every position unembedded, as before 2026-12-08; both rows score the same
candidates and the largest difference between their losses is printed.

    python benchmarks/gcg_prefix.py --json gcg_prefix.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def whole_sequence_losses(problem, suffixes: torch.Tensor, per: int = 2) -> torch.Tensor:
    """Mean answer NLL per suffix from full [question, suffix, cue, answer] sequences (the old way)."""
    from obliviate.scoring import EncodedPairs, right_padded, token_logprobs

    out = []
    for i in range(0, len(suffixes), per):
        rows = [(head + s + cue + ans, len(ans)) for s in suffixes[i : i + per].tolist()
                for head, cue, ans in problem.parts]
        ids, attn = right_padded(problem.lm, [r for r, _ in rows])
        target = torch.zeros_like(ids, dtype=torch.bool)
        for k, (r, n_ans) in enumerate(rows):
            target[k, len(r) - n_ans : len(r)] = True
        batch = EncodedPairs(ids, attn, target)
        with torch.no_grad():
            lp = token_logprobs(problem.lm.model, batch)
        nll = -lp.sum(-1) / batch.target_mask[:, 1:].sum(-1)
        out.append(nll.view(-1, len(problem.parts)).mean(-1).cpu())
    return torch.cat(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--task", default="builtin:realfacts:forget60")
    parser.add_argument("--questions", type=int, default=29, help="training questions (the attack's train half)")
    parser.add_argument("--candidates", type=int, default=32)
    parser.add_argument("--n-tokens", type=int, default=8)
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()

    import random

    from obliviate.attacks.adversarial_suffix import _initial_suffix, _Problem, banned_tokens, optimised_target
    from obliviate.data.forms import has_chat_template
    from obliviate.models import load_model
    from obliviate.pipeline import load_task

    lm = load_model(args.model)
    facts = load_task(args.task, lm).forget[: args.questions]
    form = "chat" if has_chat_template(lm.tokenizer) else "qa"
    allowed = (~banned_tokens(lm.tokenizer, facts)).nonzero().squeeze(-1)
    rng = random.Random(0)
    suffixes = torch.tensor([_initial_suffix(lm.tokenizer, allowed, args.n_tokens, rng)
                             for _ in range(args.candidates)])
    started = time.perf_counter()
    problem = _Problem(lm, facts, form, [optimised_target(f, form) for f in facts])
    setup = time.perf_counter() - started
    rows = []
    ways = (("questions cached", problem.losses), ("whole sequences", lambda s: whole_sequence_losses(problem, s)))
    for name, losses in ways:
        started = time.perf_counter()
        values = losses(suffixes)
        rows.append({"way": name, "seconds": time.perf_counter() - started, "losses": values.tolist()})
    started = time.perf_counter()
    problem.gradient(suffixes[0])
    gradient_s = time.perf_counter() - started
    gap = max(abs(a - b) for a, b in zip(rows[0]["losses"], rows[1]["losses"]))
    print(f"{args.candidates} candidates x {len(facts)} {form} questions, {args.n_tokens}-token suffix; "
          f"questions run once in {setup:.1f} s; one gradient {gradient_s:.1f} s")
    print(f"{'way':>17}{'seconds':>9}{'x':>7}")
    for r in rows:
        print(f"{r['way']:>17}{r['seconds']:>9.1f}{rows[1]['seconds'] / r['seconds']:>7.2f}")
    print(f"largest loss difference: {gap:.2e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "setup_s": setup, "gradient_s": gradient_s, "max_gap": gap,
                       "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
