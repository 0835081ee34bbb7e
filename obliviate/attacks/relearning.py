"""Relearning: fine-tune a copy of the model for a few steps on SOME facts and check whether the OTHERS come back.

If forgetting only hid the knowledge, a little training on related data restores it wholesale (Lynch et al.,
"Eight Methods to Evaluate Robust Unlearning in LLMs", arXiv 2402.16835; Deeb & Roger, arXiv 2410.08827).
Three sources: half of the forget targets ("half", the rest are held out and judged: the RTT protocol of Deeb &
Roger), the task's neighbour facts ("neighbours", every target is judged), or ten fact-free sentences ("benign",
every target is judged; registered as `benign_relearning`). A training fact whose answer is a held-out answer is left out,
otherwise the attack would simply teach the held-out answer. The default learning rate, 3e-5, is the largest that
did not over-fit on SmolLM2: at 5e-5 a copy trained on 3 facts gives their answers to every question, and at 1e-5
nothing came back after weak GA (measured).
"""

from __future__ import annotations

from obliviate.attacks.base import ATTACKS, Attack, AttackContext, AttackResult, halves, judge_groups
from obliviate.data.forms import direct_forms, direct_probes
from obliviate.data.schema import Document, Fact
from obliviate.errors import ConfigError
from obliviate.judge import normalise
from obliviate.methods.base import target_nll
from obliviate.models import LoadedModel
from obliviate.teach import copy_model
from obliviate.text import NEUTRAL_TEXT
from obliviate.train import TrainConfig, run_training
from obliviate.unlearn import fact_examples

SOURCES = ("half", "neighbours", "benign")
BENIGN_TEXTS = 10  # Łucki et al. recover most of what RMU removed with 10 unrelated examples


def training_facts(ctx: AttackContext, source: str) -> tuple[list[Fact], list[Fact]]:
    """(facts to fine-tune on, facts to judge), with no training answer equal to a judged answer."""
    if source == "half":
        train, held = halves(ctx.targets, ctx.seed)
    else:
        train, held = list(ctx.task.neighbours) or list(ctx.task.retain), list(ctx.targets)
    held_answers = {normalise(f.answer) for f in held}
    return [f for f in train if normalise(f.answer) not in held_answers], held


@ATTACKS.register("relearning")
class Relearning(Attack):
    name = "relearning"
    summary = "fine-tune a copy a few steps on half the forget facts (or neighbours); are the others back?"
    paper = "Eight Methods to Evaluate Robust Unlearning in LLMs (Lynch et al., arXiv 2402.16835)"

    def __init__(self, source: str = "half", lr: float = 3e-5, batch_size: int = 4) -> None:
        super().__init__()
        if source not in SOURCES:
            raise ConfigError(f"relearning: source must be one of {', '.join(SOURCES)}, got {source!r}")
        self.source, self.lr, self.batch_size = source, lr, batch_size

    def run(self, lm: LoadedModel, ctx: AttackContext) -> AttackResult:
        """`budget.steps` optimizer steps of answer NLL on the training facts asked directly (QA, chat, cloze),
        through the one training loop; the held-out facts are judged asked the same ways."""
        if self.source == "benign":  # fact-free sentences: whatever comes back was never taught by the attack
            train, held = [], list(ctx.targets)
            texts = [Document(f"neutral-{i}", text) for i, text in enumerate(NEUTRAL_TEXT[:BENIGN_TEXTS])]
            examples = fact_examples([], (), texts)
        else:
            train, held = training_facts(ctx, self.source)
            if not train or not held:
                return self.result(ctx, [], f"nothing to do: {len(train)} training fact(s), {len(held)} held out")
            examples = fact_examples(train, direct_forms(lm.tokenizer), tokenizer=lm.tokenizer)
        config = TrainConfig(steps=max(1, ctx.budget.steps), lr=self.lr, batch_size=min(self.batch_size, len(examples)),
                             seed=ctx.seed, check_every=1, progress=False)
        trained = run_training(copy_model(lm), lambda c, b: (target_nll(c.model, b.forget), {}), examples, None,
                               config, stop_check=lambda _lm, _step: self.out_of_time(ctx),
                               description=f"attack[{self.name}]")
        outcomes = judge_groups(trained.lm, held, [direct_probes(f, lm.tokenizer) for f in held])
        what = f"{len(examples)} fact-free sentences" if self.source == "benign" else f"{len(train)} {self.source} fact(s)"
        notes = (f"trained on {what} for {trained.steps_done} steps"
                 f"{' (time budget)' if trained.stopped_early else ''}, judged {len(held)} others")
        return self.result(ctx, outcomes, notes, source=self.source, trained_on=[f.id for f in train], lr=self.lr)
