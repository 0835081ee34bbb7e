"""Editing benchmark: ROME edits with and without SADR on builtin:people (taught model) and builtin:realfacts.

Reports edit success, portability (paraphrase, two-hop), locality, specificity (relation / distract, leak),
fluency and seconds per edit. Each case is edited alone and undone (the unedited model is the baseline).

    python benchmarks/editing.py --n 8 --json
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
        kl_factor: float | None = None) -> dict:
    from obliviate.editing import EditConfig, SADRConfig
    from obliviate.editing.metrics import evaluate_edits
    from obliviate.editing.rank_one import key_second_moment
    from obliviate.editing.rome import default_layers

    extra = {} if kl_factor is None else {"kl_factor": kl_factor}
    out: dict = {"config": {"n": n, "seed": seed, "sadr_weight": sadr_weight, "layers": list(layers), "steps": steps,
                            **extra}, "tasks": {}}
    for name in tasks:
        lm, cases = cases_for(name, n, seed)
        used = layers or default_layers(lm)
        stats = {layer: key_second_moment(lm, layer) for layer in used}
        out["tasks"][name] = {}
        for label, sadr in (("rome", None), ("rome+sadr", SADRConfig(weight=sadr_weight))):
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
    p.add_argument("--layers", default="", help="comma-separated blocks (default: one at 1/6 of the depth)")
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--kl-factor", type=float, default=None, help="essence-KL weight (default: EditConfig's)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    layers = tuple(int(x) for x in a.layers.split(",")) if a.layers else ()
    result = run(a.tasks.split(","), a.n, a.seed, a.sadr_weight, layers, a.steps, a.kl_factor)
    print(json.dumps(result, indent=2, default=str) if a.json else table(result))


if __name__ == "__main__":
    main()
