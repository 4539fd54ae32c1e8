"""Compare 2 to 5 runs: overlaid loss and held-out loss curves, a metrics table with the best value marked,
each version's quality verdict against its base model side by side, the settings that differ, and "New run
with these settings".

The run files behind it (metrics, events, configs, quality.json) are read on the shared background worker
(studio.gui.tasks), never on the GUI thread: the view says "Loading…" until they are in.

Signals:
    newRunRequested(object): a TrainConfig dict to start a new run from (the main window opens the wizard).
    backRequested(): the user wants to go back to the list.
    loaded(): the runs' files were read and shown (or why they could not be is shown).
"""

from __future__ import annotations

from typing import cast

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.engine.config import TrainConfig
from studio.engine.library.compare import Axis, Comparison, compare_runs, run_label
from studio.engine.library.quality import MetricScore, QualityReport, load_report
from studio.engine.runs.registry import RunRecord
from studio.gui.help import help_button
from studio.gui.tasks import TaskRunner, TaskState
from studio.gui.theme import colors
from studio.gui.widgets import Banner, wrapped_label

RUN_COLORS = ((31, 111, 235), (207, 34, 46), (26, 127, 55), (130, 80, 223), (191, 135, 0))
AXES: dict[str, Axis] = {"By step": "step", "By tokens seen": "tokens"}


def _quality_value(metric: MetricScore) -> str:
    def shown(value: float) -> str:
        return f"{value:.0%}" if metric.key in {"exact_match", "tests_passed"} else f"{value:.4g}"

    return f"{shown(metric.base)} → {shown(metric.tuned)}"


def quality_rows(reports: dict[str, QualityReport | None]) -> list[tuple[str, dict[str, str]]]:
    """The quality check of each run as table rows (label, run id -> text): the verdict, then every measure as
    "base → tuned", then the judge's opinion; a run never checked says so."""
    rows: list[tuple[str, dict[str, str]]] = [
        ("Verdict", {rid: r.verdict if r else "Not checked yet" for rid, r in reports.items()})]
    labels: list[str] = []
    for report in reports.values():
        labels += [m.label for m in _metrics_of(report) if m.label not in labels]
    for label in labels:
        rows.append((f"{label} (base → tuned)", {
            rid: next((_quality_value(m) for m in _metrics_of(r) if m.label == label), "–")
            for rid, r in reports.items()}))
    if any(r is not None and r.judge is not None for r in reports.values()):
        rows.append(("Judge", {rid: r.judge.sentence if r and r.judge else "–" for rid, r in reports.items()}))
    return rows


def _metrics_of(report: QualityReport | None) -> list[MetricScore]:
    """A report's measures; an older report has only loss and perplexity."""
    if report is None:
        return []
    if report.metrics:
        return list(report.metrics)
    if report.base and report.tuned:
        return [MetricScore("loss", "held-out loss", report.base.loss, report.tuned.loss, False, 0),
                MetricScore("perplexity", "perplexity", report.base.perplexity, report.tuned.perplexity, False, 0)]
    return []


def _cell(value: float | None, key: str) -> str:
    if value is None:
        return "–"
    if key == "peak_memory":
        from studio.engine.library.disk import format_bytes

        return format_bytes(value)
    if float(value).is_integer() and abs(value) >= 1:
        return f"{int(value):,}"
    return f"{value:.4g}"


def read_comparison(runs: list[RunRecord], axis: Axis) -> tuple[Comparison, dict[str, QualityReport | None]]:
    """Everything the view shows, read from the run folders (on the worker thread)."""
    comparison = compare_runs(runs, axis)
    return comparison, {run.id: load_report(run.run_dir) for run in comparison.runs}


