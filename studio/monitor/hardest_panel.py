""""Hardest examples so far" on the dashboard: after each evaluation, the held-out examples the model fits
worst (the worker's `hardest` events). A row far above the others while the rest improve is often mislabeled
or broken, and it is cheaper to notice that during training than after it.

Filled from history too (a run rebuilt from its record shows its last list); hidden until the first list.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.engine.events import HardestExamples
from studio.gui.previews import without_shared_start
from studio.gui.tables import fit_rows
from studio.gui.widgets import wrapped_label

COLUMNS = ("Loss", "Tokens", "Example")
SPLIT_WORDS = {"eval": "held-out", "train": "training"}
ROWS_SHOWN = 3  # beside the progress ring, no taller than it; the table scrolls for the rest


class HardestPanel(QGroupBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Hardest examples so far", parent)
        self.step: int | None = None
        layout = QVBoxLayout(self)
        self.caption = wrapped_label(name="muted")
        layout.addWidget(self.caption)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setTabKeyNavigation(False)  # Tab moves on to the next control; arrows move in it
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.setAccessibleName("Hardest examples so far")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.table)
        self.hide()

    def show_examples(self, event: HardestExamples) -> None:
        """The latest list replaces the previous one: the model has changed since."""
        self.step = event.step
        split = SPLIT_WORDS.get(event.split, event.split)
        self.caption.setText(f"Step {event.step:,}: the {len(event.examples)} {split} examples the model fits "
                             "worst. One far above the rest is often mislabeled or broken.")
        self.setToolTip("After training, “Hardest examples…” in the runs library lists every example with its "
                        "loss and trains the next version without the ones you pick.")
        self.table.setRowCount(len(event.examples))
        previews = without_shared_start([str(example.get("preview", "")) for example in event.examples])
        for row, (example, text) in enumerate(zip(event.examples, previews, strict=True)):
            loss = example.get("loss")
            cells = (f"{loss:.4f}" if isinstance(loss, int | float) else "–", str(example.get("tokens", "–")), text)
            for column, cell in enumerate(cells):
                item = QTableWidgetItem(cell)
                if column < 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                else:
                    item.setToolTip(str(example.get("preview", "")))
                self.table.setItem(row, column, item)
        fit_rows(self.table, len(event.examples), ROWS_SHOWN)
        self.setVisible(bool(event.examples))

    def clear(self) -> None:
        self.step = None
        self.table.setRowCount(0)
        self.hide()
