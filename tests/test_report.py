"""The HTML/Markdown report: built from a real run folder made with tiny models, then opened in headless Chromium.

Chromium is Debian's `chromium` package (`apt-get install -y chromium`); only the browser test is skipped
without it. The verdict rules are checked on hand-made cards (no model).
"""

import base64
import io
import re
import shutil
import subprocess

import pytest
from PIL import Image, ImageStat

from obliviate.attacks import Budget
from obliviate.audit import add_examples
from obliviate.card import Card, evaluate
from obliviate.data.people import people_task
from obliviate.errors import ConfigError
from obliviate.metrics import EvalConfig
from obliviate.models import tiny_model
from obliviate.redteam import attack
from obliviate.report.html import render_report
from obliviate.report.markdown import read_run, verdict
from obliviate.runs import write_json
from obliviate.train import TrainConfig
from obliviate.unlearn import unlearn

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder as a demo/audit leaves it: three cards, attacks.json, generations.json, config + history."""
    out = tmp_path_factory.mktemp("run")
    task = people_task("test")
    original, reference = tiny_model(seed=1), tiny_model(seed=2)
    run = unlearn(tiny_model(seed=1), task, "ga", train=TrainConfig(steps=2, progress=False))
    config = EvalConfig(max_facts=2)
    for label, lm in (("original", original), ("ga", run.lm), ("reference", reference)):
        evaluate(lm, task, ["forms", "abstention"], reference=reference, original=original,
                 config=config).save(out / "cards" / f"{label}.json")
        add_examples(out / "generations.json", label, lm, task, original, n_forget=2)
    # no original: every forget fact is a target (the random tiny original knows none of them)
    attack(run.lm, task, None, ["form_change", "in_context"], Budget(max_facts=2), progress=False).save(out)
    write_json(out / "config.json", run.config)
    write_json(out / "history.json", run.history)
    render_report(out)
    return out


def _images(html: str) -> list[bytes]:
    srcs = re.findall(r'<img[^>]*src="([^"]+)"', html)
    assert all(s.startswith("data:image/png;base64,") for s in srcs), "every image is an inline PNG"
    return [base64.b64decode(s.split(",", 1)[1]) for s in srcs]


def test_report_has_every_section_and_inline_images(run_dir):
    html = (run_dir / "report.html").read_text()
    for title in ("Forget card", "Forgetting vs utility", "Attacks: does it come back?", "What the model says instead",
                  "Example generations", "Training", "Config and cost"):
        assert title in html, title
    images = _images(html)
    assert len(images) == 4  # pareto, attacks, abstention, loss
    for data in images:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
    assert not re.search(r'(src|href)="https?://', html), "the report must not need the network"
    md = (run_dir / "report.md").read_text()
    assert "## Forget card" in md and "| qa |" in md and "](plots/pareto.png)" in md
    assert (run_dir / "plots" / "pareto.png").is_file()


def test_report_reads_attacks_and_examples(run_dir):
    files = read_run(run_dir)
    assert list(files.cards) == ["original", "ga", "reference"]
    assert set(files.attacks["ga"]["results"]) == {"form_change", "in_context"}
    assert set(files.generations["outputs"]) == {"original", "ga", "reference"}
    assert all(len(v) == len(files.generations["facts"]) for v in files.generations["outputs"].values())


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(run_dir, tmp_path):
    # A copy that records, after load, the decoded size of every image (0x0 = the browser could not decode it).
    page = tmp_path / "page.html"
    probe = ('<script>window.addEventListener("load",()=>document.body.setAttribute("data-decoded",'
             'Array.from(document.images).map(i=>i.naturalWidth+"x"+i.naturalHeight).join(",")))</script></body>')
    page.write_text((run_dir / "report.html").read_text().replace("</body>", probe))
    # --no-zygote: on a loaded machine Chromium's zygote start-up sometimes fails ("Failed to send ... to zygote").
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--no-zygote", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--virtual-time-budget=5000",
             f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "shot.png"
    _chromium([*flags, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri()], lambda: shot.exists())
    with Image.open(shot) as im:
        stat = ImageStat.Stat(im.convert("L"))
        assert stat.stddev[0] > 20, "the screenshot is (nearly) blank"
    dom = _chromium([*flags, "--dump-dom", page.as_uri()], lambda: True)
    sizes = re.search(r'data-decoded="([^"]*)"', dom).group(1).split(",")
    assert len(sizes) == 4 and all(int(s.split("x")[0]) > 100 for s in sizes), sizes


def _chromium(cmd: list[str], done) -> str:
    """Run Chromium, once more if it fails to start (it can on a busy machine); its stdout."""
    for _ in range(2):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode == 0 and done():
            return proc.stdout
    raise AssertionError(f"chromium failed twice (exit {proc.returncode}): {proc.stderr[-2000:]}")


def _card(label: str, forget: float, retain: float, mcq: float | None = None) -> Card:
    forms = {"forget": {"qa": {"accuracy": forget, "probability": forget, "rouge_l": forget, "n": 10}},
             "retain": {"qa": {"accuracy": retain, "probability": retain, "rouge_l": retain, "n": 10}}}
    if mcq is not None:
        forms["forget"]["mcq"] = {"accuracy": mcq, "probability": mcq, "rouge_l": mcq, "n": 10}
    return Card(label, "t", {"forms": {"values": forms, "section": "forgetting", "higher_is_better": None,
                                       "version": "1", "seconds": 0.0}})


def _folder(tmp_path, unlearned: Card, worst: float | None = None, mcq_ref: float | None = None):
    for label, card in (("original", _card("o", 0.9, 0.9, 0.9)), ("m", unlearned),
                        ("reference", _card("r", 0.0, 0.9, mcq_ref))):
        card.save(tmp_path / "cards" / f"{label}.json")
    if worst is not None:
        write_json(tmp_path / "attacks.json", {"baseline": 0.0, "results": {},
                                               "worst_case": {"attack": "relearning", "recovery_rate": worst}})
    return verdict(read_run(tmp_path), "m")


@pytest.mark.parametrize("forget, retain, worst, level, words", [
    (0.0, 0.9, 0.0, "good", "Looks forgotten"),
    (0.6, 0.9, None, "bad", "Not forgotten"),
    (0.0, 0.3, None, "bad", "too high a cost"),
    (0.0, 0.9, 0.6, "bad", "Hidden, not removed"),
    (0.3, 0.9, None, "mixed", "Partly forgotten"),
])
def test_verdict_reads_the_numbers(tmp_path, forget, retain, worst, level, words):
    v = _folder(tmp_path, _card("m", forget, retain), worst)
    assert v.level == level and words in v.judgement
    assert v.headline.startswith(f"forgot {round((1 - forget / 0.9) * 100)} % of forget QA")


def test_verdict_flags_a_form_that_still_answers(tmp_path):
    v = _folder(tmp_path, _card("m", 0.0, 0.9, mcq=0.8), mcq_ref=0.25)
    assert v.leak == ("mcq", 0.8, 0.25) and "mcq" in v.judgement


def test_report_needs_a_card(tmp_path):
    with pytest.raises(ConfigError, match="no forget card"):
        render_report(tmp_path)


def test_report_of_a_demo_folder(tmp_path):
    """run_demo's layout: cards/{base,taught,reference,<method>}.json, demo.json, config.json, history.json."""
    for label, card in (("base", _card("b", 0.0, 0.0)), ("taught", _card("t", 0.9, 0.9)),
                        ("reference", _card("r", 0.0, 0.9)), ("npo", _card("n", 0.05, 0.85))):
        card.save(tmp_path / "cards" / f"{label}.json")
    write_json(tmp_path / "demo.json", {"task": "builtin:people:small:forget10", "method": "npo", "seconds": 12.0})
    write_json(tmp_path / "config.json", {"method": "npo", "train": {"steps": 20, "lr": 2e-5}})
    write_json(tmp_path / "history.json", [{"step": 1, "loss": 0.7}, {"step": 2, "loss": 0.6}])
    html = render_report(tmp_path).read_text()
    files = read_run(tmp_path)
    assert list(files.cards) == ["base", "taught", "npo", "reference"] and files.original == "taught"
    assert "forgot 94 % of forget QA, kept 94 % of retain" in html and "Looks forgotten" in html
    assert "Attacks" not in html and "Example generations" not in html  # no file, no section
    assert len(_images(html)) == 2  # trade-off and training loss
