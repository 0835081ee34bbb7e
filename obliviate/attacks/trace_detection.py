"""Unlearning-trace detection: can a classifier tell the unlearned model from the original by its outputs?

Chen et al., "Unlearning Isn't Invisible" (arXiv 2506.14003): unlearning leaves fingerprints, even on prompts
unrelated to the forgotten data. The cheap detector their spec suggests: logistic regression on what the
model says next, here the sorted top-k next-token log-probs plus entropy (what an API with log-probs shows),
and, white-box, the final hidden state. Each prompt gives one sample per model; folds split by prompt, so the
detector is always tested on prompts it never saw. Accuracy is reported for unrelated prompts (the task's
general facts plus generic text) and, separately, for the forget questions. Chance is 50 %.

This attack recovers nothing (`recovers = False`), so it reports accuracies in `details`, not outcomes.
"""

from __future__ import annotations

import numpy as np
import torch

from obliviate.attacks.base import ATTACKS, Attack, AttackContext, AttackResult
from obliviate.data.forms import qa_prompt
from obliviate.hooks import n_layers
from obliviate.models import LoadedModel
from obliviate.scoring import hidden_states

TOP_K = 20
GENERIC_PROMPTS = (
    "Once upon a time", "The weather today is", "My favourite food is", "The best way to learn a language is",
    "In the morning I usually", "def add(a, b):\n    return", "The meeting has been moved to", "Dear Sir or Madam,",
    "The recipe calls for two cups of", "Water boils at", "The train leaves the station at", "A good book should",
    "To install the package, run", "The history of the Roman Empire", "Photosynthesis is the process by which",
    "The stock market closed", "My dog likes to", "The children played in the", "Please summarise the following text:",
    "The opposite of hot is", "Write a haiku about autumn.", "The first rule of programming is",
    "In 1969, astronauts", "The ingredients of a salad are", "She opened the door and saw", "Translate to French: cat",
    "The square root of 16 is", "A triangle has", "The main causes of climate change are", "Good morning! How are",
    "The museum is open from", "He picked up the guitar and", "List three primary colours:", "The ocean is",
    "An apple a day", "The password must contain", "Rain is expected on", "The theory of evolution explains",
    "Football is played with", "The library closes at",
)


def _features(lm: LoadedModel, prompts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(log-prob features (N, TOP_K + 1), final hidden state (N, H)) at each prompt's last token."""
    h = hidden_states(lm, prompts, [n_layers(lm.model)])[:, 0]  # final layer (after the final norm in HF Llama)
    with torch.no_grad():
        logits = lm.model.get_output_embeddings()(h.to(lm.device)).float().cpu()
    logp = logits.log_softmax(-1)
    top = logp.topk(TOP_K, dim=-1).values
    entropy = -(logp.exp() * logp).sum(-1, keepdim=True)
    return torch.cat([top, entropy], -1).numpy(), h.numpy()


def detector_accuracy(x_orig: np.ndarray, x_unl: np.ndarray, seed: int, folds: int = 5) -> float:
    """Mean held-out accuracy of logistic regression, folds split by prompt (a prompt is never in both)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n = len(x_orig)
    folds = max(2, min(folds, n))
    order = np.random.default_rng(seed).permutation(n)
    correct = total = 0
    for k in range(folds):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        x = np.concatenate([x_orig[train], x_unl[train]])
        y = np.r_[np.zeros(len(train)), np.ones(len(train))]
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, random_state=seed)).fit(x, y)
        xt = np.concatenate([x_orig[test], x_unl[test]])
        yt = np.r_[np.zeros(len(test)), np.ones(len(test))]
        correct += int((clf.predict(xt) == yt).sum())
        total += len(yt)
    return correct / total


@ATTACKS.register("trace_detection")
class TraceDetection(Attack):
    name = "trace_detection"
    summary = "classifier telling the unlearned model from the original by its next-token log-probs (accuracy)"
    paper = "Unlearning Isn't Invisible: Detecting Unlearning Traces in LLMs (Chen et al., arXiv 2506.14003)"
    recovers = False
    needs_original = True

    def run(self, lm: LoadedModel, ctx: AttackContext) -> AttackResult:
        """Accuracy (chance 0.5) on unrelated prompts and on the forget questions, for log-probs and hidden states."""
        if ctx.original is None:
            return self.result(ctx, [], "skipped: needs the original model")
        unrelated = [qa_prompt(f.question) for f in ctx.task.general] + list(GENERIC_PROMPTS)
        relevant = [qa_prompt(f.question) for f in ctx.task.forget]
        details: dict[str, float | int | None] = {"chance": 0.5, "unrelated_prompts": len(unrelated),
                                                  "forget_prompts": len(relevant)}
        for label, prompts in (("unrelated", unrelated), ("forget", relevant)):
            if len(prompts) < 4 or self.out_of_time(ctx):
                details[f"{label}_logprobs"] = details[f"{label}_hidden"] = None
                continue
            lp_o, h_o = _features(ctx.original, prompts)
            lp_u, h_u = _features(lm, prompts)
            details[f"{label}_logprobs"] = detector_accuracy(lp_o, lp_u, ctx.seed)
            details[f"{label}_hidden"] = detector_accuracy(h_o, h_u, ctx.seed)
        details["accuracy"] = details.get("unrelated_logprobs")
        shown = ", ".join(f"{k} {v:.0%}" for k, v in details.items()
                          if k.endswith(("_logprobs", "_hidden")) and v is not None)
        return self.result(ctx, [], f"detector accuracy (chance 50%): {shown}", **details)
