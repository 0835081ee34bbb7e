"""Rich tables of forget cards, side by side (one column per model)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from obliviate.card import Card
from obliviate.data.forms import FORMS

console = Console()


def _cell(value: float | None, good_high: bool | None) -> str:
    if value is None:
        return "[dim]–[/dim]"
    text = f"{value:.2f}"
    if good_high is None:
        return text
    good = value >= 0.5 if good_high else value < 0.5
    return f"[green]{text}[/green]" if good else f"[red]{text}[/red]"


def forms_table(cards: dict[str, Card], stat: str = "accuracy", title: str | None = None) -> Table:
    """Per-split, per-form `stat` (accuracy / probability / rouge_l) for each labelled card.

    Forget rows are green when low, other splits when high.
    """
    table = Table(title=title or f"forget card — {stat} per form", show_lines=False)
    table.add_column("split")
    table.add_column("form")
    for label in cards:
        table.add_column(label, justify="right")
    splits = []
    for card in cards.values():
        for split in card.value("forms") or {}:
            if split not in splits:
                splits.append(split)
    for split in splits:
        for form in FORMS:
            values = [c.value("forms", split, form, stat) for c in cards.values()]
            if all(v is None for v in values):
                continue
            table.add_row(split, form, *(_cell(v, split != "forget") for v in values))
        table.add_section()
    return table


def print_cards(cards: dict[str, Card], stat: str = "accuracy") -> None:
    console.print(forms_table(cards, stat))
