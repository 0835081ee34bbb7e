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
from obliviate.card import Card, evaluate
from obliviate.data.people import people_task
from obliviate.errors import ConfigError
from obliviate.examples import add_examples
from obliviate.metrics import EvalConfig
from obliviate.models import tiny_model
from obliviate.redteam import attack
from obliviate.report.html import render_report, tiles_html
from obliviate.report.markdown import read_run, verdict
from obliviate.runs import write_json
from obliviate.train import TrainConfig
from obliviate.unlearn import unlearn
from obliviate.until import UntilConfig

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder as a demo/audit leaves it: three cards, attacks.json, generations.json, config + history."""
    out = tmp_path_factory.mktemp("run")
    task = people_task("test")
    original, reference = tiny_model(seed=1), tiny_model(seed=2)
    run = unlearn(tiny_model(seed=1), task, "ga", train=TrainConfig(steps=2, progress=False),
                  until=UntilConfig(every=1, max_facts=2))
    config = EvalConfig(max_facts=2)
    for label, lm in (("original", original), ("ga", run.lm), ("reference", reference)):
        evaluate(lm, task, ["forms"], reference=reference, original=original,
                 config=config).save(out / "cards" / f"{label}.json")
        add_examples(out / "generations.json", label, lm, task, original, n_forget=2)
    # no original: every forget fact is a target (the random tiny original knows none of them); holdout is the control
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
                  "Example generations", "Stop when forgotten", "Training", "Config and cost"):
        assert title in html, title
    images = _images(html)
    assert len(images) == 5  # pareto, attacks, outcomes, until, loss
    for data in images:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
    assert not re.search(r'(src|href)="https?://', html), "the report must not need the network"
    md = (run_dir / "report.md").read_text()
    assert "## Forget card" in md and "| qa |" in md and "](plots/pareto.png)" in md
    assert re.search(r"\| qa \| \d\.\d\d \[\d\.\d\d, \d\.\d\d\]", md), "every accuracy carries its interval"
    assert "above control (95 % CI)" in md and "Control: holdout" in md and "can go unseen" in md
    assert "≈ ref" in html or "above_reference" not in html  # the paired comparison is shown when it exists
    assert (run_dir / "plots" / "pareto.png").is_file()
    assert "## Stop when forgotten" in md and "forgotten at step 1" in md and "2 control (holdout)" in md


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
    assert len(sizes) == 5 and all(int(s.split("x")[0]) > 100 for s in sizes), sizes


def _chromium(cmd: list[str], done) -> str:
    """Run Chromium, once more if it fails to start (it can on a busy machine); its stdout."""
    for _ in range(2):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode == 0 and done():
            return proc.stdout
    raise AssertionError(f"chromium failed twice (exit {proc.returncode}): {proc.stderr[-2000:]}")


def _row(acc: float, n: int = 10, control: tuple[float, float, float] | None = None, gibberish: float = 0.0) -> dict:
    row = {"accuracy": acc, "accuracy_ci": [max(0.0, acc - 0.2), min(1.0, acc + 0.2)], "probability": acc,
           "rouge_l": acc, "n": n, "outcomes": {"right": acc, "gibberish": gibberish, "wrong": 1 - acc - gibberish}}
    if control is not None:
        value, lo, hi = control
        row["above_reference"] = {"value": value, "ci": [lo, hi], "n": n}
    return row


def _card(label: str, forget: float, retain: float, mcq: tuple[float, float, float] | None = None,
          control: tuple[float, float, float] | None = None, gibberish: float = 0.0, mcq_n: int = 10) -> Card:
    forms = {"forget": {"qa": _row(forget, control=control, gibberish=gibberish)}, "retain": {"qa": _row(retain)}}
    if mcq is not None:
        forms["forget"]["mcq"] = _row(0.8, mcq_n, control=mcq)
    return Card(label, "t", {"forms": {"values": forms, "section": "forgetting", "higher_is_better": None,
                                       "version": "2", "seconds": 0.0}})


def _folder(tmp_path, unlearned: Card, worst: tuple[float, float, float] | None = None):
    for label, card in (("original", _card("o", 0.9, 0.9)), ("m", unlearned), ("reference", _card("r", 0.0, 0.9))):
        card.save(tmp_path / "cards" / f"{label}.json")
    if worst is not None:
        value, lo, hi = worst
        write_json(tmp_path / "attacks.json", {"results": {}, "worst_case": {
            "attack": "relearning", "above_control": {"value": value, "ci": [lo, hi], "n": 60}}})
    return verdict(read_run(tmp_path), "m")


@pytest.mark.parametrize("forget, retain, worst, level, words", [
    (0.0, 0.9, (0.05, -0.08, 0.18), "good", "Looks forgotten"),  # the attack's interval contains 0
    (0.6, 0.9, None, "bad", "Not forgotten"),
    (0.0, 0.3, None, "bad", "too high a cost"),
    (0.0, 0.9, (0.3, 0.15, 0.45), "bad", "Hidden, not removed"),  # above the control: knowledge still there
    (0.3, 0.9, None, "mixed", "Partly forgotten"),
])
def test_verdict_reads_the_numbers(tmp_path, forget, retain, worst, level, words):
    v = _folder(tmp_path, _card("m", forget, retain), worst)
    assert v.level == level and words in v.judgement
    assert v.headline.startswith(f"forgot {round((1 - forget / 0.9) * 100)} % of forget QA")


def test_a_large_recovery_within_its_interval_is_not_called_hidden(tmp_path):
    """+25 points with an interval reaching below 0 (few facts) cannot tell the model from one that never knew."""
    v = _folder(tmp_path, _card("m", 0.0, 0.9), worst=(0.25, -0.05, 0.5))
    assert v.level == "good" and "Hidden" not in v.judgement and "can go unseen" in v.judgement


def test_verdict_says_forgot_by_breaking(tmp_path):
    v = _folder(tmp_path, _card("m", 0.0, 0.9, gibberish=0.7))
    assert v.level == "mixed" and "Forgot by breaking" in v.judgement and "70 %" in v.judgement


def test_verdict_uses_the_control_of_forget_qa(tmp_path):
    v = _folder(tmp_path, _card("m", 0.1, 0.9, control=(0.1, 0.02, 0.3)))
    assert "Partly forgotten" in v.judgement and "above the reference" in v.judgement
    assert "vs the reference" in v.headline


def test_verdict_flags_a_form_that_still_answers(tmp_path):
    v = _folder(tmp_path, _card("m", 0.0, 0.9, mcq=(0.55, 0.3, 0.75)))
    assert v.leak[0] == "mcq" and v.leak[1].value == 0.55 and "mcq" in v.judgement
    v = _folder(tmp_path, _card("m", 0.0, 0.9, mcq=(0.55, -0.1, 0.75)))  # the interval contains 0: no claim
    assert v.leak is None and v.level == "good"
    v = _folder(tmp_path, _card("m", 0.0, 0.9, mcq=(0.55, 0.3, 0.75), mcq_n=4))  # four facts: too thin to headline
    assert v.leak is None and v.level == "good"


def test_verdict_reads_the_form_in_which_the_original_shows_its_knowledge(tmp_path):
    """An instruct model answers real facts through its chat template, rarely as plain QA: the verdict must read
    chat (forgot 0.9 -> 0.3, kept 0.9 -> 0.85), not QA (0.25 -> 0, "kept 0 %" of a retain QA it never had)."""
    def card(label, forget_qa, forget_chat, retain_qa, retain_chat):
        forms = {"forget": {"qa": _row(forget_qa), "chat": _row(forget_chat)},
                 "retain": {"qa": _row(retain_qa), "chat": _row(retain_chat)}}
        return Card(label, "t", {"forms": {"values": forms, "section": "forgetting", "higher_is_better": None,
                                           "version": "2", "seconds": 0.0}})
    card("o", 0.25, 0.9, 0.05, 0.9).save(tmp_path / "cards" / "original.json")
    card("m", 0.0, 0.3, 0.0, 0.85).save(tmp_path / "cards" / "m.json")
    v = verdict(read_run(tmp_path), "m")
    assert v.form == "chat" and v.headline.startswith("forgot 67 % of forget chat")
    assert abs(v.kept - 0.85 / 0.9) < 1e-9 and "kept 94 % of retain" in v.headline


def test_verdict_counts_the_cost_in_every_direct_form(tmp_path):
    """The verdict reads chat, but unlearning trained the cloze too: retain chat kept (0.8 -> 0.85) while retain
    cloze fell 0.7 -> 0.0 is a cost the headline must show and the judgement must weigh. A form the original
    barely answered (retain QA 0.1 -> 0.0) is not counted: there was little to lose."""
    def card(label, retain_chat, retain_cloze, retain_qa):
        forms = {"forget": {"qa": _row(0.0), "chat": _row(0.9 if label == "o" else 0.0)},
                 "retain": {"qa": _row(retain_qa), "chat": _row(retain_chat), "cloze": _row(retain_cloze)}}
        return Card(label, "t", {"forms": {"values": forms, "section": "forgetting", "higher_is_better": None,
                                           "version": "2", "seconds": 0.0}})
    card("o", 0.8, 0.7, 0.1).save(tmp_path / "cards" / "original.json")
    card("m", 0.85, 0.0, 0.0).save(tmp_path / "cards" / "m.json")
    v = verdict(read_run(tmp_path), "m")
    assert v.form == "chat" and v.kept == 1.0 and v.cost == ("cloze", 0.0) and v.kept_least == 0.0
    assert "kept 100 % of retain (0 % asked as a cloze)" in v.headline
    assert v.level == "bad" and "lost 100 % of what it knew on retain asked as a cloze" in v.judgement
    assert "kept (retain cloze)" in tiles_html(v)  # the report's tiles show it too
    card("m", 0.85, 0.68, 0.0).save(tmp_path / "cards" / "m.json")  # cloze kept 97 %: shown, not a failure
    v = verdict(read_run(tmp_path), "m")
    assert v.cost == ("cloze", pytest.approx(0.68 / 0.7)) and v.level != "bad"
    card("m", 0.85, 0.7, 0.0).save(tmp_path / "cards" / "m.json")
    assert verdict(read_run(tmp_path), "m").cost is None and "asked as" not in verdict(read_run(tmp_path), "m").headline


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
    assert len(_images(html)) == 3  # trade-off, outcomes of the answers and training loss
