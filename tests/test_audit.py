"""audit: an interrupted audit resumes from its finished stages and gives the same numbers as an uninterrupted one."""

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
