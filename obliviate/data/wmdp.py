"""WMDP-style multiple choice from the user's own files (Li et al. 2024, arXiv:2403.03218); nothing is shipped.

WMDP's released rows are `{question, choices: [4 strings], answer: index}` (JSON list, JSONL or Parquet, as in
the `cais/wmdp` dataset). Each row becomes a Fact whose answer is the right choice and whose `mcq` holds the
question and options, so the card's `mcq` form and the `wmdp` metric (lm-eval with WMDP's own prompt) both ask
it. Use `format: wmdp` in a task YAML for the splits in this layout; documents (the forget corpus of RMU's
setting) stay in obliviate's document format.
"""

from __future__ import annotations

from pathlib import Path

from obliviate.data.rows import read_rows
from obliviate.data.schema import Fact, MultipleChoice
from obliviate.errors import TaskFormatError


def load_wmdp(path: str | Path, id_prefix: str | None = None) -> list[Fact]:
    """Facts from a WMDP-layout file; a bad row is a one-line error naming the file, the row and the fix."""
    path = Path(path)
    if not path.is_file():
        raise TaskFormatError(f"{path}: file not found; check the path")
    prefix = id_prefix or path.stem
    facts = []
    for i, row in enumerate(read_rows(path)):
        where = f"{path} row {i}"
        question, choices, answer = row.get("question"), row.get("choices"), row.get("answer")
        if not isinstance(question, str) or not question.strip():
            raise TaskFormatError(f"{where}: 'question' is missing or empty")
        choices = list(choices) if choices is not None and not isinstance(choices, str) else None
        if not choices or len(choices) < 2 or not all(isinstance(c, str) and c.strip() for c in choices):
            raise TaskFormatError(f"{where}: 'choices' must be a list of at least two non-empty strings")
        if isinstance(answer, bool) or not isinstance(answer, int) and not str(answer).isdigit() \
                or not 0 <= int(answer) < len(choices):
            raise TaskFormatError(f"{where}: 'answer' must be the index of the right choice (0-{len(choices) - 1})")
        options = tuple(c.strip() for c in choices)
        facts.append(Fact(id=f"{prefix}.{i}", question=question.strip(), answer=options[int(answer)],
                          mcq=MultipleChoice(question.strip(), options, int(answer)), tags=("wmdp", prefix)))
    if not facts:
        raise TaskFormatError(f"{path}: no rows")
    return facts
