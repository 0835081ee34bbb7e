"""Rich tables of forget cards, side by side (one column per model)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from obliviate.card import Card
from obliviate.data.forms import FORMS

console = Console()


def _cell(row: dict | None, good_high: bool | None, stat: str) -> str:
    """'0.25 [0.09–0.53]' coloured by whether the value is good news on its split."""
    if not row or row.get(stat) is None:
        return "[dim]–[/dim]"
    value, ci = row[stat], row.get(f"{stat}_ci")
    text = f"{value:.2f}" + (f" [dim][{ci[0]:.2f}–{ci[1]:.2f}][/dim]" if ci else "")
    if good_high is None:
        return text
    good = value >= 0.5 if good_high else value < 0.5
    return f"[green]{text}[/green]" if good else f"[red]{text}[/red]"


def forms_table(cards: dict[str, Card], stat: str = "accuracy", title: str | None = None) -> Table:
    """Per-split, per-form `stat` (accuracy / probability / rouge_l) with its 95 % interval for each labelled card,
    and the number of facts. Forget rows are green when low, other splits when high; holdout (the control) plain.
    """
    table = Table(title=title or f"forget card — {stat} per form [95 % interval]", show_lines=False)
    table.add_column("split")
    table.add_column("form")
    for label in cards:
        table.add_column(label, justify="right")
    table.add_column("n", justify="right")
    splits = []
    for card in cards.values():
        for split in card.value("forms") or {}:
            if split not in splits:
                splits.append(split)
    for split in splits:
        for form in FORMS:
            rows = [c.value("forms", split, form) for c in cards.values()]
            if all(r is None for r in rows):
                continue
            good_high = None if split == "holdout" else split != "forget"
            n = max((r.get("n", 0) for r in rows if r), default=0)
            table.add_row(split, form, *(_cell(r, good_high, stat) for r in rows), str(n))
        table.add_section()
    return table


def print_cards(cards: dict[str, Card], stat: str = "accuracy") -> None:
    console.print(forms_table(cards, stat))
    for label, card in cards.items():
        for note in card.config.get("notes", []):
            console.print(f"[dim]{label}: {note}[/dim]")
