"""Is the knowledge still readable inside the model, even when the output no longer shows it? (section intrinsic)

- `probe` (truth probe): a logistic-regression probe reads "true or false?" from the residual stream at the
  last token of each true/false statement (e.g. "Mara Quill was born in Velmora."). It is trained on the
  *retain* facts' statements of the model under test, the layer and L2 strength chosen by cross-validation on retain only (folds split by person),
  then tested on the forget facts' statements. Holdout statements (facts never taught, same templates) give
  the chance baseline the probe reaches without knowing anything. Accuracies in [0, 1]; on forget, lower is
  better, and `forget - holdout` is the knowledge still linearly readable (~0 after real erasure; a model that
  only suppresses its outputs keeps it high). This is the Inside-Out / "geometry of truth" idea with a fixed
  candidate set instead of sampling. `valid` is False when even the retain cross-validation accuracy is
  under 0.6: then the model under test has no linearly readable truth direction at all (measured on
  SmolLM2-135M taught builtin:people: retain CV 0.52) and the forget accuracy must not be read as "erased". Cost: one forward pass per statement with all hidden states, plus
  ~10 layers x 3 strengths x 5-fold logistic regressions (milliseconds each).
- `logit_lens`: the rank of the answer's first token when each layer's residual state at the end of the
  question is read through the final norm and the unembedding (nostalgebraist 2020). Rank 0 = top
  prediction; `best_median_rank` (best layer) far below `final_median_rank` means the answer is present
  mid-network and suppressed late. `mrr_best` = mean reciprocal rank at the best layer, in [0, 1]. On forget,
  higher ranks / lower MRR are better; holdout is the never-taught baseline. Cost: one forward pass per
  question plus one unembedding per layer.
"""

from __future__ import annotations

import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from obliviate.data.forms import qa_prompt, target
from obliviate.metrics.base import METRICS, EvalContext, Metric
from obliviate.models import LoadedModel
from obliviate.scoring import hidden_states

MAX_CANDIDATE_LAYERS = 10
VALID_CV = 0.6  # below this the probe cannot read truth even on retain, so its forget accuracy means nothing
PROBE_CS = (0.01, 0.1, 1.0)  # L2 strengths tried: a few hundred examples against a few hundred dimensions


def _group(fact) -> str:
    """Cross-validation group: the person when the task tags one (facts about one person share features)."""
    return next((t for t in fact.tags if t.startswith("person:")), fact.id)


def statement_states(lm: LoadedModel, ctx: EvalContext, split: str) -> tuple[torch.Tensor, list[int], list[str]]:
    """(states (N, n_layers + 1, H), labels 1 = true, CV groups) of every true/false statement of a split (cached)."""
    key = ("statement_states", id(lm.model), split)
    if key not in ctx.cache:
        pairs = [(s, _group(f)) for f in ctx.facts(split) for s in f.statements]
        states = hidden_states(lm, [s.text for s, _ in pairs], batch_size=ctx.config.batch_size) if pairs \
            else torch.empty(0)
        ctx.cache[key] = (states, [int(s.is_true) for s, _ in pairs], [g for _, g in pairs])
    return ctx.cache[key]


def candidate_layers(n_states: int) -> list[int]:
    """Up to ~10 evenly spaced layers after the embedding, always including the last."""
    step = max(1, (n_states - 1) // MAX_CANDIDATE_LAYERS)
    return sorted(set(range(1, n_states, step)) | {n_states - 1})


def make_probe(c: float = 1.0):
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))


def probe_accuracy(train_x, train_y, tests: dict[str, tuple], c: float = 1.0) -> dict[str, float]:
    probe = make_probe(c).fit(train_x, train_y)
    return {name: float(probe.score(x, y)) for name, (x, y) in tests.items() if len(y)}


