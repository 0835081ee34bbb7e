"""Editing metrics on builtin tasks: success, portability, locality, specificity (SADR's) and fluency.

An `EditCase` is one fact rewritten to a new object of the same relation (Velmora -> Brisca, Paris -> Rome),
with every probe that judges it. All scoring goes through `obliviate.scoring.score_probes` (greedy answers,
judged by `obliviate.judge.judge`) and `answer_probability`; pre-edit results are scored once for all cases.

Per case, each in [0, 1]:
- `efficacy`: the rewrite prompts (the fact's QA and cloze) now produce the new object (greedy);
  `efficacy_score`: p(new) > p(old) on them (ROME's ES).
- `paraphrase`: the fact's reworded questions produce the new object (portability to other wordings).
- `two_hop`: the fact's two-hop questions produce the answer implied by the new object (people: the new
  mentor's city/employer), where the task lets us derive it (portability to reasoning).
- `locality`: neighbour facts (other subjects, same relation) and unrelated facts that were right before are
  still right (1 = untouched).
- `relation`: the same subject's *other* facts that were right before are still right (SADR's Relation Score).
- `distract`: neighbour questions with the edited statement in front ("X was born in Brisca. Where was Y
  born?") that were right before are still right (SADR's Distract Neighbourhood Score).
- `specificity_failure` = 1 − mean(relation, distract); `leak` = mean probability of the new object on those
  relation/distract prompts (lower is better; a continuous view of the same failure).
- `fluency`: 1 − mean word-bigram repetition of greedy text about the subject; `gibberish` share.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from obliviate.data.forms import Probe, probes, qa_prompt, target
from obliviate.data.schema import Fact, Task
from obliviate.editing.rome import EditRequest
from obliviate.models import LoadedModel
from obliviate.scoring import answer_probability, generate, score_probes
from obliviate.text import is_gibberish, ngram_repetition

METRIC_KEYS = ("efficacy", "efficacy_score", "paraphrase", "two_hop", "locality", "relation", "distract",
               "specificity_failure", "leak", "fluency", "gibberish")


def _template(text: str, subject: str) -> str | None:
    """`text` with the subject replaced by "{}" (case-insensitive), or None when it is absent."""
    at = text.lower().find(subject.lower())
    if at < 0:
        return None
    return text[:at].replace("{", "(").replace("}", ")") + "{}" + text[at + len(subject):].replace("{", "(").replace("}", ")")


def request_from_fact(fact: Fact, new_object: str) -> EditRequest | None:
    """An edit of `fact` to `new_object` using its cloze and QA wordings (None when the fact has no subject)."""
    if not fact.subject:
        return None
    prompts = [_template(fact.cloze.rstrip(), fact.subject) if fact.cloze else None,
               _template(qa_prompt(fact.question), fact.subject)]
    prompts = [p for p in prompts if p]
    if not prompts:
        return None
    return EditRequest(fact.subject, tuple(prompts), new_object, fact.answer)


@dataclass
class EditCase:
    """One fact to rewrite and the probes that judge the rewrite."""

    fact: Fact
    new_object: str
    request: EditRequest
    rewrite: list[Probe]  # answer = the NEW object
    paraphrase: list[Probe]  # answer = the NEW object
    two_hop: list[Probe]  # answer implied by the new object
    locality: list[Probe]  # answer = their own (unchanged) answer
    relation: list[Probe]
    distract: list[Probe]
    old_answer: str = ""
    before: dict = field(default_factory=dict)

    def checked(self) -> list[Probe]:
        return [*self.locality, *self.relation, *self.distract]


def _new_object(fact: Fact, pool: list[str], rng: random.Random) -> str:
    options = sorted({o for o in pool if o and o.lower() != fact.answer.lower()})
    return rng.choice(options)


def _two_hop(fact: Fact, new_object: str, by_subject: dict[str, list[Fact]]) -> list[Probe]:
    """Two-hop questions re-answered through the new object (only where the task states the second hop)."""
    out = []
    old_facts = by_subject.get(fact.answer, [])
    new_facts = {f.relation: f.answer for f in by_subject.get(new_object, [])}
    for hop in fact.two_hop:
        if fact.subject.lower() not in hop.question.lower():
            continue
        relation = next((f.relation for f in old_facts if f.answer == hop.answer), None)
        if relation and relation in new_facts:
            out.append(Probe(fact.id, "two_hop", qa_prompt(hop.question), target(new_facts[relation])))
    return out


def make_cases(task: Task, facts: list[Fact], n: int, seed: int = 0, n_unrelated: int = 4,
               relations: tuple[str, ...] = ()) -> list[EditCase]:
    """Up to `n` edit cases from `facts` (seeded), each probing the task's other facts for side effects.

    Only facts whose relation has at least two values and whose subject occurs in the prompts are used.
    """
    everything = [f for split in ("forget", "retain", "neighbours", "general") for f in task.split(split)]
    by_id = {f.id: f for f in everything}
    by_subject: dict[str, list[Fact]] = {}
    pools: dict[str, list[str]] = {}
    for f in everything:
        if f.subject:
            by_subject.setdefault(f.subject, []).append(f)
        pools.setdefault(f.relation, []).append(f.answer)
    rng = random.Random(f"edit-cases-{seed}")
    pick = [f for f in facts if f.subject and f.relation != "misc" and len(set(pools.get(f.relation, []))) > 1
            and (not relations or f.relation in relations)]
    rng.shuffle(pick)
    cases = []
    for fact in pick[:n]:
        new = _new_object(fact, pools[fact.relation], rng)
        req = request_from_fact(fact, new)
        if req is None:
            continue
        rewrite = [Probe(fact.id, "rewrite", p.format(fact.subject), target(new)) for p in req.prompts]
        para = [Probe(fact.id, "paraphrase", p.prompt, target(new)) for p in probes(fact, "paraphrase")]
        neighbours = [by_id[i] for i in fact.neighbours if i in by_id and by_id[i].subject != fact.subject]
        others = [f for f in everything if f.subject and f.subject != fact.subject and f.id not in fact.neighbours]
        unrelated = rng.sample(others, min(n_unrelated, len(others)))
        locality = [q for f in neighbours + unrelated for q in probes(f, "qa")]
        same = [f for f in by_subject.get(fact.subject, []) if f.id != fact.id]
        relation = [q for f in same for q in probes(f, "qa") + probes(f, "cloze")]
        statement = f"{req.prompts[0].format(fact.subject)} {new}. "
        distract = [Probe(f.id, "distract", statement + q.prompt, q.answer) for f in neighbours for q in probes(f, "qa")]
        cases.append(EditCase(fact, new, req, rewrite, para, _two_hop(fact, new, by_subject), locality, relation,
                              distract, fact.answer))
    return cases


def _fluency_prompts(subject: str) -> list[str]:
    return [f"{subject} is", f"Tell me about {subject}.", f"{subject} was"]


def score_before(lm: LoadedModel, cases: list[EditCase]) -> None:
    """Record, once for all cases, which side-effect probes the unedited model gets right."""
    checked = [p for c in cases for p in c.checked()]
    results = score_probes(lm, checked) if checked else []
    it = iter(results)
    for c in cases:
        c.before = {id(p): next(it).correct for p in c.checked()}


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def evaluate_case(lm: LoadedModel, case: EditCase) -> dict[str, float | None]:
    """Metrics of the (already edited) `lm` on one case; needs `score_before` to have run."""
    groups = [case.rewrite, case.paraphrase, case.two_hop, case.locality, case.relation, case.distract]
    flat = [p for g in groups for p in g]
    res = {id(r.probe): r for r in score_probes(lm, flat)}
    out: dict[str, float | None] = {}
    for name, g in zip(("efficacy", "paraphrase", "two_hop"), groups[:3]):
        out[name] = _share([res[id(p)].correct for p in g])
    for name, g in zip(("locality", "relation", "distract"), groups[3:]):
        kept = [res[id(p)].correct for p in g if case.before.get(id(p))]
        out[name] = _share(kept)
    prompts = [p.prompt for p in case.rewrite]
    p_new = answer_probability(lm, prompts, [target(case.new_object)] * len(prompts))
    p_old = answer_probability(lm, prompts, [target(case.old_answer)] * len(prompts))
    out["efficacy_score"] = float((p_new > p_old).float().mean())
    spec = [v for v in (out["relation"], out["distract"]) if v is not None]
    out["specificity_failure"] = 1 - sum(spec) / len(spec) if spec else None
    side = [p.prompt for p in case.relation + case.distract]
    out["leak"] = (float(answer_probability(lm, side, [target(case.new_object)] * len(side)).mean())
                   if side else None)
    texts = generate(lm, _fluency_prompts(case.fact.subject), max_new_tokens=24, stop_at_newline=False)
    out["fluency"] = 1 - sum(ngram_repetition(t) for t in texts) / len(texts)
    out["gibberish"] = sum(is_gibberish(t) for t in texts) / len(texts)
    return out


def aggregate(rows: list[dict[str, float | None]]) -> dict[str, float | None]:
    """Mean of each metric over the cases where it is defined (None when it never is)."""
    out: dict[str, float | None] = {}
    for key in METRIC_KEYS:
        values = [r[key] for r in rows if r.get(key) is not None]
        out[key] = sum(values) / len(values) if values else None
    out["n_cases"] = len(rows)
    return out


def check_disjoint(cases: list[EditCase], config) -> None:
    """Refuse keys protected by `config.preserve_weight` whose subject occurs in a probe that judges the edit
    (protecting the very prompts that are scored would inflate locality).

    Raises:
        ConfigError: naming the first preserved subject found in a probe.
    """
    from obliviate.editing.rank_one import mentions
    from obliviate.errors import ConfigError

    if getattr(config, "preserve_weight", 0) <= 0:
        return
    for case in cases:
        probes_ = [*case.rewrite, *case.paraphrase, *case.two_hop, *case.checked()]
        for subject in config.preserve_subjects:
            hit = next((p.prompt for p in probes_ if mentions(p.prompt, subject)), None)
            if hit is not None:
                raise ConfigError(f"preserved subject {subject!r} occurs in the probe {hit!r} of {case.fact.id}; "
                                  "protected keys must be disjoint from the evaluation")


def evaluate_edits(lm: LoadedModel, cases: list[EditCase], config, stats=None) -> dict:
    """Edit each case on its own (ROME), score it, undo it; returns the mean metrics, seconds per edit, rows.

    `config` is an `EditConfig`; `stats` (layer -> KeyStats) saves reloading the key statistics.
    """
    from obliviate.editing.rome import edit

    check_disjoint(cases, config)
    score_before(lm, cases)
    rows, seconds = [], []
    for case in cases:
        result = edit(lm, [case.request], config, stats)
        try:
            row = evaluate_case(lm, case)
        finally:
            result.undo()
        row["seconds"] = result.seconds
        row["nll"] = result.nll[0]
        row["drift_share"] = result.drift_share[0] if result.drift_share else 0.0
        row["fact"] = case.fact.id
        row["new_object"] = case.new_object
        rows.append(row)
        seconds.append(result.seconds)
    summary = aggregate(rows)
    summary["seconds_per_edit"] = sum(seconds) / len(seconds) if seconds else None
    return {"summary": summary, "rows": rows}


def realfacts_cases(lm: LoadedModel, n: int, seed: int = 0, relations: tuple[str, ...] = (),
                    n_unrelated: int = 12) -> list[EditCase]:
    """Cases on builtin:realfacts: edit facts `lm` knows; probe side effects on *all* real facts.

    Small models know few facts (SmolLM2-135M: ~30 of 80), and rarely two of one subject, so the relation and
    distract probes come from every fact; only those the model got right before count (see `score_before`),
    and `leak` needs no prior knowledge at all. The model answers only ~40 % of the facts, so `n_unrelated` is
    larger than for people (with 4, a case often kept one locality probe and the locality mean was noise).
    """
    from obliviate.data.realfacts import real_facts
    from obliviate.known import known_real_facts

    known = {f.id for f in known_real_facts(lm)}
    task = Task(name="realfacts", retain=real_facts())  # every fact may be probed for side effects
    return make_cases(task, [f for f in task.retain if f.id in known], n, seed, n_unrelated, relations)
