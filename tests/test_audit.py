"""audit: an interrupted audit resumes from its finished stages and gives the same numbers as an uninterrupted one."""

import os
import signal
import subprocess
import sys
import time

import pytest

import obliviate.redteam as redteam
from obliviate.attacks import Budget
from obliviate.audit import AuditConfig, audit
from obliviate.data.people import people_task
from obliviate.errors import ConfigError
from obliviate.models import tiny_model
from obliviate.runs import read_json

# No original: every forget fact is an attack target, so the attacks have outcomes to compare.
CONFIG = AuditConfig(metrics=["forms"], attacks=["form_change", "in_context"], budget=Budget(max_facts=2),
                     max_facts=2, examples=2)


def _numbers(out):
    """Everything that must not change between runs (no timings, no environment)."""
    card = read_json(out / "cards" / "unlearned.json")
    attacks = read_json(out / "attacks.json")
    return ({name: m["values"] for name, m in card["metrics"].items()},
            {name: (r["outcomes"], r["recovery_rate"]) for name, r in attacks["results"].items()},
            attacks["worst_case"], read_json(out / "generations.json")["outputs"])


def test_audit_resumes_after_a_crash_with_identical_numbers(tmp_path, monkeypatch):
    task = people_task("test")
    real_attack = redteam.attack

    def crash_on_in_context(lm, task, original, attacks, *args, **kwargs):
        if attacks == ["in_context"]:
            raise KeyboardInterrupt("killed during the second attack")
        return real_attack(lm, task, original, attacks, *args, **kwargs)

    out = tmp_path / "audit"
    monkeypatch.setattr(redteam, "attack", crash_on_in_context)
    with pytest.raises(KeyboardInterrupt):
        audit(tiny_model(seed=3), None, task, out, config=CONFIG, progress=False)
    card, first_attack = out / "cards" / "unlearned.json", out / "attacks" / "form_change.json"
    assert card.exists() and first_attack.exists()
    assert not (out / "attacks" / "in_context.json").exists() and not (out / "report.html").exists()
    assert set(read_json(out / "audit.json")["stages"]) == {"card:unlearned", "attack:form_change"}
    stamps = (card.stat().st_mtime_ns, first_attack.stat().st_mtime_ns)

    monkeypatch.undo()
    audit(tiny_model(seed=3), None, task, out, config=CONFIG, progress=False)
    assert (card.stat().st_mtime_ns, first_attack.stat().st_mtime_ns) == stamps, "finished stages were redone"
    assert (out / "report.html").exists() and (out / "generations.json").exists()

    fresh = tmp_path / "fresh"
    audit(tiny_model(seed=3), None, task, fresh, config=CONFIG, progress=False)
    assert _numbers(out) == _numbers(fresh)


def test_audit_refuses_to_resume_with_other_inputs(tmp_path):
    (tmp_path / "audit.json").write_text('{"model": "tiny", "original": null, "reference": null, '
                                         '"task": "people:test:forget10", "config": {}}')
    with pytest.raises(ConfigError, match="config differ"):
        audit(tiny_model(), None, people_task("test"), tmp_path, config=CONFIG, progress=False)


# Run the real CLI in a child process whose second attack blocks, so the parent can SIGKILL it at a known stage:
# no `finally`, no atexit, whatever was half-written stays on disk.
_BLOCKING_CHILD = """
import sys, time
import obliviate.redteam as redteam
real_attack = redteam.attack
def attack(lm, task, original, attacks, *args, **kwargs):
    if attacks == ["in_context"]:
        time.sleep(600)
    return real_attack(lm, task, original, attacks, *args, **kwargs)
redteam.attack = attack
from obliviate.cli import main
sys.argv = ["obliviate", *sys.argv[1:]]
main()
"""
AUDIT_ARGS = ["audit", "-m", "tiny", "-t", "builtin:people:test", "--attacks", "form_change,in_context",
              "--metrics", "forms", "--max-facts", "2", "--attack-facts", "2"]


def test_audit_killed_with_sigkill_resumes_with_identical_numbers(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out, fresh = tmp_path / "audit", tmp_path / "fresh"
    child = subprocess.Popen([sys.executable, "-c", _BLOCKING_CHILD, *AUDIT_ARGS, "--out", str(out)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first_attack, deadline = out / "attacks" / "form_change.json", time.monotonic() + 120
    while not first_attack.exists():
        assert child.poll() is None, f"the audit ended before the kill: {child.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline, "the audit never finished its first attack"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL
    assert not (out / "attacks" / "in_context.json").exists() and not (out / "report.html").exists()
    stamp = first_attack.stat().st_mtime_ns

    for folder in (out, fresh):  # resume the killed run; make an uninterrupted one with the same command
        done = subprocess.run([sys.executable, "-m", "obliviate", *AUDIT_ARGS, "--out", str(folder)], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    assert first_attack.stat().st_mtime_ns == stamp, "the finished attack was redone"
    assert (out / "report.html").exists()
    assert _numbers(out) == _numbers(fresh)


def test_attack_settings_reach_every_attack_and_the_manifest(tmp_path, monkeypatch):
    """`obliviate audit --set best_of_n.temperature=0.3` (and bench's): the attack gets the setting, audit.json
    records it, and a wrong attack or key fails in one line before any model loads."""
    from typer.testing import CliRunner

    from obliviate.cli import app
    from obliviate.redteam import attack_options

    seen = []
    real_attack = redteam.attack

    def record(*args, **kwargs):
        seen.append(kwargs.get("options"))
        return real_attack(*args, **kwargs)

    monkeypatch.setattr(redteam, "attack", record)
    config = AuditConfig(metrics=["forms"], attacks=["best_of_n"], budget=Budget(max_facts=2, samples=2), max_facts=2,
                         examples=1, attack_options=attack_options(["best_of_n.temperature=0.3"]))
    out = audit(tiny_model(seed=3), None, people_task("test"), tmp_path / "audit", config=config, progress=False)
    assert seen == [{"best_of_n": {"temperature": 0.3}}]
    assert read_json(out / "audit.json")["config"]["attack_options"] == {"best_of_n": {"temperature": 0.3}}
    for command in (["audit", "--model", "no-such-model"], ["bench", "--methods", "ga"]):
        result = CliRunner().invoke(app, [*command, "--task", "builtin:people:test", "--set", "best_of_n.heat=2"])
        assert result.exit_code != 0 and "its settings: temperature" in str(result.exception), result.output
