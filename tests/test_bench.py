"""bench: a CI-sized comparison (tiny model, people test task), its table, plots, report, resume and sweep parsing."""

import pytest

from obliviate.attacks import Budget
from obliviate.bench import BenchConfig, bench, parse_sweep
from obliviate.data.people import people_task
from obliviate.errors import ConfigError
from obliviate.models import tiny_model
from obliviate.runs import read_json


def test_bench_table_curves_and_resume(tmp_path):
    task, out = people_task("test"), tmp_path / "bench"
    config = BenchConfig(steps=2, metrics=["forms"], max_facts=2, examples=2)

    def run():
        return bench(task, "ga,npo", attacks=["form_change"], budget=Budget(max_facts=2), sweep="steps=1,2",
                     out_dir=out, config=config, original=tiny_model(seed=4), progress=False)

    run()
    table = read_json(out / "bench.json")
    assert [r["label"] for r in table["rows"]] == ["ga@steps=1", "ga@steps=2", "npo@steps=1", "npo@steps=2"]
    assert [r["steps"] for r in table["rows"]] == [1, 2, 1, 2]
    assert [r["final"] for r in table["rows"]] == [False, True, False, True]
    # every method trains on every direct form, as `obliviate unlearn` does (the tiny model has no chat template)
    assert {tuple(read_json(out / r["dir"] / "config.json")["forms"]) for r in table["rows"]} == {("qa", "cloze")}
    for row in table["rows"]:
        assert 0 <= row["forget_qa"] <= 1 and row["forget_qa_ci"][0] <= row["forget_qa"] <= row["forget_qa_ci"][1]
        # The attack columns are the recovery above the control, with its interval, as in attacks.json.
        attacks = read_json(out / row["dir"] / "attacks.json")
        above = attacks["results"]["form_change"]["above_control"]
        if attacks["targets"]:
            assert row["recovery.form_change"] == above["value"] and row["recovery.form_change_ci"] == above["ci"]
            assert row["worst_attack"] == "form_change"
        else:  # the random tiny original knows no forget fact: nothing to recover, so no number is made up
            assert above is None and "recovery.form_change" not in row and row["worst_attack"] is None
    assert "| ga | steps=1 |" in (out / "bench.md").read_text()
    for name in ("pareto", "attacks"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 1000
    html = (out / "report.html").read_text()
    assert "Methods compared" in html and "npo@steps=2" in html
    assert set(read_json(out / "generations.json")["outputs"]) == {"original", "ga@steps=2", "npo@steps=2"}

    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/result.json")}
    assert len(stamps) == 4
    run()  # everything is done: nothing is retrained, the table is the same
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/result.json")} == stamps
    assert read_json(out / "bench.json")["rows"] == table["rows"]
    with pytest.raises(ConfigError, match="other inputs"):
        bench(task, "ga", out_dir=out, config=config, original=tiny_model(seed=4), progress=False)


def test_sweep_parsing_and_checks():
    assert parse_sweep("steps=5,10,20") == ("steps", [5, 10, 20])
    assert parse_sweep({"beta": [0.05, 0.1]}) == ("beta", [0.05, 0.1])
    assert parse_sweep(None) == (None, [None])
    with pytest.raises(ConfigError, match="steps=5,10,20"):
        parse_sweep("steps")
    with pytest.raises(ConfigError, match="neither a training setting"):
        bench(people_task("test"), "ga", sweep="temperature=1,2", original=tiny_model(), progress=False)


def test_bench_seeds_give_mean_and_spread(tmp_path):
    config = BenchConfig(steps=2, metrics=["forms"], max_facts=2, examples=1, seeds=2)
    out = bench(people_task("test"), "ga", out_dir=tmp_path / "b", config=config, original=tiny_model(seed=4),
                progress=False)
    row = read_json(out / "bench.json")["rows"][0]
    per_seed = [read_json(out / "runs" / "ga" / f"seed={k}" / "result.json") for k in (0, 1)]
    assert row["seeds"] == [0, 1] and [r["seed"] for r in per_seed] == [0, 1]
    assert row["forget_qa"] == pytest.approx(sum(r["forget_qa"] for r in per_seed) / 2)
    assert row["forget_qa_sd"] >= 0 and "forget_qa_ci" not in row
    with pytest.raises(ConfigError, match="seeds"):
        BenchConfig(seeds=0)


def test_bench_row_reads_the_form_in_which_the_original_shows_its_knowledge():
    from obliviate.bench import summarise
    from obliviate.card import Card

    def card(forget_qa, forget_chat, retain_qa, retain_chat, retain_cloze=0.6):
        row = lambda acc: {"accuracy": acc, "accuracy_ci": [acc, acc], "n": 20}  # noqa: E731
        forms = {"forget": {"qa": row(forget_qa), "chat": row(forget_chat)},
                 "retain": {"qa": row(retain_qa), "chat": row(retain_chat), "cloze": row(retain_cloze)}}
        return Card("m", "t", {"forms": {"values": forms, "section": "forgetting", "higher_is_better": None,
                                         "version": "2", "seconds": 0.0}})

    row = summarise(card(0.0, 0.3, 0.0, 0.85, retain_cloze=0.15), card(0.25, 0.9, 0.05, 0.9), None)
    assert row["form"] == "chat" and row["forget_qa"] == 0.3 and row["keep_qa"] == 0.85
    assert row["costliest_form"] == "cloze 25%"  # the cost the chat column does not show
    assert summarise(card(0.0, 0.3, 0.0, 0.85), card(0.25, 0.9, 0.05, 0.9), None)["costliest_form"] is None
    assert abs(row["forgot"] - (1 - 0.3 / 0.9)) < 1e-9
