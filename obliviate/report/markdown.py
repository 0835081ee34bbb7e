"""Read a run folder into one `RunFiles`, judge it (`verdict`), and write the Markdown report.

The HTML report (html.py) is built from the same `RunFiles` and the same verdict, so the two never disagree.
A run folder may hold, all optional except at least one card:

    cards/<label>.json       forget cards (card.json alone is read as label "model")
    attacks.json             obliviate.redteam output for the unlearned model
    generations.json         example answers per model (obliviate.audit.record_examples)
    config.json, history.json  how the unlearned model was made (UnlearnRun.save)
    demo.json / audit.json   the run's own summary (task, seconds per stage, ...)
    bench.json               a bench: one row per (method, sweep value), each with its own sub-folder

A card's label gives its role: `base`, `original` (or `taught`: the model before unlearning), `reference`
(the exact-unlearning reference); every other label is an unlearned model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obliviate.card import Card
from obliviate.data.forms import DIRECT_FORMS
from obliviate.errors import ConfigError
from obliviate.metrics.base import SECTIONS
from obliviate.runs import read_json
from obliviate.stats import Estimate, min_detectable_difference

ROLES = {"base": "base", "original": "original", "taught": "original", "reference": "reference"}
ROLE_ORDER = {"base": 0, "original": 1, "unlearned": 2, "reference": 3}
KEEP_SPLITS = ("retain", "neighbours", "general")
MANIFESTS = ("audit.json", "demo.json", "bench.json")


@dataclass
class RunFiles:
    """Everything a report is built from; missing files leave their field empty."""

    run_dir: Path
    cards: dict[str, Card] = field(default_factory=dict)  # label -> card, in display order
    attacks: dict[str, dict[str, Any]] = field(default_factory=dict)  # unlearned label -> attacks.json content
    generations: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)  # how the (single) unlearned model was made
    history: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # label -> training history
    manifest: dict[str, Any] = field(default_factory=dict)
    bench: dict[str, Any] | None = None

    def role(self, label: str) -> str:
        return ROLES.get(label, "unlearned")

    def labels(self, role: str) -> list[str]:
        return [label for label in self.cards if self.role(label) == role]

    @property
    def original(self) -> str | None:
        return next(iter(self.labels("original")), None)

    @property
    def reference(self) -> str | None:
        return next(iter(self.labels("reference")), None)

    @property
    def title(self) -> str:
        card = next(iter(self.cards.values()))
        kind = "bench" if self.bench else "audit" if self.manifest.get("kind") == "audit" else "unlearning report"
        return f"obliviate {kind} — {card.task}"


def _load_card(path: Path) -> Card:
    try:
        return Card.load(path)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{path}: not a forget card ({e}); it should be the JSON written by Card.save") from e


def read_run(run_dir: str | Path) -> RunFiles:
    """Collect the files of `run_dir` (see the module docstring for the layout)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no such run folder")
    files = RunFiles(run_dir)
    for name in MANIFESTS:
        if (run_dir / name).is_file():
            files.manifest = {**read_json(run_dir / name), "kind": name.removesuffix(".json")}
            break
    cards: dict[str, Card] = {}
    for path in sorted((run_dir / "cards").glob("*.json")):
        cards[path.stem] = _load_card(path)
    if (run_dir / "card.json").is_file():
        cards["model"] = _load_card(run_dir / "card.json")
    if (run_dir / "bench.json").is_file():
        files.bench = read_json(run_dir / "bench.json")
        for row in files.bench.get("rows", []):
            sub = run_dir / row["dir"]
            if row.get("final", True) and (sub / "card.json").is_file():
                cards[row["label"]] = _load_card(sub / "card.json")
            if (sub / "attacks.json").is_file() and row.get("final", True):
                files.attacks[row["label"]] = read_json(sub / "attacks.json")
            if (sub / "history.json").is_file() and row.get("final", True):
                files.history[row["label"]] = read_json(sub / "history.json")
    if not cards:
        raise ConfigError(f"{run_dir}: no forget card found (cards/*.json, card.json or bench.json); "
                          "run `obliviate eval`, `audit` or `bench` into this folder first")
    files.cards = dict(sorted(cards.items(), key=lambda kv: ROLE_ORDER[files.role(kv[0])]))
    unlearned = files.labels("unlearned")
    if (run_dir / "attacks.json").is_file() and unlearned:
        files.attacks.setdefault(unlearned[0], read_json(run_dir / "attacks.json"))
    if (run_dir / "generations.json").is_file():
        files.generations = read_json(run_dir / "generations.json")
    if (run_dir / "config.json").is_file():
        files.config = read_json(run_dir / "config.json")
    if (run_dir / "history.json").is_file() and unlearned:
        history = read_json(run_dir / "history.json")
        if history:
            files.history.setdefault(unlearned[0], history)
    return files


