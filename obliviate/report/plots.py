"""The report's figures: matplotlib (Agg, no display, no network), each returned as PNG bytes.

Every function takes plain numbers (no cards, no models) so that the HTML and Markdown reports, the bench and
tests can draw the same figure from whatever they read. Colours follow one rule across the report: green is
good for the user, red is bad, grey is neutral.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # before pyplot: headless, and never tries to open a window
import matplotlib.pyplot as plt  # noqa: E402

from obliviate.stats import Estimate  # noqa: E402

GOOD, BAD, NEUTRAL, ACCENT = "#2f9e62", "#d1495b", "#8a8f98", "#3b6fd8"
# Roles of the models in a run; the unlearned ones get the cycle below.
ROLE_COLOURS = {"base": "#b7bcc4", "original": "#555b66", "reference": "#e0a526"}
CYCLE = ("#3b6fd8", "#d1495b", "#2f9e62", "#8e5bd1", "#e07b26", "#1b9aaa", "#c2508f", "#6b8e23")
DPI = 110


def png(fig) -> bytes:
    """The figure as PNG bytes (the figure is closed: pyplot keeps every open figure alive otherwise)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return buf.getvalue()


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(True, color="#e6e8eb", linewidth=0.8)
    ax.set_axisbelow(True)


@dataclass
class Point:
    """One model on the forget-vs-utility plane (accuracies in [0, 1]), with 95 % intervals when known."""

    label: str
    forget: float  # accuracy on the forget split: lower is better
    utility: float  # accuracy on what must be kept: higher is better
    role: str = "unlearned"  # base / original / reference / unlearned
    group: str = ""  # sweep curve this point belongs to (a method); "" for none
    forget_ci: tuple[float, float] | None = None
    utility_ci: tuple[float, float] | None = None


