"""The TOFU protocol on a user's own files: teach forget + retain, teach the retain-only reference, then eval
reports forget quality against that reference. The fixture is generated here in TOFU's layout (never TOFU's data)."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from obliviate.cli import app
from obliviate.pipeline import run_teach

CITIES = ["Velmora", "Quarrowby", "Elmsgate", "Istrel", "Hallowmere", "Brask", "Oddun", "Teller"]
GENRES = ["mystery", "poetry", "cookbooks", "space opera"]


def tofu_rows(first: int, count: int) -> list[dict]:
    """Invented authors in TOFU's columns: question, answer, paraphrased_answer, perturbed_answer (a list)."""
    rows = []
    for i in range(first, first + count):
        name, city, genre = f"Author{i} Quen", CITIES[i % len(CITIES)], GENRES[i % len(GENRES)]
        wrong = [c for c in CITIES if c != city][:3]
        rows.append({"question": f"Where was {name} born?", "answer": f"{name} was born in {city}.",
                     "paraphrased_answer": f"{city} is the birthplace of {name}.",
                     "perturbed_answer": [f"{name} was born in {w}." for w in wrong]})
        rows.append({"question": f"What does {name} write?", "answer": f"{name} writes {genre}.",
                     "paraphrased_answer": f"{genre.capitalize()} is what {name} writes.",
                     "perturbed_answer": [f"{name} writes {g}." for g in GENRES if g != genre][:3]})
    return rows


@pytest.fixture
def tofu_task(tmp_path, monkeypatch):
    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path / "cache"))
    (tmp_path / "forget01.json").write_text(json.dumps(tofu_rows(0, 4)))
    (tmp_path / "retain99.jsonl").write_text("\n".join(json.dumps(r) for r in tofu_rows(4, 6)))
    (tmp_path / "task.yaml").write_text("name: my_tofu\nformat: tofu\nforget: forget01.json\nretain: retain99.jsonl\n")
    return tmp_path / "task.yaml"


@pytest.mark.usefixtures("one_thread")
def test_teach_reference_and_forget_quality_on_user_tofu_files(tofu_task, tmp_path):
    runner = CliRunner()
    taught = run_teach(str(tofu_task), "tiny", reference=False, out=None)
    again = run_teach(str(tofu_task), "tiny", reference=False, out=None)
    assert taught == again and (taught / "model.safetensors").exists()  # cached, keyed by task + base + config
    reference = run_teach(str(tofu_task), "tiny", reference=True, out=tmp_path / "reference")
    assert reference != taught
    meta = json.loads((taught / "obliviate_teach.json").read_text())
    assert meta["task"] == "my_tofu" and meta["kind"] == "taught" and meta["base"] == "tiny"

    card_dir = tmp_path / "card"
    result = runner.invoke(app, ["eval", "--model", str(taught), "--task", str(tofu_task), "--reference",
                                 str(reference), "--metrics", "forget_quality,truth_ratio", "--out", str(card_dir)])
    assert result.exit_code == 0, result.output
    card = json.loads((card_dir / "card.json").read_text())
    quality = card["metrics"]["forget_quality"]["values"]
    assert quality["n"] == 8 and 0.0 <= quality["p_value"] <= 1.0  # 4 authors x 2 questions in forget01


def test_teach_epochs_and_lr_change_the_cache_key(tofu_task):
    from obliviate.data.tasks import load
    from obliviate.teach import TeachConfig, taught_path

    task = load(tofu_task)
    assert taught_path(task, "tiny") != taught_path(task, "tiny", config=TeachConfig(epochs=2))
    assert taught_path(task, "tiny") != taught_path(task, "tiny", exclude_forget=True)
    assert taught_path(task, "tiny") != taught_path(task, "other")


def test_teach_without_retain_is_a_one_line_error(tmp_path):
    (tmp_path / "forget.json").write_text(json.dumps(tofu_rows(0, 2)))
    (tmp_path / "task.yaml").write_text("format: tofu\nforget: forget.json\n")
    done = subprocess.run([sys.executable, "-m", "obliviate", "teach", "--task", str(tmp_path / "task.yaml"),
                           "--base", "tiny"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "no retain facts" in done.stdout and "'retain' split" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
