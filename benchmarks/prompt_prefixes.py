"""What running a shared prompt prefix once saves, on the real model, with the outputs compared.

Two prefixes are run once instead of per row (`obliviate.scoring._prefill`, `methods.in_context.PrefixedModel`):
the chat header every chat prompt of a batch starts with (system turn and user header), and in-context
unlearning's prefix (every forget question with a refusal). Each row below is timed both ways in one process,
on the same prompts, with the greedy replies (and, for the chat rows, the answer log-probs) compared.

    python benchmarks/prompt_prefixes.py --json prompt_prefixes.json
    python benchmarks/prompt_prefixes.py --facts 32 --tokens 16        # quicker
"""

from __future__ import annotations

import argparse
import json
import time


def timed(fn):
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--task", default="builtin:realfacts:forget60")
    parser.add_argument("--facts", type=int, default=64, help="retain facts asked in each row")
    parser.add_argument("--tokens", type=int, default=24, help="greedy tokens per reply")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()

    from obliviate import scoring
    from obliviate.data.forms import chat_prompt, qa_prompt
    from obliviate.methods import METHODS
    from obliviate.models import load_model
    from obliviate.pipeline import load_task

    lm = load_model(args.model)
    task = load_task(args.task, lm)
    facts = task.retain[: args.facts]
    chat = [chat_prompt(lm.tokenizer, f.question) for f in facts]
    answers = [" " + f.answer for f in facts]
    rows = []

    def chat_row(shared_min: int):
        scoring.SHARED_PREFIX_MIN = shared_min
        return timed(lambda: (scoring.answer_logprobs(lm, chat, answers), scoring.generate(lm, chat, args.tokens)))

    default_min = scoring.SHARED_PREFIX_MIN
    (whole_lp, whole_text), whole_s = chat_row(10**9)
    (once_lp, once_text), once_s = chat_row(default_min)
    rows.append({"row": "chat prompts: header once vs every prompt whole", "once_s": once_s, "whole_s": whole_s,
                 "same_outputs": sum(a == b for a, b in zip(once_text, whole_text)), "n": len(chat),
                 "max_abs_dlogprob": max(float((a - b).abs().max()) for a, b in zip(once_lp, whole_lp))})

    wrapped = METHODS.get("in_context")().apply(lm, task)
    prefixed = wrapped.model
    for form, prompts in (("plain QA", [qa_prompt(f.question) for f in facts]), ("chat", chat)):
        prefixed.cache_prefix = False
        whole_text, whole_s = timed(lambda: scoring.generate(wrapped, prompts, args.tokens))  # noqa: B023
        prefixed.cache_prefix = True
        once_text, once_s = timed(lambda: scoring.generate(wrapped, prompts, args.tokens))  # noqa: B023
        rows.append({"row": f"in_context ({prefixed.prefix_ids.numel()}-token prefix), {form}: prefix cached vs "
                     "run per call", "once_s": once_s, "whole_s": whole_s, "n": len(prompts),
                     "same_outputs": sum(a == b for a, b in zip(once_text, whole_text))})

    print(f"{'':<78}{'once s':>8}{'whole s':>9}{'x':>7}{'same':>8}")
    for r in rows:
        print(f"{r['row']:<78}{r['once_s']:>8.1f}{r['whole_s']:>9.1f}{r['whole_s'] / r['once_s']:>7.2f}"
              f"{r['same_outputs']:>5}/{r['n']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
