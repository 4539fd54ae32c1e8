"""Sizing for the short tables that sit among other content (the queue, the schedules, the hardest examples
on the dashboard): as tall as their rows, so a short list leaves no empty space under it."""

from __future__ import annotations

from PySide6.QtWidgets import QTableView


def fit_rows(table: QTableView, rows: int, most: int) -> None:
    """Exactly as tall as `rows` rows (at least one, at most `most`; the table scrolls beyond that)."""
    shown = min(max(rows, 1), most)
    table.setFixedHeight(table.horizontalHeader().sizeHint().height()
                         + shown * table.verticalHeader().defaultSectionSize() + 2 * table.frameWidth())