def pareto(points: Sequence[Point], x_label: str = "forget QA accuracy", y_label: str = "retain QA accuracy") -> bytes:
    """Forgetting (x, reversed so that right is better) against utility (y): the ideal is the top-right corner.

    Points that share a `group` are joined in the given order (a hyperparameter sweep gives one curve per method).
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    _style(ax)
    groups: dict[str, list[Point]] = {}
    for p in points:
        if p.group:
            groups.setdefault(p.group, []).append(p)
    colours = {g: CYCLE[i % len(CYCLE)] for i, g in enumerate(groups)}
    singles = [p for p in points if not p.group and p.role == "unlearned"]
    colours.update({p.label: CYCLE[(len(groups) + i) % len(CYCLE)] for i, p in enumerate(singles)})
    for group, pts in groups.items():
        ax.plot([p.forget for p in pts], [p.utility for p in pts], "-o", color=colours[group], label=group,
                markersize=6, linewidth=1.8, alpha=0.9)
        for p in pts:
            ax.annotate(p.label.split("@")[-1], (p.forget, p.utility), textcoords="offset points", xytext=(5, 4),
                        fontsize=7, color=colours[group])
    for p in points:  # error bars first, under the markers
        if p.forget_ci or p.utility_ci:
            xerr = [[p.forget - p.forget_ci[0]], [p.forget_ci[1] - p.forget]] if p.forget_ci else None
            yerr = [[p.utility - p.utility_ci[0]], [p.utility_ci[1] - p.utility]] if p.utility_ci else None
            ax.errorbar([p.forget], [p.utility], xerr=xerr, yerr=yerr, fmt="none", ecolor="#9aa0a8", elinewidth=0.9,
                        capsize=2, zorder=2)
    for p in points:
        if p.group:
            continue
        colour = ROLE_COLOURS.get(p.role) or colours.get(p.label, ACCENT)
        marker = {"reference": "*", "original": "s", "base": "D"}.get(p.role, "o")
        ax.scatter([p.forget], [p.utility], s=150 if marker == "*" else 60, color=colour, marker=marker,
                   edgecolor="white", linewidth=0.8, zorder=3, label=p.label)
    lo_x = min([p.forget for p in points] + [0.0])
    hi_x = max([p.forget for p in points] + [1.0])
    ax.set_xlim(hi_x + 0.04, lo_x - 0.04)  # reversed: less remembered is further right
    ax.set_ylim(-0.04, 1.04)
    ax.set_xlabel(f"{x_label}  (lower is better →)")
    ax.set_ylabel(f"{y_label}  (higher is better ↑)")
    ax.annotate("ideal", xy=(0.98, 0.97), xycoords="axes fraction", ha="right", va="top", fontsize=8, color=GOOD)
    ax.legend(fontsize=8, frameon=False, loc="lower left")
    return png(fig)


def recovery_bars(above: dict[str, Estimate]) -> bytes:
    """One horizontal bar per attack: what it brought back above its control, with the 95 % interval.

    Bars whose interval lies above 0 are red (the knowledge came back), the others green (cannot be told apart
    from a model that never knew)."""
    names = list(above)
    fig, ax = plt.subplots(figsize=(6.4, 0.42 * len(names) + 1.1))
    _style(ax)
    ax.grid(False, axis="y")
    colours = [BAD if above[n].lo > 0 else GOOD for n in names]
    y = list(range(len(names)))
    values = [above[n].value for n in names]
    errors = [[v - above[n].lo for n, v in zip(names, values)], [above[n].hi - v for n, v in zip(names, values)]]
    ax.barh(y, values, color=colours, height=0.6, xerr=errors, error_kw={"ecolor": "#333", "capsize": 3, "lw": 1})
    for i, n in enumerate(names):
        ax.text(max(above[n].hi, 0) + 0.02, i, f"{values[i]:+.0%}  n={above[n].n}", va="center", fontsize=8)
    ax.axvline(0, color="#333", linewidth=1)
    ax.set_yticks(y, names, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(min(-0.2, min(e.lo for e in above.values()) - 0.05), 1.1)
    ax.set_xlabel("recovered above the control (95 % CI)")
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    return png(fig)


def recovery_heatmap(table: dict[str, dict[str, float | None]]) -> bytes:
    """Rows = models (methods), columns = attacks, cell = recovery rate; darker red recovered more."""
    rows = list(table)
    cols = list(dict.fromkeys(a for r in table.values() for a in r))
    values = [[table[r].get(c) for c in cols] for r in rows]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(cols) + 2.0), 0.45 * len(rows) + 1.4))
    grid = [[v if v is not None else float("nan") for v in row] for row in values]
    ax.imshow(grid, cmap="Reds", vmin=0, vmax=1, aspect="auto")
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            ax.text(j, i, "–" if v is None else f"{v:.0%}", ha="center", va="center", fontsize=8,
                    color="white" if v is not None and v > 0.6 else "#222")
    ax.set_xticks(range(len(cols)), cols, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_title("forget facts recovered above the control, per attack", fontsize=9)
    return png(fig)


def stacked_shares(rows: dict[str, dict[str, float]], colours: dict[str, str] | None = None, title: str = "") -> bytes:
    """One horizontal bar per row, split into shares that sum to 1 (e.g. the outcome shares of each model).

    `colours` maps a part to its colour (parts not in it take the cycle)."""
    labels = list(rows)
    parts = list(dict.fromkeys(k for r in rows.values() for k in r))
    colours = colours or {}
    fig, ax = plt.subplots(figsize=(6.4, 0.34 * len(labels) + 1.0))
    left = [0.0] * len(labels)
    for i, part in enumerate(parts):
        widths = [rows[lab].get(part, 0.0) for lab in labels]
        ax.barh(range(len(labels)), widths, left=left, color=colours.get(part, CYCLE[i % len(CYCLE)]), label=part,
                height=0.7)
        for j, w in enumerate(widths):
            if w >= 0.08:
                ax.text(left[j] + w / 2, j, f"{w:.0%}", ha="center", va="center", fontsize=8, color="white")
        left = [a + b for a, b in zip(left, widths)]
    ax.set_yticks(range(len(labels)), labels, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(ncol=len(parts), fontsize=8, frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    if title:
        ax.set_title(title, fontsize=9, pad=22)
    return png(fig)


def until_curve(until: dict) -> bytes:
    """The stop-when-forgotten probe vs step: forget per form (solid), the holdout control per form (dotted, same
    colour), retain and neighbours (mean over forms, grey; the rule reads each form); step 0 is the model before
    training, the ring marks the checkpoint kept."""
    checks = [{"step": 0, "scores": until["baseline"]}, *until["curve"]]
    steps = [c["step"] for c in checks]
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    _style(ax)
    for i, form in enumerate(until["forms"]):
        colour = CYCLE[i % len(CYCLE)]
        ax.plot(steps, [c["scores"]["forget"][form] for c in checks], color=colour, linewidth=1.8, marker="o",
                markersize=3, label=f"forget {form}")
        ax.plot(steps, [c["scores"]["holdout"][form] for c in checks], color=colour, linewidth=1.0, linestyle=":",
                label=f"control {form}")
    for split, style in (("retain", "-"), ("neighbours", "--")):
        if split in until["baseline"]:
            ax.plot(steps, [c["scores"][split]["mean"] for c in checks], color=NEUTRAL, linestyle=style,
                    linewidth=1.6, label=f"{split} (mean)")
    kept = next(c for c in checks if c["step"] == until["step"])
    ax.plot([until["step"]], [kept["scores"]["forget"]["mean"]], marker="o", markersize=12, fillstyle="none",
            color=GOOD if until["met"] else BAD, linestyle="none", label="kept")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy on the probe facts")
    ax.legend(fontsize=7, frameon=False, ncol=2)
    return png(fig)


def loss_curves(histories: dict[str, list[dict[str, float]]]) -> bytes:
    """Training loss per step, one line per run."""
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    _style(ax)
    for i, (label, history) in enumerate(histories.items()):
        steps = [h.get("step", k + 1) for k, h in enumerate(history)]
        ax.plot(steps, [h.get("loss", float("nan")) for h in history], color=CYCLE[i % len(CYCLE)], label=label,
                linewidth=1.6)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if len(histories) > 1:
        ax.legend(fontsize=8, frameon=False)
    return png(fig)
