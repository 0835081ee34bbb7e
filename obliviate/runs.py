"""Run folders: every run writes its config beside its results, so a number can always be traced back."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any


def new_run_dir(root: str | Path = "runs", prefix: str = "run") -> Path:
    """runs/<prefix>-<timestamp>, created."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{prefix}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = Path(root) / f"{prefix}-{stamp}-{n}"
    path.mkdir(parents=True)
    return path


def environment() -> dict[str, str]:
    """Versions that affect numbers."""
    import torch
    import transformers

    from obliviate import __version__

    return {"obliviate": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}


def write_json(path: str | Path, data: Any) -> Path:
    """Write JSON atomically (a crash never leaves half a file that a resumed run would trust)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".partial")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)
    return path


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def same_inputs_or_fail(path: str | Path, inputs: dict[str, Any], kind: str) -> dict[str, Any]:
    """Before resuming into a folder: the inputs recorded at `path` (if any) must equal `inputs`.

    Returns what was recorded ({} for a new run); raises ConfigError naming the keys that differ.
    """
    from obliviate.errors import ConfigError

    path = Path(path)
    if not path.exists():
        return {}
    before = read_json(path)
    changed = [k for k in inputs if before.get(k) != inputs[k]]
    if changed:
        raise ConfigError(f"{path.parent} holds a {kind} with other inputs ({', '.join(changed)} differ); "
                          "pass a new out_dir or delete the folder to start again")
    return before
