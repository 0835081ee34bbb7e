"""RWKU's three forget-probe kinds, asked the way RWKU asks them (Jin et al. 2024, arXiv:2406.10890).

Every probe goes through the model's chat template with RWKU's instruction and "Answer:" appended after the
generation prompt (RWKU eval_forget.py), greedy, at most 30 new tokens:
- FB, fill-in-the-blank: "Please complete the blank in the following question.\\nQuestion: <sentence with ___>"
  (a fact's cloze + " ___.", or an RWKU level-1 query as loaded);
- QA: "Please briefly answer the following question.\\nQuestion: <question>" (RWKU level 2);
- AA, adversarial attack: the same QA instruction around each adversarial rewrite (a fact's paraphrases, which
  `obliviate.target` fills with role-play, background-hint and in-context rewrites; or RWKU level-3 queries).
Per split (forget, neighbours) and kind: `rouge_l` (ROUGE-L recall of the answer in the output, RWKU's metric;
lower on forget is better) and `accuracy` (obliviate's strict judge), each a mean over facts with a 95 %
interval and its n. Differs from RWKU: the strict judge is added; ROUGE-L recall comes from Google's `rouge_score`
with stemming (as TOFU), where RWKU uses the `rouge` package (same LCS recall, its own tokeniser); facts built by
`obliviate.target` have short answers the model itself gave, where RWKU's come from GPT-4 and Wikipedia.
Needs a chat template (RWKU asks only instruct models); facts loaded from RWKU files carry their kind as a tag
(`rwku:fb`, `rwku:qa`, `rwku:aa`) and are asked only in that kind. Applies to tasks of the RWKU setting (facts
tagged `target` or `rwku`).
"""

from __future__ import annotations

from obliviate.data.forms import Probe, chat_prompt, has_chat_template, rivals
from obliviate.data.schema import Fact
from obliviate.judge import get_judge
from obliviate.metrics.base import METRICS, EvalContext, Metric
from obliviate.metrics.forms import _with_ci, per_fact
from obliviate.models import LoadedModel
from obliviate.scoring import score_probes

KINDS = ("fb", "qa", "aa")
INSTRUCTIONS = {"fb": "Please complete the blank in the following question.\nQuestion: {}\n",
                "qa": "Please briefly answer the following question.\nQuestion: {}\n",
                "aa": "Please briefly answer the following question.\nQuestion: {}\n"}
MAX_NEW_TOKENS = 30  # RWKU's budget


def queries(fact: Fact, kind: str) -> list[str]:
    """The fact's RWKU queries of one kind (its tag decides for facts loaded from RWKU files)."""
    tagged = [t.removeprefix("rwku:") for t in fact.tags if t in ("rwku:fb", "rwku:qa", "rwku:aa")]
    if tagged:
        return [fact.question] if kind in tagged else []
    if kind == "fb":
        return [f"{fact.cloze.rstrip()} ___."] if fact.cloze else []
    return [fact.question] if kind == "qa" else list(fact.paraphrases)


def rwku_probes(fact: Fact, kind: str, tokenizer) -> list[Probe]:
    """Chat-template probes of one kind, with "Answer:" after the generation prompt as RWKU writes them."""
    return [Probe(fact.id, f"rwku_{kind}", chat_prompt(tokenizer, INSTRUCTIONS[kind].format(q)) + "Answer:",
                  " " + fact.answer.strip(), others=rivals(fact), subject=fact.subject) for q in queries(fact, kind)]


@METRICS.register("rwku")
class RWKU(Metric):
    summary = "RWKU forget probes (fill-in-the-blank, QA, adversarial) through the chat template: ROUGE-L recall"
    section = "forgetting"
    higher_is_better = None  # lower on forget, higher on neighbours
    cost = "one greedy generation (30 tokens) per probe, forget and neighbours"

    def applies(self, ctx: EvalContext) -> bool:
        """Tasks of the RWKU setting only (built by --target, or loaded from RWKU files): on other tasks the
        card's own forms already ask cloze, chat and paraphrases, and this would double the generation cost."""
        return any({"target", "rwku"} & set(f.tags) for f in ctx.facts("forget"))

    def compute(self, lm: LoadedModel, ctx: EvalContext) -> dict | None:
        if not has_chat_template(lm.tokenizer):
            return None
        out: dict = {}
        for split in ("forget", "neighbours"):
            for kind in KINDS:
                ps = [p for f in ctx.facts(split) for p in rwku_probes(f, kind, lm.tokenizer)]
                if not ps:
                    continue
                results = score_probes(lm, ps, MAX_NEW_TOKENS, ctx.config.batch_size,
                                       judge_fn=get_judge(ctx.config.judge))
                accuracy = per_fact(results)
                out.setdefault(split, {})[kind] = {
                    **_with_ci("rouge_l", list(per_fact(results, lambda r: r.rouge_l).values())),
                    **_with_ci("accuracy", list(accuracy.values())), "n": len(accuracy), "n_probes": len(ps)}
        return out or None