# ----------------------------------------------------------------------------------------------------- verdict

def qa_accuracy(card: Card, split: str, form: str = "qa") -> float | None:
    return card.value("forms", split, form, "accuracy")


HEADLINE_FORMS = {"qa": "QA", "chat": "chat"}  # the direct questions a verdict may rest on, and their names


def headline_form(card: Card, original: Card | None = None) -> str:
    """The direct form the verdict rests on: the one in which the original (else this model) answers the most
    forget facts, QA on a tie. An instruct model asked through its chat template shows far more of what it knows
    than plain QA does (SmolLM2 on real facts: 0.85 vs 0.25), so a QA-only verdict would judge knowledge the
    model never showed in that form ("kept 0 % of retain" when chat kept 97 %)."""
    source = original or card
    scores = {f: qa_accuracy(source, "forget", f) for f in HEADLINE_FORMS if qa_accuracy(card, "forget", f) is not None}
    scores = {f: x for f, x in scores.items() if x is not None}
    return max(scores, key=lambda f: (scores[f], f == "qa")) if scores else "qa"


def keep_split(card: Card) -> str | None:
    """The split that stands for 'what must be kept': retain, else neighbours, else general."""
    return next((s for s in KEEP_SPLITS if qa_accuracy(card, s) is not None), None)


@dataclass
class Verdict:
    """The one-line answer: did it forget, what did it cost, does it come back? Every claim rests on an interval."""

    label: str
    form: str = "qa"  # the direct form every number below is read in (headline_form)
    forgot: float | None = None  # share of the original's forget accuracy (in `form`) that is gone
    kept: float | None = None  # unlearned / original accuracy on the keep split (capped at 1)
    keep_split: str | None = None
    forget_control: Estimate | None = None  # forget minus the control (reference, else holdout), with its CI
    control_kind: str | None = None
    worst: tuple[str | None, Estimate | None] | None = None  # (attack, above-control estimate) from attacks.json
    leak: tuple[str, Estimate] | None = None  # the untrained form still above its control, if any
    broken: float | None = None  # share of gibberish among the answers to forget questions
    neighbours_kept: float | None = None  # unlearned / original accuracy on the neighbour split
    cost: tuple[str, float] | None = None  # (form, kept share) of another direct form where the keep split lost more
    n_forget: int | None = None
    level: str = "mixed"  # good / mixed / bad
    headline: str = ""
    judgement: str = ""

    @property
    def kept_least(self) -> float | None:
        """The keep split's share kept in the direct form where it lost the most."""
        return self.cost[1] if self.cost else self.kept


def _ratio(new: float | None, old: float | None) -> float | None:
    if new is None:
        return None
    if not old:
        return new
    return min(1.0, new / old)


def pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.0f} %"


def interval(est: Estimate | dict | None, signed: bool = True) -> str:
    """'+12 % [−3 %, +27 %]' (or unsigned), from an Estimate or its dict."""
    if est is None:
        return "–"
    if isinstance(est, dict):
        est = estimate(est)
    sign = "+" if signed else ""
    return f"{est.value * 100:{sign}.0f} % [{est.lo * 100:{sign}.0f} %, {est.hi * 100:{sign}.0f} %]"