class CompareView(QWidget):
    newRunRequested = Signal(object)  # noqa: N815 - Qt signal naming
    backRequested = Signal()  # noqa: N815
    loaded = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.comparison: Comparison | None = None
        self._runs: list[RunRecord] = []
        self.loader = TaskRunner(self)  # reads the run files in the background
        self.loader.finished.connect(self._on_loaded)
        self.loader.failed.connect(self._on_load_failed)
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.back_button = QPushButton("← Library")
        self.back_button.clicked.connect(self.backRequested)
        self.title = QLabel("Compare runs")
        self.title.setObjectName("pageTitle")
        self.axis = QComboBox()
        self.axis.addItems(list(AXES))
        self.axis.setAccessibleName("Align curves")
        self.axis.currentIndexChanged.connect(self._redraw)
        top.addWidget(self.back_button)
        top.addWidget(self.title, 1)
        top.addWidget(help_button("compare", "comparing runs"))
        top.addWidget(QLabel("Align curves:"))
        top.addWidget(self.axis)
        layout.addLayout(top)
        self.banner = Banner()
        layout.addWidget(self.banner)

        self.plot = pg.PlotWidget(background=None)
        self.plot.setMinimumHeight(220)
        item = self.plot.getPlotItem()
        item.setTitle("Loss (solid: training, dashed with dots: held-out)", size="10pt")
        item.setLabel("left", "loss")
        item.showGrid(x=True, y=True, alpha=0.15)
        item.addLegend(offset=(-10, 10), labelTextSize="8pt")
        item.setMenuEnabled(False)

        self.metrics = QTableWidget()
        self.metrics.setTabKeyNavigation(False)  # Tab moves on; arrows move in the table
        self.metrics.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.metrics.setAccessibleName("Results")
        self.diff = QTableWidget()
        self.diff.setTabKeyNavigation(False)  # Tab moves on; arrows move in the table
        self.diff.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.diff.setAccessibleName("Settings that differ")
        self.same_settings = wrapped_label("", name="muted")
        self.quality = QTableWidget()
        self.quality.setTabKeyNavigation(False)  # Tab moves on; arrows move in the table
        self.quality.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.quality.setAccessibleName("Quality check of each version")
        self.quality.setWordWrap(True)
        self.quality.setToolTip("Each version checked against its own base model on held-out examples it never "
                                "trained on (run the check from the library or after training).")

        tables = QWidget()
        tables_layout = QHBoxLayout(tables)
        tables_layout.setContentsMargins(0, 0, 0, 0)
        left, right = QVBoxLayout(), QVBoxLayout()
        left.addWidget(QLabel("<b>Results</b> (best value highlighted)"))
        left.addWidget(self.metrics)
        right.addWidget(QLabel("<b>Settings that differ</b>"))
        right.addWidget(self.diff)
        right.addWidget(self.same_settings)
        tables_layout.addLayout(left, 3)
        tables_layout.addLayout(right, 2)
        quality = QWidget()
        quality_layout = QVBoxLayout(quality)
        quality_layout.setContentsMargins(0, 0, 0, 0)
        quality_layout.addWidget(QLabel("<b>Quality check</b> (each version against its base model)"))
        quality_layout.addWidget(self.quality)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.plot)
        splitter.addWidget(tables)
        splitter.addWidget(quality)
        splitter.setSizes([260, 220, 180])
        layout.addWidget(splitter, 1)

        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(QLabel("Settings of:"))
        self.source = QComboBox()
        self.source.setAccessibleName("Run whose settings to reuse")
        bottom.addWidget(self.source)
        self.new_run_button = QPushButton("New run with these settings")
        self.new_run_button.clicked.connect(self._new_run)
        bottom.addWidget(self.new_run_button)
        layout.addLayout(bottom)

    def set_runs(self, runs: list[RunRecord]) -> None:
        """Show the comparison of `runs` (2 to 5); a wrong count is explained in the banner."""
        self._runs = list(runs)
        self.source.clear()
        self.source.addItems([run_label(run) for run in self._runs])
        self.title.setText("Compare " + ", ".join(run_label(run) for run in self._runs))
        self._redraw()

    @property
    def loading(self) -> bool:
        return self.loader.busy

    def _redraw(self) -> None:
        """Read the runs' files again (for these runs, aligned as chosen) in the background; meanwhile the
        view says it is loading and offers nothing that needs them."""
        self.plot.getPlotItem().clear()
        self.metrics.clear()
        self.diff.clear()
        self.quality.clear()
        self.same_settings.setText("")
        self.new_run_button.setEnabled(False)
        self.banner.show_message("info", "Loading…", "Reading the runs' results and settings.")
        runs, axis = list(self._runs), AXES[self.axis.currentText()]

        def read(_state: TaskState) -> tuple[Comparison, dict[str, QualityReport | None]]:
            return read_comparison(runs, axis)

        self.loader.start(read, "reading the runs to compare")

    def _on_loaded(self, result: object) -> None:
        comparison, reports = cast(tuple[Comparison, dict[str, QualityReport | None]], result)
        self.comparison = comparison
        self.banner.hide()
        self.new_run_button.setEnabled(True)
        self._draw_curves(comparison)
        self._fill_metrics(comparison)
        self._fill_diff(comparison)
        self._fill_quality(comparison, reports)
        self.loaded.emit()

    def _on_load_failed(self, error: object) -> None:
        self.comparison = None
        self.banner.show_error(error)
        self.new_run_button.setEnabled(False)
        self.loaded.emit()

    def shutdown(self) -> None:
        """Stop a read still running and wait for the worker; call before the view goes away."""
        self.loader.shutdown()

    def _draw_curves(self, comparison: Comparison) -> None:
        item = self.plot.getPlotItem()
        item.setLabel("bottom", "step" if comparison.axis == "step" else "tokens seen")
        for index, curves in enumerate(comparison.curves):
            color = RUN_COLORS[index % len(RUN_COLORS)]
            if curves.loss:
                xs, ys = zip(*curves.loss, strict=True)
                line = item.plot(list(xs), list(ys), name=f"{curves.label} training",
                                 pen=pg.mkPen(color, width=1))
                line.setDownsampling(auto=True, method="peak")
                line.setClipToView(True)
            if curves.eval_loss:
                xs, ys = zip(*curves.eval_loss, strict=True)
                item.plot(list(xs), list(ys), name=f"{curves.label} held-out",
                          pen=pg.mkPen(color, width=1, style=Qt.PenStyle.DashLine),
                          symbol="o", symbolSize=6, symbolBrush=color, symbolPen=None)

    def _fill_metrics(self, comparison: Comparison) -> None:
        table = comparison.metrics
        shown = [m for m in table.metrics if any(v is not None for v in table.values[m.key].values())]
        self.metrics.clear()
        self.metrics.setRowCount(len(shown))
        self.metrics.setColumnCount(len(comparison.runs))
        self.metrics.setHorizontalHeaderLabels([run_label(run) for run in comparison.runs])
        self.metrics.setVerticalHeaderLabels([m.label for m in shown])
        best_brush = QBrush(QColor(colors().trained))
        bold = QFont()
        bold.setBold(True)
        for row, metric in enumerate(shown):
            for column, run in enumerate(comparison.runs):
                best = run.id in table.best[metric.key]
                text = _cell(table.values[metric.key][run.id], metric.key)
                cell = QTableWidgetItem(f"★ {text}" if best else text)
                cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if best:
                    cell.setBackground(best_brush)
                    cell.setFont(bold)
                    cell.setToolTip(f"Best {metric.label.lower()} ({metric.better} is better)")
                self.metrics.setItem(row, column, cell)
        self.metrics.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)

    def _fill_diff(self, comparison: Comparison) -> None:
        rows = comparison.config_diff
        self.diff.clear()
        self.diff.setRowCount(len(rows))
        self.diff.setColumnCount(len(comparison.runs))
        self.diff.setHorizontalHeaderLabels([run_label(run) for run in comparison.runs])
        self.diff.setVerticalHeaderLabels([row.field for row in rows])
        for index, row in enumerate(rows):
            field = TrainConfig.model_fields.get(row.field)
            if field is not None and field.description:
                self.diff.verticalHeaderItem(index).setToolTip(field.description)
        for r, row in enumerate(rows):
            for c, run in enumerate(comparison.runs):
                value = row.values[run.id]
                self.diff.setItem(r, c, QTableWidgetItem("–" if value is None else str(value)))
        self.diff.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.diff.setVisible(bool(rows))
        self.same_settings.setText("" if rows else "All runs used the same settings.")

    def _fill_quality(self, comparison: Comparison, reports: dict[str, QualityReport | None]) -> None:
        rows = quality_rows(reports)
        self.quality.clear()
        self.quality.setRowCount(len(rows))
        self.quality.setColumnCount(len(comparison.runs))
        self.quality.setHorizontalHeaderLabels([run_label(run) for run in comparison.runs])
        self.quality.setVerticalHeaderLabels([label for label, _values in rows])
        for r, (_label, values) in enumerate(rows):
            for c, run in enumerate(comparison.runs):
                cell = QTableWidgetItem(values[run.id])
                cell.setToolTip(values[run.id])
                self.quality.setItem(r, c, cell)
        self.quality.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.quality.resizeRowsToContents()

    def _new_run(self) -> None:
        index = self.source.currentIndex()
        if 0 <= index < len(self._runs):
            self.newRunRequested.emit(dict(self._runs[index].config))
