"""The self-contained HTML report of a run folder (plus report.md beside it): one file, images inline, no network.

>>> from obliviate.report.html import render_report
>>> render_report("runs/demo-20260101-120000")          # doctest: +SKIP
PosixPath('runs/demo-20260101-120000/report.html')

Sections: the verdict, the methods table (bench), the forget card per form, forgetting vs utility, recovery
per attack against its control, what the model says instead (outcomes), example generations, every other metric by card section, training
loss, and the run's config and cost. A section whose files are missing is left out, never faked.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from obliviate.report import plots
from obliviate.report.markdown import (
    HEADLINE_FORMS,
    RunFiles,
    Verdict,
    card_splits,
    config_summary,
    estimate,
    fmt,
    forms_rows,
    headline_form,
    interval,
    keep_split,
    metric_rows,
    outcome_rows,
    pct,
    qa_accuracy,
    read_run,
    share_text,
    to_markdown,
    until_note,
    verdict,
)

# Answers to forget questions: a right answer means the fact leaked, a refusal is the safe failure.
OUTCOME_COLOURS = {"right": plots.BAD, "refusal": plots.GOOD, "empty": "#7fb89a", "gibberish": plots.NEUTRAL,
                   "wrong": "#e0a526"}

CSS = """
:root { --good:#2f9e62; --bad:#d1495b; --mixed:#d68a1a; --ink:#1f2328; --muted:#6a717c; --line:#e3e6ea; }
* { box-sizing: border-box; }
body { margin:0; background:#f5f6f8; color:var(--ink); font:15px/1.5 -apple-system, "Segoe UI", Roboto,
       "Helvetica Neue", Arial, sans-serif; }
main { max-width:1120px; margin:0 auto; padding:28px 28px 60px; }
h1 { font-size:26px; margin:0 0 4px; } h2 { font-size:19px; margin:0 0 12px; }
.sub { color:var(--muted); margin-bottom:18px; }
nav { display:flex; flex-wrap:wrap; gap:6px; margin-bottom:22px; }
nav a { font-size:13px; color:#3b6fd8; text-decoration:none; background:white; border:1px solid var(--line);
        border-radius:14px; padding:2px 10px; }
section { background:white; border:1px solid var(--line); border-radius:10px; padding:20px 22px; margin:0 0 18px; }
.verdict { border-left:6px solid var(--mixed); }
.verdict.good { border-left-color:var(--good); } .verdict.bad { border-left-color:var(--bad); }
.verdict .head { font-size:21px; font-weight:600; }
.verdict .why { margin-top:6px; font-size:16px; }
.verdict .who { display:inline-block; font-size:12px; font-weight:600; text-transform:uppercase; letter-spacing:.04em;
                color:var(--muted); margin-bottom:2px; }
.verdict + .verdict { margin-top:-8px; }
.pill { display:inline-block; padding:1px 9px; border-radius:10px; font-size:12px; font-weight:600; color:white;
        vertical-align:middle; margin-left:6px; }
.pill.good { background:var(--good); } .pill.bad { background:var(--bad); } .pill.mixed { background:var(--mixed); }
table { border-collapse:collapse; width:100%; font-size:14px; margin:6px 0 14px; }
th, td { padding:6px 10px; border-bottom:1px solid var(--line); text-align:right; vertical-align:top; }
th { font-weight:600; background:#fafbfc; } th.l, td.l { text-align:left; }
th small, td small { display:block; color:var(--muted); font-weight:400; font-size:11px; }
td.better { background:#e3f4ea; } td.worse { background:#fbe5e7; }
tr.group td { background:#f3f4f6; font-weight:600; text-align:left; }
tr.group .note { font-weight:400; margin-left:6px; }
table.card td { padding:4px 12px; } table.card td:first-child { width:22%; }
.p { color:var(--muted); font-size:11px; margin-left:4px; }
.tiles { display:flex; gap:12px; margin-top:14px; flex-wrap:wrap; }
.tile { flex:1; min-width:150px; border:1px solid var(--line); border-radius:8px; padding:8px 12px; }
.tile .v { font-size:24px; font-weight:700; } .tile .k { color:var(--muted); font-size:12px; }
.tile.good .v { color:var(--good); } .tile.bad .v { color:var(--bad); } .tile.mixed .v { color:var(--mixed); }
caption { caption-side:top; text-align:left; font-weight:600; padding:4px 0; }
.note { color:var(--muted); font-size:13px; }
img { max-width:100%; height:auto; display:block; margin:4px auto 8px; }
.fig2 { display:grid; grid-template-columns:1fr 1fr; gap:14px; align-items:start; }
.ok { color:var(--good); font-weight:600; } .no { color:var(--bad); font-weight:600; }
pre { background:#f6f8fa; border-radius:6px; padding:12px; overflow:auto; font-size:12px; }
details summary { cursor:pointer; color:#3b6fd8; }
.kv td { text-align:left; } .kv td:first-child { color:var(--muted); width:30%; }
"""


def _heat(goodness: float) -> str:
    """Background from red (0) through pale yellow to green (1)."""
    g = max(0.0, min(1.0, goodness))
    return f"background:hsl({int(g * 130)},62%,{90 - 4 * abs(g - 0.5):.0f}%)"


def _head_cells(files: RunFiles) -> str:
    return "".join(f"<th>{escape(label)}" + (f"<small>{files.role(label)}</small>" if files.role(label) != label else "")
                   + "</th>" for label in files.cards)


def forms_html(files: RunFiles) -> str:
    """One table: forms down (grouped by split), models across; accuracy with its 95 % interval, coloured by what
    is good on the split; on forget, '≈ ref' marks a form the model cannot be told apart from the reference on."""
    rows = []
    for split in card_splits(files):
        forget = split == "forget"
        direction = ("the control: facts never learned (what guessing gets)" if split == "holdout" else
                     "lower is better: green = no longer known" if forget else "higher is better")
        rows.append(f'<tr class="group"><td colspan="{len(files.cards) + 1}">{escape(split)} '
                    f'<span class="note">{direction}</span></td></tr>')
        for form, _ in forms_rows(files, split):
            cells = []
            for card in files.cards.values():
                row = card.value("forms", split, form)
                if not row:
                    cells.append("<td>–</td>")
                    continue
                v, ci = row["accuracy"], row.get("accuracy_ci")
                style = _heat(1 - v if forget else v) if split != "holdout" else ""
                ci_text = f" [{ci[0]:.0%}, {ci[1]:.0%}]" if ci else ""
                same = row.get("above_reference")
                tag = (' <span class="p">≈ ref</span>' if same and same["ci"][0] <= 0 <= same["ci"][1] else "")
                cells.append(f'<td style="{style}"><b>{v:.0%}</b><span class="p">{ci_text}</span>{tag}'
                             f'<small>p {fmt(row["probability"])} · n {row.get("n", "–")}</small></td>')
            rows.append(f'<tr><td class="l">{escape(form)}</td>{"".join(cells)}</tr>')
    return (f'<table class="card"><tr><th class="l">form</th>{_head_cells(files)}</tr>{"".join(rows)}</table>'
            '<p class="note">accuracy (bold) with its 95 % interval over facts, the probability the model gives the '
            'right answer (p) and the number of facts (n). "≈ ref": cannot be told apart from the exact-unlearning '
            'reference on the same facts (paired interval contains 0).</p>')


def _delta_class(value: Any, base: Any, higher_is_better: bool | None) -> str:
    """"better" / "worse" than the original model when the metric has a direction and the change is visible."""
    if higher_is_better is None or not isinstance(value, (int, float)) or not isinstance(base, (int, float)):
        return ""
    delta = value - base
    if abs(delta) <= max(0.01, 0.02 * abs(base)):
        return ""
    return "better" if (delta > 0) == higher_is_better else "worse"


def metrics_html(files: RunFiles) -> str:
    labels = list(files.cards)
    base_i = labels.index(files.original) if files.original in labels else None
    rows = []
    for section, entries in metric_rows(files).items():
        rows.append(f'<tr class="group"><td colspan="{len(labels) + 1}">{escape(section)}</td></tr>')
        for name, path, hib, values in entries:
            arrow = " ↑" if hib else " ↓" if hib is False else ""
            cells = []
            for i, v in enumerate(values):
                cls = "" if base_i is None or i == base_i else _delta_class(v, values[base_i], hib)
                text = escape(fmt(v))
                cells.append(f'<td class="{cls}{" l" if isinstance(v, str) else ""}">{text}</td>')
            rows.append(f'<tr><td class="l">{escape(name)} <span class="note">{escape(path)}{arrow}</span></td>'
                        + "".join(cells) + "</tr>")
    if not rows:
        return ""
    legend = ("colour: better / worse than the original model, following each metric's direction (↑ higher is "
              "better, ↓ lower is better, no arrow: descriptive)") if base_i is not None else \
        "↑ higher is better, ↓ lower is better, no arrow: descriptive"
    return (f'<p class="note">{legend}</p><table><tr><th class="l">metric</th>{_head_cells(files)}</tr>'
            + "".join(rows) + "</table>")


def attacks_html(label: str, attacks: dict[str, Any]) -> str:
    """Per attack: recovered targets, the control's count, the difference with its interval, time and notes."""
    control = attacks.get("control") or {}
    n_control = len(control.get("targets", []))
    plain = attacks.get("plain_above_control")
    rows = [f'<tr><td class="l">no attack <span class="note">(asked directly)</span></td>'
            f'<td>{len(attacks.get("answered_plainly", []))}/{len(attacks.get("targets", []))}</td>'
            f'<td>{len(control.get("answered_plainly", []))}/{n_control}</td><td>{escape(interval(plain))}</td>'
            '<td></td><td class="l"></td></tr>']
    for name, r in attacks.get("results", {}).items():
        outcomes = r.get("outcomes", [])
        theirs = (r.get("control") or {}).get("outcomes", [])
        above = r.get("above_control")
        if "error" in r.get("details", {}):
            got, their, diff = '<span class="no">error</span>', "", ""
        elif not outcomes and r.get("details"):
            acc = r["details"].get("accuracy")
            got, their, diff = (f"acc {pct(acc)}" if isinstance(acc, (int, float)) else "–"), "", ""
        else:
            got = f"{sum(o['recovered'] for o in outcomes)}/{len(outcomes)}"
            if r.get("beyond_plain") and r["beyond_plain"][1]:
                got += "<small>{}/{} of the forgotten</small>".format(*r["beyond_plain"])
            their = f"{sum(o['recovered'] for o in theirs)}/{len(theirs)}" if theirs else "–"
            cls = "no" if above and above["ci"][0] > 0 else "ok"
            diff = f'<span class="{cls}">{escape(interval(above))}</span>' if above else "–"
        rows.append(f'<tr><td class="l">{escape(name)}</td><td>{got}</td><td>{their}</td><td>{diff}</td>'
                    f'<td>{r.get("seconds", 0):.0f}</td><td class="l note">{escape(r.get("notes", ""))}</td></tr>')
    budget = ", ".join(f"{k} {v}" for k, v in attacks.get("budget", {}).items())
    return (f'<p class="note">{len(attacks.get("targets", []))} target facts (forget facts the original answered '
            f'when asked directly); control: {escape(control.get("kind", "none"))}, {n_control} facts where the '
            f'knowledge is absent, attacked with the same budget ({escape(budget)}). Red: the interval lies above 0.'
            f'</p><table><tr><th class="l">attack on {escape(label)}</th><th>recovered</th><th>control</th>'
            f'<th>above control<small>95 % CI</small></th><th>seconds</th><th class="l">notes</th></tr>'
            f'{"".join(rows)}</table>')


def generations_html(gen: dict[str, Any]) -> str:
    labels = list(gen["outputs"])
    head = "".join(f"<th class='l'>{escape(label)}</th>" for label in labels)
    rows = []
    for i, fact in enumerate(gen["facts"]):
        cells = []
        for label in labels:
            o = gen["outputs"][label][i]
            if fact["split"] == "forget":
                mark = '<span class="no">still knows</span>' if o["correct"] else '<span class="ok">forgotten</span>'
            else:
                mark = '<span class="ok">knows</span>' if o["correct"] else '<span class="no">lost</span>'
            cells.append(f'<td class="l">{escape(o["output"]) or "<i>(empty)</i>"}<small>{mark} · '
                         f'p {fmt(o["probability"])}</small></td>')
        rows.append(f'<tr><td class="l">{escape(fact["question"])}<small>{escape(fact["split"])} · answer: '
                    f'{escape(fact["answer"])}</small></td>{"".join(cells)}</tr>')
    return (f'<p class="note">Greedy answers to the same questions (form {escape(gen.get("form", "qa"))}), '
            f'with the probability of the right answer.</p><table><tr><th class="l">question</th>{head}</tr>{"".join(rows)}</table>')


def bench_html(bench: dict[str, Any], verdicts: dict[str, Verdict]) -> str:
    cols = bench["columns"]
    head = "".join(f'<th class="{"l" if c.get("text") else ""}">{escape(c["title"])}'
                   f'{"<small>" + ("higher is better" if c.get("higher_is_better") else "lower is better") + "</small>" if c.get("higher_is_better") is not None else ""}</th>'
                   for c in cols)
    rows = []
    for row in bench["rows"]:
        cells = []
        for c in cols:
            v = row.get(c["key"])
            if c.get("text"):
                cells.append(f'<td class="l">{escape(str(v if v is not None else ""))}</td>')
            elif c.get("share") and isinstance(v, (int, float)):
                hib = c.get("higher_is_better")
                style = _heat(v if hib else 1 - v) if hib is not None else ""
                cells.append(f'<td style="{style}">{escape(share_text(row, c["key"]))}</td>')
            else:
                cells.append(f"<td>{escape(fmt(v))}</td>")
        v = verdicts.get(row["label"])
        pill = f'<span class="pill {v.level}" title="{escape(v.judgement)}">{v.level}</span>' if v else ""
        rows.append(f"<tr>{''.join(cells)}<td>{pill}</td></tr>")
    return f'<table><tr>{head}<th>verdict</th></tr>{"".join(rows)}</table>'


def kv_html(data: dict[str, Any]) -> str:
    rows = []
    for k, v in data.items():
        text = json.dumps(v, default=str) if isinstance(v, (dict, list)) else str(v)
        rows.append(f'<tr><td>{escape(str(k))}</td><td>{escape(text)}</td></tr>')
    return f'<table class="kv">{"".join(rows)}</table>'


def cost_rows(files: RunFiles) -> dict[str, Any]:
    """The headline costs: unlearning time and steps, evaluation and attack seconds, stage timings."""
    out: dict[str, Any] = {}
    for key in ("seconds", "stages", "method", "steps", "task", "model", "original", "reference"):
        if key in files.manifest:
            out[key] = files.manifest[key]
    if files.config:
        train = files.config.get("train") or {}
        out["unlearning method"] = files.config.get("method")
        out["unlearning steps / lr"] = f"{train.get('steps', '–')} / {train.get('lr', '–')}" if train else "training-free"
    for label, attacks in files.attacks.items():
        out[f"attack seconds ({label})"] = round(attacks.get("seconds", 0.0), 1)
    for label, card in files.cards.items():
        out[f"evaluation seconds ({label})"] = round(sum(m.get("seconds", 0) for m in card.metrics.values()), 1)
    env = next((c.config.get("environment") for c in files.cards.values() if c.config.get("environment")), None)
    if env:
        out["environment"] = ", ".join(f"{k} {v}" for k, v in env.items())
    return out


def figures(files: RunFiles) -> dict[str, bytes]:
    """PNG bytes of every figure the run's files allow."""
    out: dict[str, bytes] = {}
    points = []
    original = files.cards.get(files.original) if files.original else None
    form = headline_form(original or next(iter(files.cards.values())), original) if files.cards else "qa"
    for label, card in files.cards.items():
        split = keep_split(card)
        forget = qa_accuracy(card, "forget", form)
        if forget is not None and split:
            points.append(plots.Point(label, forget, qa_accuracy(card, split, form), files.role(label),
                                      forget_ci=card.value("forms", "forget", form, "accuracy_ci"),
                                      utility_ci=card.value("forms", split, form, "accuracy_ci")))
    if files.bench and any(r.get("sweep_value") is not None for r in files.bench["rows"]):
        points = [p for p in points if p.role != "unlearned"]
        points += [plots.Point(r["label"], r["forget_qa"], r["keep_qa"], "unlearned",
                               r["method"] if r.get("sweep_value") is not None else "")
                   for r in files.bench["rows"] if r.get("forget_qa") is not None and r.get("keep_qa") is not None]
    if points:
        keep = next((keep_split(c) for c in files.cards.values() if keep_split(c)), "retain")
        out["pareto"] = plots.pareto(points, x_label=f"forget {HEADLINE_FORMS[form]} accuracy",
                                     y_label=f"{keep} {HEADLINE_FORMS[form]} accuracy")
    if len(files.attacks) == 1:
        attacks = next(iter(files.attacks.values()))
        above = {n: estimate(r["above_control"]) for n, r in attacks.get("results", {}).items()
                 if r.get("above_control")}
        if above:
            out["attacks"] = plots.recovery_bars(above)
    elif files.attacks:
        out["attacks"] = plots.recovery_heatmap({
            label: {n: (r["above_control"]["value"] if r.get("above_control") else None)
                    for n, r in a.get("results", {}).items()}
            for label, a in files.attacks.items()})
    shares = outcome_rows(files)
    if shares:
        out["outcomes"] = plots.stacked_shares(shares, OUTCOME_COLOURS)
    if files.history:
        out["loss"] = plots.loss_curves(files.history)
    if files.config.get("until"):
        out["until"] = plots.until_curve(files.config["until"])
    return out


LEVELS = {"good": 2, "mixed": 1, "bad": 0}


def best_verdict(verdicts: list[Verdict]) -> Verdict:
    """The best trade-off: best level first, then forgotten x kept x (1 - worst recovery above its control)."""
    def score(v: Verdict) -> tuple[int, float]:
        worst = v.worst[1] if v.worst else None
        above = max(0.0, worst.value) if worst is not None else 0.0
        kept = 1.0 if v.kept_least is None else v.kept_least
        return LEVELS[v.level], (v.forgot or 0.0) * kept * (1 - above)

    return max(verdicts, key=score)


def tiles_html(v: Verdict) -> str:
    """The verdict's numbers as large tiles, each coloured by whether it is good news."""
    tiles = []
    if v.forgot is not None:
        tiles.append((f"forgotten (forget {HEADLINE_FORMS[v.form]})", pct(v.forgot),
                      "good" if v.forgot >= 0.85 else "mixed" if v.forgot >= 0.5 else "bad"))
    if v.kept is not None:
        tiles.append((f"kept ({v.keep_split} {HEADLINE_FORMS[v.form]})", pct(v.kept), "good" if v.kept >= 0.9 else "mixed" if v.kept >= 0.8 else "bad"))
    if v.cost:
        tiles.append((f"kept ({v.keep_split} {v.cost[0]})", pct(v.cost[1]),
                      "good" if v.cost[1] >= 0.9 else "mixed" if v.cost[1] >= 0.8 else "bad"))
    if v.worst and v.worst[1] is not None:
        est = v.worst[1]
        tiles.append((f"worst attack above control ({v.worst[0] or '–'}), 95 % CI {interval(est)}",
                      f"{est.value * 100:+.0f} %", "bad" if est.lo > 0 else "good"))
    if v.broken:
        tiles.append((f"gibberish answers to forget {HEADLINE_FORMS[v.form]}", pct(v.broken), "mixed" if v.broken >= 0.5 else "good"))
    if v.leak is not None:
        tiles.append((f"leakiest form ({v.leak[0]}) above control", interval(v.leak[1]), "mixed"))
    if not tiles:
        return ""
    return '<div class="tiles">' + "".join(
        f'<div class="tile {level}"><div class="v">{escape(x)}</div><div class="k">{escape(k)}</div></div>'
        for k, x, level in tiles) + "</div>"


def _section(anchor: str, title: str, body: str, note: str = "") -> str:
    note_html = f'<p class="note">{note}</p>' if note else ""
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{note_html}{body}</section>'


def _img(figs: dict[str, bytes], name: str, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="{plots.data_uri(figs[name])}">' if name in figs else ""


def to_html(files: RunFiles, verdicts: list[Verdict], figs: dict[str, bytes]) -> str:
    sections = []
    shown = [best_verdict(verdicts)] if files.bench and verdicts else verdicts
    for v in shown:
        who = f'<div class="who">{escape(v.label)}</div>' if len(verdicts) > 1 else ""
        if files.bench and len(verdicts) > 1:
            who = f'<div class="who">best trade-off of {len(verdicts)} methods: {escape(v.label)}</div>'
        sections.append(f'<section class="verdict {v.level}">{who}<div class="head">{escape(v.headline)}'
                        f'<span class="pill {v.level}">{v.level}</span></div><div class="why">'
                        f'{escape(v.judgement)}</div>{tiles_html(v)}</section>')
    if files.bench:
        sections.append(_section("methods", "Methods compared", bench_html(files.bench, {v.label: v for v in verdicts}),
                                 "Every method unlearned a fresh copy of the same model under the same budget."))
    sections.append(_section("card", "Forget card", forms_html(files),
                             "The same facts asked in every form. Forgetting that only holds for the trained "
                             "wording (QA) shows up as green QA and red elsewhere."))
    if "pareto" in figs:
        ref_note = " The reference (★) never saw the forget set." if files.reference else ""
        curves = " A sweep draws one curve per method." if files.bench and any(
            r.get("sweep_value") is not None for r in files.bench["rows"]) else ""
        sections.append(_section("pareto", "Forgetting vs utility", _img(figs, "pareto", "forgetting vs utility"),
                                 "Each point is one model. Top right is ideal: nothing of the forget set, "
                                 f"everything else kept.{ref_note}{curves}"))
    if files.attacks:
        body = _img(figs, "attacks", "recovery per attack")
        body += "".join(attacks_html(label, a) for label, a in files.attacks.items()) if len(files.attacks) == 1 else ""
        note = ("What each attack brought back above its control (the same attack, budget and tries where the "
                "knowledge is absent), with 95 % intervals; red bars lie above 0.") if len(files.attacks) == 1 else (
                "What each attack brought back from each model above its control, under the same budget.")
        sections.append(_section("attacks", "Attacks: does it come back?", body, note))
    if "outcomes" in figs:
        sections.append(_section("outcomes", "What the model says instead", _img(figs, "outcomes", "outcomes"),
                                 "Greedy answers to direct questions (forget, and the never-learned holdout facts "
                                 "as control), sorted by the strict judge. Refusals and empty answers are the safe "
                                 "failure; fluent wrong answers are what an exactly unlearned model gives; "
                                 "gibberish means the model was broken, not taught to forget."))
    if files.generations:
        sections.append(_section("examples", "Example generations", generations_html(files.generations)))
    metrics = metrics_html(files)
    if metrics:
        sections.append(_section("metrics", "Every metric", metrics))
    if "until" in figs:
        sections.append(_section("until", "Stop when forgotten", _img(figs, "until", "probe curve"),
                                 escape(until_note(files.config["until"]))))
    if "loss" in figs:
        sections.append(_section("training", "Training", _img(figs, "loss", "training loss")))
    config = json.dumps(config_summary(files), indent=2, default=str)
    sections.append(_section("config", "Config and cost", kv_html(cost_rows(files))
                             + f"<details><summary>full config</summary><pre>{escape(config)}</pre></details>"))
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("methods", "methods"), ("card", "forget card"), ("pareto", "trade-off"), ("attacks", "attacks"),
        ("outcomes", "outcomes"), ("examples", "examples"), ("metrics", "metrics"), ("until", "stop rule"),
        ("training", "training"),
        ("config", "config")) if f'id="{a}"' in "".join(sections))
    card = next(iter(files.cards.values()))
    models = " · ".join(f"{escape(label)}: {escape(c.model)}" for label, c in files.cards.items())
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{escape(files.title)}</title><style>{CSS}</style>'
            f'</head><body><main><h1>{escape(files.title)}</h1><div class="sub">task {escape(card.task)} · {models}'
            f'</div><nav>{nav}</nav>{"".join(sections)}<p class="note">made by obliviate from {escape(str(files.run_dir))}'
            f'</p></main></body></html>')


def render_report(run_dir: str | Path) -> Path:
    """Write report.html (self-contained) and report.md (+ plots/*.png) into `run_dir`; returns the HTML path.

    Raises ConfigError when the folder holds no forget card.
    """
    files = read_run(run_dir)
    labels = [r["label"] for r in files.bench["rows"] if r.get("final", True)] if files.bench else \
        files.labels("unlearned")
    verdicts = [verdict(files, label) for label in labels if label in files.cards]
    figs = figures(files)
    plot_dir = Path(run_dir) / "plots"
    plot_dir.mkdir(exist_ok=True)
    images = {}
    for name, data in figs.items():
        (plot_dir / f"{name}.png").write_bytes(data)
        images[name] = f"plots/{name}.png"
    out = Path(run_dir) / "report.html"
    _write(out, to_html(files, verdicts, figs))
    _write(Path(run_dir) / "report.md", to_markdown(files, verdicts, images))
    return out


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".partial")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