def estimate(d: dict | None) -> Estimate | None:
    """An Estimate from its saved dict ({"value", "ci", "n"})."""
    if not d:
        return None
    return Estimate(d["value"], d["ci"][0], d["ci"][1], d.get("n", 0))


def _control_of(card: Card, form: str) -> tuple[str | None, Estimate | None]:
    """(kind, estimate) of a forget form against its control: the reference when the card has it, else holdout."""
    row = card.value("forms", "forget", form) or {}
    for kind in ("reference", "holdout"):
        if row.get(f"above_{kind}"):
            return kind, estimate(row[f"above_{kind}"])
    return None, None


# A form's leak reaches the verdict only when it rests on this many facts: an interval above 0 on four two-hop
# questions is real arithmetic but too thin to headline (the tables still show it).
LEAK_MIN_N = 10
COST_MIN_KNOWN = 0.5  # a form counts for the cost only where the original answered at least this share of it


def costliest_form(card: Card, orig: Card, split: str, form: str, kept: float) -> tuple[str, float] | None:
    """(form, kept share) of the direct form other than `form` in which `split` lost the most, if it lost more
    than in `form`. The verdict reads one form, but unlearning trained every direct form and can erase the
    knowledge in one of them (NPO on real facts: retain chat 0.82 -> 0.85 while retain cloze fell 0.70 -> 0.00);
    only forms the original answered for at least COST_MIN_KNOWN of the split count."""
    shares = {}
    for other in DIRECT_FORMS:
        before, after = qa_accuracy(orig, split, other), qa_accuracy(card, split, other)
        if other != form and before is not None and after is not None and before >= COST_MIN_KNOWN:
            shares[other] = _ratio(after, before)
    worst = min(shares.items(), key=lambda kv: kv[1], default=None)
    return worst if worst and worst[1] < kept else None


def verdict(files: RunFiles, label: str) -> Verdict:
    """Judge the unlearned model `label` against the original, its controls and its attacks."""
    card = files.cards[label]
    orig = files.cards.get(files.original) if files.original else None
    form = headline_form(card, orig)
    v = Verdict(label, form)
    name = HEADLINE_FORMS[form]
    now = qa_accuracy(card, "forget", form)
    before = qa_accuracy(orig, "forget", form) if orig else None
    # Shares are relative to what the original knew; when it knew nothing there is nothing to measure.
    if now is not None and not (orig and not before):
        v.forgot = max(0.0, 1 - now / before if before else 1 - now)
    v.n_forget = card.value("forms", "forget", form, "n")
    v.control_kind, v.forget_control = _control_of(card, form)
    outcomes = card.value("forms", "forget", form, "outcomes") or {}
    if outcomes:
        v.broken = outcomes.get("gibberish", 0.0)
    v.keep_split = keep_split(card)
    kept_before = qa_accuracy(orig, v.keep_split, form) if orig and v.keep_split else None
    if v.keep_split and not (orig and not kept_before):
        v.kept = _ratio(qa_accuracy(card, v.keep_split, form), kept_before)
        v.cost = costliest_form(card, orig, v.keep_split, form, v.kept) if orig else None
    if v.keep_split != "neighbours" and orig and qa_accuracy(orig, "neighbours", form):
        v.neighbours_kept = _ratio(qa_accuracy(card, "neighbours", form), qa_accuracy(orig, "neighbours", form))
    attacks = files.attacks.get(label)
    if attacks:
        worst = attacks.get("worst_case", {})
        v.worst = (worst.get("attack"), estimate(worst.get("above_control")))
    trained = set(files.config.get("forms") or ["qa"]) if files.role(label) == "unlearned" else set()
    leaks = [(est, other) for other in (card.value("forms", "forget") or {}) if other not in trained
             for _, est in [_control_of(card, other)] if est is not None and est.lo > 0 and est.n >= LEAK_MIN_N]
    if leaks:
        est, other = max(leaks, key=lambda x: x[0].value)
        v.leak = (other, est)
    parts = [f"forgot {pct(v.forgot)} of forget {name}" if v.forgot is not None
             else f"forget {name} accuracy {pct(now)}"]
    if v.forget_control is not None:
        parts[0] += f" (n = {v.n_forget}; {interval(v.forget_control)} vs the {v.control_kind})"
    if v.kept is not None:
        parts.append(f"kept {pct(v.kept)} of {v.keep_split}"
                     + (f" ({pct(v.cost[1])} asked as a {v.cost[0]})" if v.cost else ""))
    elif v.keep_split:
        parts.append(f"{v.keep_split} {name} accuracy {pct(qa_accuracy(card, v.keep_split, form))}")
    if v.neighbours_kept is not None:
        parts.append(f"{pct(v.neighbours_kept)} of neighbours")
    head = ", ".join(parts)
    if v.worst and v.worst[1] is not None:
        head += f"; worst attack {interval(v.worst[1])} above its control ({v.worst[0]})"
    v.headline = head
    v.level, v.judgement = _judge(v)
    return v


