"""Run lm-evaluation-harness (`lm_eval`) on an obliviate model, offline, on task files made from our own facts.

Why: the forget card's keeping numbers are obliviate's own; lm-eval is what the field reports (MMLU, ARC...).
This module does two things and nothing else:

1. `write_mcq_tasks` turns facts into lm-eval multiple-choice tasks: one YAML (`dataset_path: json`) and one
   JSONL per task in a folder. The prompts and options are exactly `obliviate.data.forms.probes(f, "mcq")`, so
   lm-eval asks what obliviate's own MCQ scoring asks, and the two must agree.
2. `run_lm_eval` runs `lm_eval.simple_evaluate` on a `LoadedModel` in memory (`HFLM(pretrained=model)`), with
   a `TaskManager` over those folders plus any of the user's own (lm-eval's built-in tasks such as `mmlu`
   work too where their data is reachable), seeds fixed, and returns task -> metric -> value.

lm-eval is an optional extra: `pip install 'obliviate[lmeval]'`.

>>> import tempfile
>>> from obliviate.data.realfacts import real_facts
>>> from obliviate.models import tiny_model
>>> folder = tempfile.mkdtemp()
>>> names = write_mcq_tasks(folder, {"obliviate_realfacts_mcq": real_facts()[:4]})
>>> run_lm_eval(tiny_model(), names, folder)["obliviate_realfacts_mcq"]["n"]  # doctest: +SKIP
4
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from obliviate.data.forms import OPTION_LETTERS, probes
from obliviate.data.schema import Fact
from obliviate.errors import ConfigError
from obliviate.models import LoadedModel

INSTALL_HINT = "pip install 'obliviate[lmeval]'"
DATASET_CACHE = "_datasets_cache"  # inside the task folder, so the json loader's cache goes with it


def require_lm_eval() -> None:
    """Raise a ConfigError saying how to install lm-eval when it is not importable."""
    if importlib.util.find_spec("lm_eval") is None:
        raise ConfigError(f"the lm-evaluation-harness bridge needs the lm_eval package; install it with: {INSTALL_HINT}")


def mcq_rows(facts: Sequence[Fact]) -> list[dict[str, Any]]:
    """One JSON row per MCQ probe: obliviate's prompt, the options without their leading space, the right index.

    lm-eval scores `prompt + target_delimiter + option`; with the delimiter " " that is obliviate's
    `prompt + choice` exactly (its choices carry the space).
    """
    return [{"id": p.fact_id, "prompt": p.prompt, "choices": [c.removeprefix(" ") for c in p.choices],
             "label": p.correct}
            for f in facts for p in probes(f, "mcq")]


def wmdp_rows(facts: Sequence[Fact], topic: str = "") -> list[dict[str, Any]]:
    """One JSON row per MCQ fact in WMDP's lm-eval prompt: the description line, the question, lettered options,
    "Answer:"; the choices are the letters (lm-eval's wmdp task scores " A" ... " D")."""
    about = f" about {topic}" if topic else ""
    rows = []
    for f in facts:
        if f.mcq is None:
            continue
        listed = "\n".join(f"{OPTION_LETTERS[i]}. {o}" for i, o in enumerate(f.mcq.options))
        rows.append({"id": f.id, "label": f.mcq.answer_index, "choices": list(OPTION_LETTERS[:len(f.mcq.options)]),
                     "prompt": f"The following are multiple choice questions (with answers){about}.\n\n"
                               f"{f.mcq.question.strip()}\n{listed}\nAnswer:"})
    return rows


def task_config(name: str, data_file: Path, cache_dir: Path) -> dict[str, Any]:
    """An lm-eval multiple-choice task over a local JSONL file (column names, no Jinja: nothing to escape)."""
    return {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file)}, "cache_dir": str(cache_dir)},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "prompt",
        "doc_to_choice": "choices",
        "doc_to_target": "label",
        "target_delimiter": " ",
        "num_fewshot": 0,
        "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in ("acc", "acc_norm")],
        "metadata": {"version": 1.0},
    }


