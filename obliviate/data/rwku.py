"""Read RWKU's released probes from the user's disk (Jin et al. 2024, arXiv:2406.10890); nothing is shipped.

RWKU's data_process.py writes one folder per target with JSON lists of `{subject, query, answer, level, type}`:
forget_level1.json (fill-in-the-blank), forget_level2.json (question answering), forget_level3.json
(adversarial attacks), neighbor_level1.json / neighbor_level2.json (related knowledge that must stay), and
optionally positive.json / passage.json rows with a `text` (a forget corpus). Each probe becomes one Fact tagged
with its kind (`rwku:fb`, `rwku:qa`, `rwku:aa`), which the card's `rwku` metric asks in that kind only; a
fill-in-the-blank query whose blank ends the sentence also gets the text before the blank as its cloze.
A `.jsonl` file of the same rows (an export of the Hugging Face configs) is read too.
"""

from __future__ import annotations

import re
from pathlib import Path

from obliviate.data.rows import read_rows
from obliviate.data.schema import Document, Fact, Task
from obliviate.errors import TaskFormatError

FILES = {"forget_level1": ("forget", "fb"), "forget_level2": ("forget", "qa"), "forget_level3": ("forget", "aa"),
         "neighbor_level1": ("neighbours", "fb"), "neighbor_level2": ("neighbours", "qa")}
CORPUS = ("positive", "passage")
BLANK_AT_END = re.compile(r"^(.*?\S)\s*_{2,}\s*[.?!]?\s*$", re.S)


def is_rwku_folder(folder: Path) -> bool:
    return any((folder / f"{stem}{ext}").is_file() for stem in FILES for ext in (".json", ".jsonl"))


def _rows(path: Path) -> list[dict]:
    rows = read_rows(path)
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) and row[k].strip()
                                                for k in ("query", "answer")):
            raise TaskFormatError(f"{path} item {i}: RWKU probes need 'query' and 'answer'")
    return rows


def load_rwku(folder: str | Path) -> Task:
    """One RWKU target folder as a Task: forget probes of the three kinds, neighbour probes, the forget corpus."""
    folder = Path(folder)
    task = Task(name=f"rwku-{folder.name}")
    for stem, (split, kind) in FILES.items():
        for path in (folder / f"{stem}.json", folder / f"{stem}.jsonl"):
            if not path.is_file():
                continue
            for i, row in enumerate(_rows(path)):
                query, answer = row["query"].strip(), row["answer"].strip()
                blank = BLANK_AT_END.match(query) if kind == "fb" else None
                tags = ("rwku", f"rwku:{kind}", *([f"rwku-type:{row['type']}"] if row.get("type") else []))
                getattr(task, split).append(Fact(
                    id=f"rwku.{stem}.{i}", question=query, answer=answer, subject=str(row.get("subject", "")),
                    cloze=blank.group(1) if blank else "", tags=tags))
    for stem in CORPUS:
        path = folder / f"{stem}.json"
        if path.is_file():
            rows = read_rows(path)
            task.forget_documents += [Document(id=f"rwku.{stem}.{i}", text=r["text"].strip(), tags=("rwku",))
                                      for i, r in enumerate(rows) if isinstance(r, dict) and r.get("text")]
    if not task.forget:
        raise TaskFormatError(f"{folder}: no RWKU forget probes (forget_level1/2/3.json) here")
    return task.validate()