def _judge(v: Verdict) -> tuple[str, str]:
    """Plain-language reading of the numbers; the first failing check wins. A claim about knowledge that is still
    there needs an interval above 0; an interval that contains 0 is reported as 'cannot tell apart'."""
    if v.forgot is None:
        return "mixed", ("Nothing to judge: the original model does not answer the forget questions, so there was "
                         "nothing to forget (teach the facts first, or check the task).")
    if v.forgot < 0.5:
        return "bad", "Not forgotten: the model still answers most of the forget questions it used to know."
    if v.kept_least is not None and v.kept_least < 0.8:
        asked = f" asked as a {v.cost[0]}" if v.cost else ""
        return "bad", (f"Forgotten, but at too high a cost: the model lost {pct(1 - v.kept_least)} of what it knew "
                       f"on {v.keep_split}{asked}. Try fewer steps, a lower learning rate or a method with a retain "
                       "term.")
    worst_name, worst = v.worst or (None, None)
    if worst is not None and worst.lo > 0:
        return "bad", (f"Hidden, not removed: the {worst_name} attack brings back {interval(worst)} of the facts "
                       f"above what its control gets (n = {worst.n}). The knowledge is still in the weights.")
    if v.broken is not None and v.broken >= 0.5:
        return "mixed", (f"Forgot by breaking: {pct(v.broken)} of the answers to forget questions are gibberish. "
                         "The model was damaged there rather than taught not to know; an exactly unlearned model "
                         "answers fluently (and wrongly). Try fewer steps or a method with a retain term.")
    if v.forget_control is not None and v.forget_control.lo > 0:
        return "mixed", (f"Partly forgotten: forget {HEADLINE_FORMS[v.form]} is still {interval(v.forget_control)} above the "
                         f"{v.control_kind} (n = {v.n_forget}).")
    if v.forgot < 0.85:
        return "mixed", "Partly forgotten: the model still answers some of the forget questions."
    if v.neighbours_kept is not None and v.neighbours_kept < 0.8:
        return "mixed", (f"Forgotten, but related facts went with it: the model lost {pct(1 - v.neighbours_kept)} of "
                         "what it knew about the neighbours (facts sharing entities with the forget set), which "
                         "had to stay. Try fewer steps or a method that protects neighbours.")
    if v.leak:
        form, est = v.leak
        return "mixed", (f"Forgotten in the trained wording only: the {form} form still answers {interval(est)} "
                         f"above its control (n = {est.n}).")
    n = v.n_forget or 0
    if worst is None:
        tail = ""
    else:
        tail = (f" No attack is distinguishable from its control (highest: {worst_name}, {interval(worst)}); with "
                f"n = {worst.n} a difference below ~{pct(min_detectable_difference(max(1, worst.n)))} can go unseen.")
    return "good", (f"Looks forgotten: the forget questions get no answer (n = {n}), the rest of the model is "
                    f"intact.{tail}")


