"""lm-evaluation-harness on the real SmolLM2 agrees with obliviate's own MCQ scoring (slow: well under a minute).

All ~80 built-in real facts as an lm-eval multiple-choice task (obliviate's prompts, local JSONL): lm-eval's
accuracy must equal `score_probes`' MCQ accuracy, with every option's log-likelihood matching, so either scorer
would catch the other's bug. Whether the accuracy is above chance is not asserted: SmolLM2-135M reads these
multiple-choice prompts barely better than chance (lm-eval acc 0.35 with binomial p = 0.029 on 2026-11-29,
p = 0.094 on 2026-12-04 after the distractor pools were fixed), so that test would measure the model, not the bridge.
"""

import pytest
import torch

from obliviate.data.forms import probes
from obliviate.data.realfacts import real_facts
from obliviate.scoring import choice_logprobs, score_probes
from obliviate.utility_bridge import evaluate_raw, scores, write_mcq_tasks

pytest.importorskip("lm_eval")
pytestmark = [pytest.mark.slow, pytest.mark.benchmark]  # ~1 min; tests/test_lm_eval_bridge.py checks the bridge on a tiny model in CI

TASK = "obliviate_realfacts_mcq"


def test_lm_eval_mcq_accuracy_and_loglikelihoods_equal_obliviates(base, tmp_path):
    facts = real_facts()
    mcq = [p for f in facts for p in probes(f, "mcq")]
    write_mcq_tasks(tmp_path, {TASK: facts})
    raw = evaluate_raw(base, [TASK], tmp_path, include_defaults=False, log_samples=True)
    acc = scores(raw)[TASK]
    n = len(mcq)
    assert acc["n"] == n

    ours = sum(r.correct for r in score_probes(base, mcq)) / n
    assert abs(acc["acc"] - ours) <= 1 / n, (acc["acc"], ours)  # at most one near-tie may flip
    expected = choice_logprobs(base, [p.prompt for p in mcq], [p.choices for p in mcq])
    for sample in raw["samples"][TASK]:
        got = torch.tensor([ll for ll, _ in sample["filtered_resps"]])
        assert torch.allclose(got, expected[sample["doc_id"]], rtol=1e-3, atol=1e-2), sample["doc"]["id"]

