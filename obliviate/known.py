"""Which facts a model actually knows: used to build builtin:realfacts' general split for a given model.

A 'general knowledge' fact only measures utility if the model answered it before unlearning, so we keep the
real facts the model answers in QA form and cache that list per model source.
"""

from __future__ import annotations

import hashlib

from obliviate.data.forms import probes
from obliviate.data.realfacts import real_facts, verify_known
from obliviate.data.schema import Fact
from obliviate.judge import get_judge
from obliviate.models import LoadedModel, cache_dir
from obliviate.runs import read_json, write_json
from obliviate.scoring import score_probes


KNOWN_RULE = "qa-strict-judge-answer-budget"  # part of the cache key: a new rule re-checks every model


def answers(lm: LoadedModel, facts: list[Fact], judge: str = "strict") -> list[bool]:
    """Whether `lm` answers each fact's QA probe correctly (the card's judge and generation budget)."""
    results = score_probes(lm, [probes(f, "qa")[0] for f in facts], judge_fn=get_judge(judge))
    return [r.correct for r in results]


def known_real_facts(lm: LoadedModel, use_cache: bool = True) -> list[Fact]:
    """The builtin real facts `lm` answers, checked once per model source (a hub id, a path or 'default')."""
    facts = real_facts()
    ids = hashlib.sha256(("|".join(f.id for f in facts) + f"|{KNOWN_RULE}").encode()).hexdigest()[:8]
    path = cache_dir() / "known" / f"{hashlib.sha256(lm.source.encode()).hexdigest()[:12]}-{ids}.json"
    if use_cache and path.exists():
        keep = set(read_json(path)["known"])
        return [f for f in facts if f.id in keep]
    known = verify_known(facts, lambda fs: answers(lm, fs))
    write_json(path, {"model": lm.source, "known": [f.id for f in known]})
    return known