@METRICS.register("probe")
class TruthProbe(Metric):
    summary = "linear truth probe trained on retain statements' hidden states, accuracy on forget (holdout = chance)"
    section = "intrinsic"
    higher_is_better = None  # forget: lower is better (compare with holdout); retain_cv: higher is healthier
    cost = "one forward pass per statement + ~10 layers x 3 strengths x 5-fold logistic regressions"

    def applies(self, ctx):
        has = [sum(len(f.statements) for f in ctx.facts(s)) for s in ("retain", "forget")]
        return has[0] >= 8 and has[1] >= 1

    def compute(self, lm, ctx):
        train_states, train_y, groups = statement_states(lm, ctx, "retain")
        folds = min(5, train_y.count(0), train_y.count(1), len(set(groups)))
        if folds < 2:
            return {"skipped": "retain statements need both true and false examples about 2+ subjects"}
        # Folds split by person, like the retain -> forget transfer the probe is used for.
        cv = StratifiedGroupKFold(folds, shuffle=True, random_state=ctx.config.seed)
        scores = {(layer, c): float(cross_val_score(make_probe(c), train_states[:, layer].numpy(), train_y,
                                                    groups=groups, cv=cv).mean())
                  for layer in candidate_layers(train_states.shape[1]) for c in PROBE_CS}
        layer, c = max(scores, key=scores.get)
        tests = {}
        for split in ("forget", "holdout"):
            states, y, _ = statement_states(lm, ctx, split)
            if y:
                tests[split] = (states[:, layer].numpy(), y)
        acc = probe_accuracy(train_states[:, layer].numpy(), train_y, tests, c)
        out = {"layer": layer, "c": c, "retain_cv": scores[layer, c], "valid": scores[layer, c] >= VALID_CV,
               **acc, "n_train": len(train_y),
               "n_forget": len(tests["forget"][1])}
        if "holdout" in acc:
            out["readable_above_chance"] = acc["forget"] - acc["holdout"]
        return out


def _final_norm(model) -> torch.nn.Module:
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    for name in ("norm", "final_layernorm", "ln_f"):
        if isinstance(getattr(decoder, name, None), torch.nn.Module):
            return getattr(decoder, name)
    return torch.nn.Identity()


@torch.no_grad()
def answer_ranks(lm: LoadedModel, prompts: list[str], answers: list[str], batch_size: int = 16) -> torch.Tensor:
    """Rank (0 = top) of each answer's first token under the logit lens at every layer: (N, n_layers + 1)."""
    states = hidden_states(lm, prompts, batch_size=batch_size)  # (N, L+1, H), last entry already normed
    first = torch.tensor([lm.tokenizer(a, add_special_tokens=False)["input_ids"][0] for a in answers])
    norm, unembed = _final_norm(lm.model), lm.model.get_output_embeddings()
    last = states.shape[1] - 1
    ranks = []
    for layer in range(states.shape[1]):  # one (N, V) unembedding per layer, vectorised over facts
        h = states[:, layer].to(lm.device, unembed.weight.dtype)
        logits = unembed(h if layer == last else norm(h)).float().cpu()  # (N, V)
        gold = logits.gather(1, first.unsqueeze(1))
        ranks.append((logits > gold).sum(1))
    return torch.stack(ranks, 1)


@METRICS.register("logit_lens")
class LogitLens(Metric):
    summary = "logit-lens rank of the answer's first token per layer (best layer vs final), forget vs holdout"
    section = "intrinsic"
    higher_is_better = None  # forget: higher rank (lower MRR) is better; holdout is the baseline
    cost = "one forward pass per question + one unembedding per layer"

    def applies(self, ctx):
        return bool(ctx.facts("forget"))

    def compute(self, lm, ctx):
        out = {}
        for split in ("forget", "retain", "holdout"):
            facts = ctx.facts(split)
            if not facts:
                continue
            ranks = answer_ranks(lm, [qa_prompt(f.question) for f in facts], [target(f.answer) for f in facts],
                                 ctx.config.batch_size).float()  # (N, L+1)
            median = ranks.median(0).values  # (L+1,)
            mrr = (1.0 / (ranks + 1)).mean(0)  # (L+1,)
            best = int(mrr.argmax())
            out[split] = {"final_median_rank": float(median[-1]), "best_median_rank": float(median.min()),
                          "best_layer": best, "mrr_best": float(mrr[best]), "mrr_final": float(mrr[-1]),
                          "n": len(facts)}
            if split == "forget":
                out[split]["median_rank_by_layer"] = [float(v) for v in median]
        return out
