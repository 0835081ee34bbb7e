"""Which facts a model actually knows: only those can show forgetting (or damage) when they are gone.

A fact is known when the model gives its answer asked directly (`forms.DIRECT_FORMS`: plain QA, the chat
turn when the model has a chat template, or the cloze), by the strict judge. For builtin:realfacts the facts
it knows make the forget / neighbour / retain splits and the facts it does not know become the holdout split,
the control. The verdicts are cached per model source.
"""

from __future__ import annotations

import hashlib

import torch

from obliviate.data.forms import direct_forms, probes
from obliviate.data.realfacts import real_facts, verify_known
from obliviate.data.schema import Fact
from obliviate.judge import get_judge
from obliviate.models import LoadedModel, cache_dir, load_model
from obliviate.progress import phase
from obliviate.runs import read_json, write_json
from obliviate.scoring import GENERATION_BATCH, score_probes

# Part of the cache key: a new rule re-checks every model (v3: 64-token chat replies; v4: 64 prompts per batch,
# whose bf16 rounding moves a few verdicts against v3's 16).
KNOWN_RULE = "direct-forms-strict-judge-v4"


def answered_directly(lm: LoadedModel, facts: list[Fact], judge: str = "strict",
                      forms: tuple[str, ...] | None = None, batch_size: int = GENERATION_BATCH,
                      progress: bool = False) -> list[bool]:
    """Per fact: does `lm` give the answer to any of its probes in `forms` (default: `forms.direct_forms`)?

    One batched scoring call per form, each asking only the facts no earlier form answered, the chat turn first
    (an instruct model answers most there), so a fact known in chat is not asked twice more."""
    forms = sorted(forms or direct_forms(lm.tokenizer), key=lambda form: form != "chat")
    answered = [False] * len(facts)
    with phase(f"which of {len(facts)} facts the model answers", total=len(forms), show=progress) as step:
        for form in forms:
            todo = [i for i, ok in enumerate(answered) if not ok]
            if todo:
                groups = [probes(facts[i], form, lm.tokenizer) for i in todo]
                results = iter(score_probes(lm, [p for g in groups for p in g], batch_size=batch_size,
                                            judge_fn=get_judge(judge)))
                for i, g in zip(todo, groups):
                    answered[i] = any([next(results).correct for _ in g])
            step(form)
    return answered


def known_and_unknown(lm: LoadedModel, use_cache: bool = True) -> tuple[list[Fact], list[Fact]]:
    """(builtin real facts `lm` answers, those it does not), checked once per model source, in fp32.

    Why always fp32: the split of builtin:realfacts is drawn from this list, so it must not depend on how a
    later command asks. On SmolLM2 (2026-12-07) the check in bf16 found 162 facts, 6 of them other than the
    fp32 check's 162, and fp32 on a bf16 copy cast back found 164 (the rounding is in the weights), so a model
    unlearned from the fp32 draw of forget20 and evaluated with `--dtype bfloat16` was asked about other facts
    than it trained on. A model in another dtype is therefore loaded again from its source in fp32 for the
    check (a one-off per model: the verdicts are cached)."""
    facts = real_facts()
    ids = hashlib.sha256(("|".join(f.id for f in facts) + f"|{KNOWN_RULE}").encode()).hexdigest()[:8]
    path = cache_dir() / "known" / f"{hashlib.sha256(lm.source.encode()).hexdigest()[:12]}-{ids}.json"
    if use_cache and path.exists():
        keep = set(read_json(path)["known"])
    else:
        full = lm if next(lm.model.parameters()).dtype == torch.float32 else load_model(lm.source, dtype="float32")
        answered = answered_directly(full, facts, progress=True)
        keep = {f.id for f, ok in zip(facts, answered) if ok}
        write_json(path, {"model": lm.source, "dtype": "float32", "rule": KNOWN_RULE, "known": sorted(keep)})
    known = verify_known(facts, lambda fs: [f.id in keep for f in fs])
    return known, [f for f in facts if f.id not in keep]


def known_real_facts(lm: LoadedModel, use_cache: bool = True) -> list[Fact]:
    """The builtin real facts `lm` answers when asked directly."""
    return known_and_unknown(lm, use_cache)[0]