# -------------------------------------------------------------------------------------------------- tables

def flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf numbers and strings of a nested metric dict as {"a.b": value}; sample counts ("n", "n_*") and lists
    are left out (they describe the sample, not the model)."""
    out: dict[str, Any] = {}
    if isinstance(values, dict):
        for key, val in values.items():
            key = str(key)
            if key == "n" or key.startswith("n_"):
                continue
            out.update(flatten(val, f"{prefix}.{key}" if prefix else key))
    elif isinstance(values, bool):
        out[prefix] = float(values)
    elif isinstance(values, (int, float, str)):
        out[prefix] = values
    return out


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}" if abs(value) < 0.01 and value != 0 else f"{value:.2f}"


def forms_rows(files: RunFiles, split: str, stat: str = "accuracy") -> list[tuple[str, list[float | None]]]:
    """(form, one value per card) for the forms present in `split`."""
    forms: list[str] = []
    for card in files.cards.values():
        for form in card.value("forms", split) or {}:
            if form not in forms:
                forms.append(form)
    return [(form, [c.value("forms", split, form, stat) for c in files.cards.values()]) for form in forms]


def card_splits(files: RunFiles) -> list[str]:
    splits: list[str] = []
    for card in files.cards.values():
        for split in card.value("forms") or {}:
            if split not in splits:
                splits.append(split)
    return splits


OWN_SECTIONS = ("forms",)  # metrics drawn in their own section, left out of the generic tables
OUTCOME_FORMS = ("qa", "chat")  # the direct questions whose answers the outcome chart sorts


def metric_rows(files: RunFiles) -> dict[str, list[tuple[str, str, bool | None, list[Any]]]]:
    """{section: [(metric, leaf path, higher_is_better, one value per card)]} for every metric but OWN_SECTIONS."""
    out: dict[str, list] = {}
    names = list(dict.fromkeys(m for c in files.cards.values() for m in c.metrics if m not in OWN_SECTIONS))
    for name in names:
        entries = [c.metrics.get(name, {}) for c in files.cards.values()]
        meta = next((e for e in entries if "values" in e), None)
        if meta is None:
            continue
        leaves = [flatten(e.get("values")) for e in entries]
        paths = list(dict.fromkeys(p for leaf in leaves for p in leaf))
        for path in paths:
            out.setdefault(meta.get("section", "other"), []).append(
                (name, path, meta.get("higher_is_better"), [leaf.get(path) for leaf in leaves]))
    order = {name: i for i, name in enumerate(SECTIONS)}
    return dict(sorted(out.items(), key=lambda kv: order.get(kv[0], len(order))))


def outcome_rows(files: RunFiles) -> dict[str, dict[str, float]]:
    """{"<label> · <split> <form>": {outcome: share}} for the direct questions on forget (and holdout, the control)."""
    rows = {}
    for label, card in files.cards.items():
        for split in ("forget", "holdout"):
            for form in OUTCOME_FORMS:
                shares = card.value("forms", split, form, "outcomes")
                if shares:
                    rows[f"{label} · {split} {form}"] = shares
    return rows


def ci_cell(card: Card, split: str, form: str, stat: str = "accuracy") -> str:
    """'0.25 [0.09, 0.53]' for a forms value with its interval ('–' when absent)."""
    value = card.value("forms", split, form, stat)
    if value is None:
        return "–"
    ci = card.value("forms", split, form, f"{stat}_ci")
    return f"{value:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else f"{value:.2f}"


# ------------------------------------------------------------------------------------------------ markdown

def _md_table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """A Markdown table; the first `left` columns are text (left-aligned), the rest numbers."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i < left else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def to_markdown(files: RunFiles, verdicts: list[Verdict], images: dict[str, str]) -> str:
    """The report as Markdown; `images` maps a figure name to its path relative to the report."""
    labels = list(files.cards)
    out = [f"# {files.title}", ""]
    for v in verdicts:
        mark = {"good": "✅", "mixed": "⚠️", "bad": "❌"}[v.level]
        who = f"**{v.label}**: " if len(verdicts) > 1 else ""
        out += [f"{mark} {who}{v.headline}", "", f"> {v.judgement}", ""]
    if files.bench:
        out += ["## Methods compared", "", bench_markdown(files.bench), ""]
    out += ["## Forget card (accuracy per form, 95 % interval)", ""]
    for split in card_splits(files):
        direction = ("control: facts never learned" if split == "holdout" else
                     "lower is better" if split == "forget" else "higher is better")
        rows = [[form, *(ci_cell(c, split, form) for c in files.cards.values()),
                 " / ".join(str(c.value("forms", split, form, "n") or "–") for c in files.cards.values())]
                for form, _ in forms_rows(files, split)]
        out += [f"**{split}** ({direction})", "", _md_table(["form", *labels, "n facts"], rows), ""]
    for name, title in (("pareto", "Forgetting vs utility"), ("attacks", "Recovery per attack"),
                        ("outcomes", "What the model says instead"), ("until", "Stop when forgotten"),
                        ("loss", "Training loss")):
        if name in images:
            note = [f"> {until_note(files.config['until'])}", ""] if name == "until" else []
            out += [f"## {title}", "", *note, f"![{title}]({images[name]})", ""]
    for label, attacks in files.attacks.items():
        out += [f"## Attacks on {label}", "", attack_markdown(attacks), ""]
    if files.generations:
        out += ["## Example generations", "", generations_markdown(files.generations), ""]
    sections = metric_rows(files)
    if sections:
        out += ["## All metrics", ""]
        for section, rows in sections.items():
            table = [[f"{m} {p}" + (" ↑" if hib else " ↓" if hib is False else ""), *(fmt(x) for x in vals)]
                     for m, p, hib, vals in rows]
            out += [f"**{section}**", "", _md_table(["metric", *labels], table), ""]
    out += ["## Config and cost", "", "```json", _config_json(files), "```", ""]
    return "\n".join(out)


