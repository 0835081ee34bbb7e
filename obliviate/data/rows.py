"""Rows of a benchmark file as the field releases them: a JSON list, JSON lines, or Parquet."""

from __future__ import annotations

import json
from pathlib import Path

from obliviate.errors import TaskFormatError


def read_rows(path: Path) -> list:
    """Every row of `path` (.parquet via pandas; otherwise a JSON list or one JSON object per line)."""
    if path.suffix == ".parquet":
        import pandas as pd

        return pd.read_parquet(path).to_dict("records")
    text = path.read_text(encoding="utf-8")
    try:
        if text.lstrip().startswith("["):
            return json.loads(text)
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as e:
        raise TaskFormatError(f"{path}:{e.lineno}: malformed JSON ({e.msg}); fix the syntax") from e
