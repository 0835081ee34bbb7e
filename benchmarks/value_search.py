"""What unembedding only the positions its loss reads saves ROME's v* search, on the real model, side by side.

`edit_redirect` runs one v* search per forget subject (`editing.rome.optimise_target`, up to 25 forward and
backward passes over the subject's prompts after each context prefix). Its loss reads the logits that predict
the new object's tokens and one essence position, so `scoring.forward_at` unembeds only those; the "every
position" row unembeds the whole batch and selects afterwards, as the search did before. Both rows run the
same subjects in one process, alternating, and the found targets z are compared.

    python benchmarks/value_search.py --json value_search.json
    python benchmarks/value_search.py --subjects 2          # quicker
"""

from __future__ import annotations

import argparse
import json
import time


def every_position(model, positions, head=None, **inputs):
    """`forward_at` as it ran before: the whole batch unembedded, the needed positions selected afterwards."""
    out = model(**inputs)
    out.logits = out.logits[:, : positions.shape[1]][positions].unsqueeze(0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--task", default="builtin:realfacts:forget60")
    parser.add_argument("--subjects", type=int, default=3, help="forget subjects searched (edit_redirect's requests)")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()

    from obliviate.editing import rome
    from obliviate.methods.edit_redirect import subject_requests
    from obliviate.models import load_model
    from obliviate.pipeline import load_task

    lm = load_model(args.model)
    requests = subject_requests(load_task(args.task, lm), "unknown")[: args.subjects]
    config = rome.EditConfig()
    layer = rome.default_layers(lm)[-1]
    prefixes = rome.context_prefixes(lm, config.n_prefixes, config.prefix_tokens, config.seed)
    variants = {"needed positions": rome.forward_at, "every position": every_position}
    seconds = dict.fromkeys(variants, 0.0)
    rows = []
    for req in requests:
        found = {}
        for name, forward in variants.items():
            rome.forward_at = forward
            started = time.perf_counter()
            found[name] = rome.optimise_target(lm, req, layer, prefixes, config)
            seconds[name] += time.perf_counter() - started
        (z_new, nll_new, _), (z_old, nll_old, _) = found.values()
        rows.append({"subject": req.subject, "prompts": len(req.prompts), "nll": [nll_new, nll_old],
                     "max_abs_dz": float((z_new - z_old).abs().max()), "z_norm": float(z_old.norm())})
    rome.forward_at = variants["needed positions"]
    print(f"{'subject':<24}{'prompts':>8}{'NLL needed':>12}{'NLL every':>11}{'max |dz|':>10}{'|z|':>8}")
    for r in rows:
        print(f"{r['subject']:<24}{r['prompts']:>8}{r['nll'][0]:>12.4f}{r['nll'][1]:>11.4f}{r['max_abs_dz']:>10.2e}"
              f"{r['z_norm']:>8.1f}")
    ratio = seconds["every position"] / seconds["needed positions"]
    print(f"seconds: needed positions {seconds['needed positions']:.1f}, every position "
          f"{seconds['every position']:.1f} ({ratio:.2f}x)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "seconds": seconds, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