def until_note(until: dict[str, Any]) -> str:
    """One paragraph on the stop-when-forgotten rule of a run: the outcome and how it was read."""
    rule, n = until["rule"], until["n"]
    kept = [f"retain within {pct(rule['keep_within'])}"] if n.get("retain") else []
    kept += [f"neighbours within {pct(rule['neighbours_within'])}"] if n.get("neighbours") else []
    sets = [f"{n[s]} {name}" for s, name in (("forget", "forget"), ("holdout", "control (holdout)"),
                                              ("retain", "retain"), ("neighbours", "neighbour")) if n.get(s)]
    return (f"{until['message']}. Probed every {rule['every']} steps on {', '.join(sets)} facts in "
            f"{', '.join(until['forms'])}; forgotten = forget within {pct(rule['tolerance'])} of the control in "
            f"every form" + (f", kept = {' and '.join(kept)} of the model before training in every form" if kept
                             else "") + ". Few facts: the card above measures the kept model on all of them, with "
            "intervals.")


def attack_markdown(attacks: dict[str, Any]) -> str:
    """Per attack: recovered targets, the control's rate, the difference with its 95 % interval, and notes."""
    control = attacks.get("control") or {}
    n_control = len(control.get("targets", []))
    rows = [["no attack (asked directly)", f"{len(attacks.get('answered_plainly', []))}/{len(attacks.get('targets', []))}",
             f"{len(control.get('answered_plainly', []))}/{n_control}", interval(attacks.get("plain_above_control")),
             "", "", ""]]
    for name, r in attacks.get("results", {}).items():
        outcomes = r.get("outcomes", [])
        if "error" in r.get("details", {}):
            rows.append([name, "error", "", "", "", f"{r.get('seconds', 0):.0f}", r.get("notes", "").replace("|", "/")])
            continue
        got = sum(o["recovered"] for o in outcomes)
        theirs = (r.get("control") or {}).get("outcomes", [])
        beyond = "{}/{}".format(*r["beyond_plain"]) if r.get("beyond_plain") and r["beyond_plain"][1] else ""
        rows.append([name, f"{got}/{len(outcomes)}" if outcomes else "–",
                     f"{sum(o['recovered'] for o in theirs)}/{len(theirs)}" if theirs else "–",
                     interval(r.get("above_control")), beyond, f"{r.get('seconds', 0):.0f}",
                     r.get("notes", "").replace("|", "/")])
    kind = control.get("kind", "none")
    head = (f"Control: {kind} ({n_control} facts where the knowledge is absent, same budget and tries). "
            f"With {len(attacks.get('targets', []))} targets a difference below "
            f"~{pct(min_detectable_difference(max(1, len(attacks.get('targets', []))), max(1, n_control)))} "
            "can go unseen.\n\n")
    return head + _md_table(["attack", "recovered", "control", "above control (95 % CI)", "of the forgotten",
                             "seconds", "notes"], rows)


