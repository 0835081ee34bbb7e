"""Where a model stops answering: empty greedy replies and the chance of ending at once, per relation.

Asks the retain, forget and holdout facts of a builtin:realfacts task in the plain `Question: … Answer:` format
(canonical question and paraphrases) and reports, per relation, the share of empty first lines (Wilson 95 %) and
the mean probability of the end-of-turn token as the first token (bootstrap 95 %), for each model given. It is
how docs/methods.md traced SAND's lost paraphrases to the capitals relation.

    python benchmarks/empty_answers.py default runs/sand/model --task builtin:realfacts:forget20 --json empty.json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import torch


def end_probability(lm, prompts: list[str]) -> list[float]:
    """P(eos) as the first generated token, per prompt (left-padded batches of 16)."""
    out = []
    for i in range(0, len(prompts), 16):
        enc = lm.tokenizer(prompts[i : i + 16], return_tensors="pt", padding=True, padding_side="left")
        with torch.no_grad():
            logits = lm.model(**enc.to(lm.device), logits_to_keep=1).logits[:, -1].float()
        out += logits.softmax(-1)[:, lm.tokenizer.eos_token_id].tolist()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="'default' or model directories")
    parser.add_argument("--task", default="builtin:realfacts:forget20")
    parser.add_argument("--max-facts", type=int, default=60, help="facts per split (the card's first 60)")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()

    from obliviate.data.forms import qa_prompt
    from obliviate.models import load_model
    from obliviate.pipeline import load_task
    from obliviate.scoring import generate
    from obliviate.stats import mean_ci, proportion

    base = load_model("default")
    task = load_task(args.task, base)
    rows = []
    for spec in args.models:
        lm = base if spec == "default" else load_model(spec)
        for split in ("forget", "retain", "holdout"):
            facts = task.split(split)[: args.max_facts]
            for form in ("qa", "paraphrase"):
                asked = [(f, q) for f in facts for q in ([f.question] if form == "qa" else f.paraphrases)]
                prompts = [qa_prompt(q) for _, q in asked]
                replies, ends = generate(lm, prompts, 24), end_probability(lm, prompts)
                groups = defaultdict(list)
                for (fact, _), reply, end in zip(asked, replies, ends):
                    for relation in (fact.id.split(".")[1] if "." in fact.id else "all", "all"):
                        groups[relation].append((reply.strip() == "", end))
                for relation, values in sorted(groups.items()):
                    empty = proportion(sum(e for e, _ in values), len(values))
                    end = mean_ci([p for _, p in values])
                    rows.append({"model": spec, "split": split, "form": form, "relation": relation,
                                 "n": len(values), "empty": empty.to_dict(), "p_end": end.to_dict()})
                    print(f"{spec[-28:]:>28} {split:<8}{form:<11}{relation:<10} n={len(values):<4} "
                          f"empty {empty.value:.2f} [{empty.lo:.2f}, {empty.hi:.2f}]  "
                          f"P(end) {end.value:.3f} [{end.lo:.3f}, {end.hi:.3f}]", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
