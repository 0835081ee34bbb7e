"""The progress display in a log (stderr not a terminal): a line per finished phase, and one during a long one."""

import io
import time

from rich.console import Console

from obliviate import progress


def _log(monkeypatch) -> io.StringIO:
    log = io.StringIO()
    monkeypatch.setattr(progress, "_console", Console(file=log, width=200))
    monkeypatch.setitem(progress._state, "quiet", False)
    monkeypatch.setitem(progress._state, "last_line", time.perf_counter())  # as if a line was just printed
    return log


def test_a_log_gets_one_line_per_phase_and_none_per_step_within_a_minute(monkeypatch):
    log = _log(monkeypatch)
    with progress.phase("scoring", total=3) as step:
        for form in ("qa", "cloze", "chat"):
            step(form)
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scoring: 3 steps in ")


def test_a_long_silent_phase_prints_a_line_at_its_next_finished_step(monkeypatch):
    log = _log(monkeypatch)
    monkeypatch.setattr(progress, "LOG_SILENCE_S", 0.0)  # every step comes after "a minute" of silence
    with progress.phase("card", total=2) as outer:
        with progress.phase("forms", total=2) as inner:
            inner("qa")
            inner("chat")
        outer("forms")
        outer("mia")
    lines = log.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines[:4]] == ["forms: 1/2 done (qa)", "forms: 2/2 done (chat)",
                                                          "card: 1/2 done (forms)", "card: 2/2 done (mia)"]
    assert lines[0].endswith("s so far") and lines[-1].startswith("card: 2 steps in ") and len(lines) == 5