def write_mcq_tasks(folder: str | Path, facts_by_task: Mapping[str, Sequence[Fact]],
                    rows_of: Callable[[Sequence[Fact]], list[dict[str, Any]]] = mcq_rows) -> list[str]:
    """Write `<name>.yaml` + `<name>.jsonl` for every task name that has at least one MCQ fact; `rows_of` picks
    the prompt (`mcq_rows`: obliviate's own; `wmdp_rows`: WMDP's).

    Returns the names written, in the given order. Paths in the YAML are absolute (lm-eval resolves
    `data_files` against the working directory, not the YAML's folder).
    """
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, facts in facts_by_task.items():
        rows = rows_of(facts)
        if not rows:
            continue
        data = folder / f"{name}.jsonl"
        data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        config = task_config(name, data, folder / DATASET_CACHE)
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        written.append(name)
    return written


def evaluate_raw(
    lm: LoadedModel,
    tasks: Sequence[str],
    include_path: str | Path | Sequence[str | Path] | None = None,
    *,
    include_defaults: bool = True,
    batch_size: int = 16,
    limit: int | None = None,
    seed: int = 0,
    log_samples: bool = False,
) -> dict[str, Any]:
    """lm-eval's own result dict for `tasks` on `lm` (with per-sample records when `log_samples`).

    Args:
        tasks: lm-eval task or group names: ones written by `write_mcq_tasks`, ones under `include_path`, or
            lm-eval's built-in ones (`mmlu`, `arc_easy`...; their data must be reachable: hub or local cache).
        include_path: extra folder(s) of task YAMLs, searched after lm-eval's own.
        include_defaults: index lm-eval's ~15k built-in tasks too (about 4 s); not needed for our own tasks.
        limit: examples per task (None: all); for quick looks only, the numbers are then not comparable.
        seed: python, numpy, torch and few-shot seeds all take it (lm-eval sets them globally), so a run repeats.
    """
    require_lm_eval()
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    paths = [include_path] if isinstance(include_path, (str, Path)) else list(include_path or [])
    manager = TaskManager(include_path=[str(p) for p in paths] or None, include_defaults=include_defaults)
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise ConfigError(f"lm-eval does not know task(s) {unknown}; searched "
                          f"{[str(p) for p in paths] + (['lm-eval built-ins'] if include_defaults else [])}. "
                          "Check the names (`lm-eval ls tasks`) or pass the folder of their YAMLs as include_path.")
    model = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=batch_size)
    results = simple_evaluate(
        model=model, tasks=list(tasks), task_manager=manager, limit=limit, log_samples=log_samples,
        random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
        bootstrap_iters=1000,  # only for stderrs without a closed form (acc has one); 100k is lm-eval's slow default
    )
    assert results is not None, "simple_evaluate returns None only on non-zero ranks; we run a single process"
    return results


def scores(results: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """task -> metric -> value from lm-eval's result dict; `n` is the number of examples scored.

    lm-eval keys are `metric,filter`; the usual filter `none` is dropped (`acc,none` -> `acc`), others kept.
    Non-numbers (the `alias` label, "N/A" stderrs) are left out.
    """
    out: dict[str, dict[str, float]] = {}
    for task, values in results["results"].items():
        row = {}
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                metric, _, filt = key.partition(",")
                name = "n" if metric == "sample_len" else metric if filt in ("", "none") else key
                row[name] = float(value)
        out[task] = row
    return out


def run_lm_eval(
    lm: LoadedModel,
    tasks: Sequence[str],
    include_path: str | Path | Sequence[str | Path] | None = None,
    **kwargs: Any,
) -> dict[str, dict[str, float]]:
    """task -> metric -> value for `tasks` on `lm`; keyword arguments as in `evaluate_raw`."""
    return scores(evaluate_raw(lm, tasks, include_path, **kwargs))