def generations_markdown(gen: dict[str, Any]) -> str:
    labels = list(gen["outputs"])
    rows = []
    for i, fact in enumerate(gen["facts"]):
        cells = [fact["split"], fact["question"].replace("|", "/"), fact["answer"]]
        for label in labels:
            o = gen["outputs"][label][i]
            cells.append(("✓ " if o["correct"] else "✗ ") + o["output"].replace("|", "/"))
        rows.append(cells)
    return _md_table(["split", "question", "answer", *labels], rows, left=3 + len(labels))


def share_text(row: dict[str, Any], key: str) -> str:
    """A bench share with its spread: '25 % [9, 53]' (one seed's 95 % interval) or '25 % ± 4' (sd over seeds);
    differences against a control are signed."""
    value = row.get(key)
    if value is None:
        return "–"
    signed = "control" in key or key.startswith("recovery") or key == "worst_recovery"
    text = f"{value * 100:+.0f} %" if signed else pct(value)
    if row.get(f"{key}_ci"):
        lo, hi = row[f"{key}_ci"]
        text += f" [{lo * 100:.0f}, {hi * 100:.0f}]"
    elif row.get(f"{key}_sd") is not None:
        text += f" ± {row[f'{key}_sd'] * 100:.0f}"
    return text


def bench_markdown(bench: dict[str, Any]) -> str:
    cols = bench["columns"]

    def cell(c: dict[str, Any], row: dict[str, Any]) -> str:
        if c.get("text"):
            return "" if row.get(c["key"]) is None else str(row[c["key"]])
        return share_text(row, c["key"]) if c.get("share") else fmt(row.get(c["key"]))

    rows = [[cell(c, row) for c in cols] for row in bench["rows"]]
    return _md_table([c["title"] for c in cols], rows, left=sum(1 for c in cols if c.get("text") and c["key"] in ("method", "sweep")))


def _config_json(files: RunFiles) -> str:
    import json

    return json.dumps(config_summary(files), indent=2, default=str)


def config_summary(files: RunFiles) -> dict[str, Any]:
    """What produced the run: the manifest, the unlearning config and each card's eval settings and seconds."""
    out: dict[str, Any] = {}
    if files.manifest:
        out["run"] = {k: v for k, v in files.manifest.items() if k not in ("rows", "columns")}
    if files.config:
        out["unlearning"] = files.config
    out["cards"] = {label: {"model": c.model, "eval": c.config.get("eval"),
                            "seconds": round(sum(m.get("seconds", 0) for m in c.metrics.values()), 1)}
                    for label, c in files.cards.items()}
    return out
