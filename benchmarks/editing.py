"""Editing benchmark: edits (EditConfig defaults) with and without SADR on builtin:people (taught model) and
builtin:realfacts.

Reports edit success, portability (paraphrase, two-hop), locality, specificity (relation / distract, leak),
fluency and seconds per edit. Each case is edited alone and undone (the unedited model is the baseline).

    python benchmarks/editing.py --n 8 --json editing.json
    python benchmarks/editing.py --tasks realfacts --n 4 --steps 20 --kl-factor 0.0625
"""

from __future__ import annotations

import argparse
import json
import time

import torch

# Country facts on realfacts: their subjects have other facts (capital, language, currency), so the relation
# score (the same subject's other facts stay right) is defined; the other real facts have one fact per subject.
REALFACT_RELATIONS = ("capital", "language", "currency")


def cases_for(name: str, n: int, seed: int):
    """(model, cases) for "people" (the taught model, forget+retain facts) or "realfacts" (the base model)."""
    from obliviate.data.people import people_task
    from obliviate.editing.metrics import make_cases, realfacts_cases
    from obliviate.models import load_model
    from obliviate.teach import taught_model

    if name == "people":
        task = people_task("small")
        lm = taught_model(task, progress=False)
        return lm, make_cases(task, task.forget + task.retain, n, seed)
    if name == "realfacts":
        lm = load_model("default")
        return lm, realfacts_cases(lm, n, seed, REALFACT_RELATIONS)
    raise SystemExit(f"unknown task {name!r}; use people or realfacts")


def run(tasks: list[str], n: int, seed: int, sadr_weight: float, layers: tuple[int, ...], steps: int,
        kl_factor: float | None = None, preserve_weight: float | None = None) -> dict:
    from obliviate.editing import EditConfig, SADRConfig
    from obliviate.editing.metrics import evaluate_edits
    from obliviate.editing.rank_one import key_second_moment
    from obliviate.editing.rome import default_layers

    extra = {} if kl_factor is None else {"kl_factor": kl_factor}
    if preserve_weight is not None:
        extra["preserve_weight"] = preserve_weight
    out: dict = {"config": {"n": n, "seed": seed, "sadr_weight": sadr_weight, "layers": list(layers), "steps": steps,
                            **extra}, "tasks": {}}
    for name in tasks:
        lm, cases = cases_for(name, n, seed)
        used = layers or default_layers(lm, EditConfig().span)
        stats = {layer: key_second_moment(lm, layer) for layer in used}
        out["tasks"][name] = {}
        for label, sadr in (("edit", None), ("edit+sadr", SADRConfig(weight=sadr_weight))):
            config = EditConfig(layers=used, steps=steps, sadr=sadr, **extra)
            started = time.perf_counter()
            res = evaluate_edits(lm, cases, config, stats)
            res["summary"]["wall_seconds"] = time.perf_counter() - started
            out["tasks"][name][label] = res
    return out


def table(result: dict) -> str:
    keys = ("efficacy", "efficacy_score", "paraphrase", "two_hop", "locality", "relation", "distract",
            "specificity_failure", "leak", "fluency", "seconds_per_edit")
    lines = ["| task | variant | " + " | ".join(keys) + " |", "|" + "---|" * (len(keys) + 2)]
    for task, variants in result["tasks"].items():
        for label, res in variants.items():
            s = res["summary"]
            cells = ["–" if s.get(k) is None else f"{s[k]:.2f}" for k in keys]
            lines.append(f"| {task} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="people,realfacts", help="comma-separated: people, realfacts")
    p.add_argument("--n", type=int, default=8, help="edits per task")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sadr-weight", type=float, default=1.0)
    p.add_argument("--layers", default="", help="comma-separated blocks (default: EditConfig's, 3 ending at 1/6 of "
                   "the depth); one block, e.g. --layers 5, is ROME")
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--kl-factor", type=float, default=None, help="essence-KL weight (default: EditConfig's)")
    p.add_argument("--preserve-weight", type=float, default=None,
                   help="weight of the preserved other-subject keys in C (default: EditConfig's)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   help="also write the full result as JSON to FILE (bare --json: print JSON instead of the table)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    layers = tuple(int(x) for x in a.layers.split(",")) if a.layers else ()
    result = run(a.tasks.split(","), a.n, a.seed, a.sadr_weight, layers, a.steps, a.kl_factor, a.preserve_weight)
    if a.json == "-":
        print(json.dumps(result, indent=2, default=str))
        return
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2, default=str)
    print(table(result))


if __name__ == "__main__":
    main()
