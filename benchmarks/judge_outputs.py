"""Collect real SmolLM2 answers for hand labelling: the judge is checked against people, not against itself.

Answers come from every kind of model the judge meets: the base model on real facts (plain QA, chat, cloze),
the taught and reference people models, NPO and strong gradient ascent on the taught model (gibberish), NPO on
known real facts, IdkPO, the base model asked in chat about people it never saw (refusals), and in-context
hints on the NPO model. Each line holds the question,
the right answer, the fact's other candidates and the output, without any verdict; a person adds `label`
(right / wrong / refusal / gibberish / empty) and the file becomes tests/fixtures/judge_labels.jsonl.

    python benchmarks/judge_outputs.py --out judge_outputs.jsonl        # ~10 min on 2 cores
    python benchmarks/judge_outputs.py --sources idkpo --seed 2 --out more.jsonl
"""

from __future__ import annotations

import argparse
import json
import random

PER_SOURCE = 40  # outputs per model kind (before de-duplication)


SOURCES = ("base", "base_people", "taught", "reference", "npo", "ga", "real_npo", "idkpo", "in_context")


def collect(out: str, seed: int = 0, sources: tuple[str, ...] = SOURCES) -> int:
    from obliviate.attacks.in_context import hinted_probes, hints
    from obliviate.data.forms import probes
    from obliviate.models import load_model
    from obliviate.pipeline import load_task
    from obliviate.scoring import score_probes
    from obliviate.teach import copy_model, taught_model
    from obliviate.train import TrainConfig
    from obliviate.unlearn import unlearn

    rng = random.Random(seed)
    base = load_model("default")
    people = load_task("builtin:people:small:forget10", base)
    real = load_task("builtin:realfacts:forget60", base)
    taught = taught_model(people, progress=False)

    def pick(facts, forms, lm, n=PER_SOURCE):
        ps = [p for f in facts for form in forms for p in probes(f, form, lm.tokenizer)]
        return rng.sample(ps, min(n, len(ps)))

    def unlearned(task, method, steps, lr, start=None, forms=("qa",), **kw):
        return unlearn(copy_model(start or taught), task, method, forms=forms,
                       train=TrainConfig(steps=steps, lr=lr, progress=False, **kw)).lm

    people_facts = people.forget + people.retain[:12] + people.neighbours[:6]
    real_facts = real.forget[:20] + real.holdout[:20] + real.retain[:10]
    plans = {
        "base": lambda: (base, pick(real_facts, ("chat", "qa", "cloze", "paraphrase"), base, 60)),
        "base_people": lambda: (base, pick(people.forget + people.holdout, ("chat",), base)),  # never learned: refusals
        "taught": lambda: (taught, pick(people_facts, ("qa", "paraphrase", "cloze", "chat"), taught)),
        "reference": lambda: (taught_model(people, exclude_forget=True, progress=False),
                              pick(people.forget + people.holdout, ("qa", "paraphrase", "cloze"), taught)),
        "npo": lambda: (unlearned(people, "npo", 20, 2e-5), pick(people_facts, ("qa", "paraphrase", "chat", "two_hop"),
                                                                taught)),
        "ga": lambda: (unlearned(people, "ga", 30, 6e-5, gibberish_every=0),
                       pick(people_facts, ("qa", "paraphrase", "cloze"), taught, 30)),
        "real_npo": lambda: (unlearned(real, "npo", 30, 3e-5, start=base, forms=("qa", "cloze")),
                             pick(real.forget + real.neighbours, ("chat", "qa", "cloze"), base, 60)),
        "idkpo": lambda: (unlearned(people, "idkpo", 20, 2e-5), pick(people_facts, ("qa", "paraphrase", "chat"), taught)),
    }
    sources_run = []
    for name in sources:
        if name in plans:
            lm, ps = plans[name]()
            sources_run.append((name, lm, ps))
    if "in_context" in sources:
        npo = next((lm for name, lm, _ in sources_run if name == "npo"), None) or unlearned(people, "npo", 20, 2e-5)
        ps = []
        for fact in rng.sample(people.forget, min(10, len(people.forget))):
            shown = hints(fact, people, rng)
            if shown:
                ps.append(hinted_probes(fact, shown, npo.tokenizer)[0])
        sources_run.append(("in_context", npo, ps))
    sources = sources_run
    by_id = {**people.facts_by_id(), **real.facts_by_id()}
    seen, rows = set(), []
    for name, lm, ps in sources:
        for p, r in zip(ps, score_probes(lm, ps)):
            key = (r.output, p.answer)
            if key in seen:
                continue
            seen.add(key)
            if p.form == "chat":
                question = by_id[p.fact_id].question
            elif "Question: " in p.prompt:
                question = p.prompt.rsplit("Question: ", 1)[1].removesuffix("\nAnswer:")
            else:
                question = p.prompt
            rows.append({"source": name, "fact_id": p.fact_id, "form": p.form, "question": question,
                         "answer": p.answer.strip(), "others": list(p.others), "subject": p.subject,
                         "output": r.output})
    with open(out, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="judge_outputs.jsonl")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sources", default=",".join(SOURCES), help=f"comma list of {', '.join(SOURCES)}")
    args = parser.parse_args()
    print(f"{collect(args.out, args.seed, tuple(args.sources.split(',')))} distinct outputs → {args.out}")


if __name__ == "__main__":
    main()
