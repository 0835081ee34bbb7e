"""One progress display for every long phase: a live bar with an estimate on a terminal, one line per finished
phase with its time in a log (stderr not a terminal) plus a line at the first finished step after each minute of
silence, so a long phase never looks hung; nothing when quiet (`set_quiet`, `OBLIVIATE_QUIET=1`, or the CLI's
`--quiet`).

>>> with phase("scoring", total=3) as step:
...     for name in ("qa", "cloze", "mcq"):
...         step(name)
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

_state: dict = {"quiet": os.environ.get("OBLIVIATE_QUIET") == "1", "progress": None, "depth": 0,
                "last_line": time.perf_counter()}
LOG_SILENCE_S = 60.0  # in a log, a finished step prints a line once this long has passed without one
_console = Console(stderr=True)


def set_quiet(quiet: bool) -> None:
    """Silence (or restore) every progress display of this process."""
    _state["quiet"] = quiet


def quiet() -> bool:
    return bool(_state["quiet"])


def _live() -> Progress:
    if _state["progress"] is None:
        _state["progress"] = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                      console=_console, transient=True)
        _state["progress"].start()
    return _state["progress"]


@contextmanager
def phase(label: str, total: int | None = None, show: bool = True) -> Iterator[Callable[[str], None]]:
    """A long phase of `total` steps; yields `step(detail="")`, called once per finished step (`show=False`:
    silent, like `set_quiet` for this phase only).

    Phases nest (an evaluation's metrics, a metric's forms): each gets its own bar. A top-level phase prints one
    line when it ends ("label: 12 steps in 34 s"), so a log shows every phase and its time; in a log, a step of
    any phase that finishes after `LOG_SILENCE_S` without a line prints one ("label: 3/12 done (qa), 75 s so far").
    """
    started = time.perf_counter()
    done = [0]
    if quiet() or not show:
        yield lambda detail="": None
        return
    interactive = _console.is_terminal
    task = _live().add_task(label, total=total) if interactive else None
    _state["depth"] += 1

    def step(detail: str = "") -> None:
        done[0] += 1
        if task is not None:
            _state["progress"].update(task, advance=1, description=f"{label} · {detail}" if detail else label)
        elif time.perf_counter() - _state["last_line"] >= LOG_SILENCE_S:
            of = f"/{total}" if total else ""
            _line(f"{label}: {done[0]}{of} done{f' ({detail})' if detail else ''}, "
                  f"{time.perf_counter() - started:.0f} s so far")

    try:
        yield step
    finally:
        _state["depth"] -= 1
        seconds = time.perf_counter() - started
        if task is not None:
            _state["progress"].remove_task(task)
            if _state["depth"] == 0:
                _state["progress"].stop()
                _state["progress"] = None
        if _state["depth"] == 0:  # nested phases show a bar only: one line per top-level phase
            counted = f"{done[0]} steps in " if total else ""
            _line(f"{label}: {counted}{seconds:.0f} s")


def _line(text: str) -> None:
    _console.print(text, highlight=False)
    sys.stderr.flush()
    _state["last_line"] = time.perf_counter()


def note(text: str) -> None:
    """One line of news from a long run (e.g. a probe's scores between training steps), unless quiet."""
    if not quiet():
        _console.print(text, highlight=False, soft_wrap=True)
        _state["last_line"] = time.perf_counter()
