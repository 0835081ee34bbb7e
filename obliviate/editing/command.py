"""`obliviate edit`: apply the edits of a JSONL file to a model and save the edited model with a report.

Each line of the edits file is one request:

    {"subject": "Mara Quill", "prompt": "{} was born in", "target_new": "Brisca", "target_true": "Velmora"}

`prompts` (a list) may replace `prompt`; "{}" marks where the subject goes. `target_true` is optional.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from obliviate.editing.rome import EditConfig, EditRequest, edit
from obliviate.editing.sadr import SADRConfig
from obliviate.errors import ConfigError, TaskFormatError


def read_edits(path: str | Path) -> list[EditRequest]:
    """Edit requests from a JSONL file; errors name the file and line and say what to fix."""
    path = Path(path)
    if not path.is_file():
        raise TaskFormatError(f"edits file {path} does not exist; give a JSONL file with one edit per line")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise TaskFormatError(f"{where}: not valid JSON ({e.msg})") from e
        unknown = set(row) - {"subject", "prompt", "prompts", "target_new", "target_true"}
        if unknown:
            raise TaskFormatError(f"{where}: unknown field(s) {sorted(unknown)}; use subject, prompt(s), target_new, "
                                  "target_true")
        prompts = row.get("prompts") or ([row["prompt"]] if "prompt" in row else [])
        try:
            out.append(EditRequest(str(row.get("subject", "")), tuple(prompts), str(row.get("target_new", "")),
                                   str(row.get("target_true", ""))))
        except ConfigError as e:
            raise TaskFormatError(f"{where}: {e}") from e
    if not out:
        raise TaskFormatError(f"{path} has no edits")
    return out


def run_edit_command(model: str, edits: str | Path, out: str | Path | None = None, layers: str = "",
                     sadr_weight: float = 0.0, nullspace_threshold: float = 0.0, steps: int = 25,
                     corpus_file: str = "") -> dict:
    """Load `model`, apply every edit of `edits` at once (MEMIT over `EditConfig` default blocks), save to `out`.

    Writes a standard Hugging Face model directory plus `edit.json` (config, per-edit final NLL, before/after
    probability of each new object, greedy answers). Returns that report.

    >>> # obliviate edit --model default --edits edits.jsonl --out runs/edited --sadr-weight 1
    """
    from obliviate.models import save_model
    from obliviate.pipeline import resolve_model
    from obliviate.runs import environment, new_run_dir, write_json
    from obliviate.scoring import answer_probability, generate

    requests = read_edits(edits)
    layer_list = tuple(int(p) for p in layers.split(",")) if layers else ()
    config = EditConfig(layers=layer_list, steps=steps, nullspace_threshold=nullspace_threshold,
                        corpus_file=corpus_file, sadr=SADRConfig(weight=sadr_weight) if sadr_weight > 0 else None)
    lm = resolve_model(model)  # 'default', a dir, a hub id, or taught:<task> / reference:<task>
    prompts = [p.format(r.subject) for r in requests for p in r.prompts]
    news = [" " + r.target_new.strip() for r in requests for _ in r.prompts]
    before = answer_probability(lm, prompts, news)
    result = edit(lm, requests, config)
    after = answer_probability(lm, prompts, news)
    answers = generate(lm, prompts, max_new_tokens=8)
    out_dir = Path(out) if out else new_run_dir(prefix="edit")
    save_model(lm, out_dir)
    rows = [{"prompt": p, "target_new": t.strip(), "p_before": float(b), "p_after": float(a), "answer": g}
            for p, t, b, a, g in zip(prompts, news, before, after, answers)]
    report = {"model": model, "edits": str(edits), "layers": list(result.layers), "seconds": result.seconds,
              "final_nll": result.nll, "config": {k: v for k, v in asdict(config).items() if k != "corpus"},
              "success": sum(r["answer"].lower().startswith(r["target_new"].lower()) for r in rows) / len(rows),
              "prompts": rows, "environment": environment()}
    write_json(out_dir / "edit.json", report)
    return report
