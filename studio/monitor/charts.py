"""The dashboard's charts (pyqtgraph), redrawn from MetricBuffers on a timer, never on every event.

A redraw happens at most 20 times a second and only when the buffers changed. Every curve downsamples
automatically, draws only what is in view and uses a 1-pixel pen: that is what keeps a 100,000-point loss
curve interactive. Loss zones are explained in words under the chart, because a novice cannot read colours.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from studio.monitor.buffers import Marker, MetricBuffers, Series

MAX_REDRAWS_PER_S = 20
PROBLEM_FACTOR = 1.5  # loss this far above where it started is a problem

TEXT_COLOR = (60, 66, 72)
ZONE_COLORS = {"healthy": (46, 160, 67, 28), "watch": (210, 153, 34, 34), "problem": (218, 54, 51, 34)}
MARKER_COLORS = {"checkpoint": (56, 132, 244), "anomaly": (218, 54, 51), "recovery": (46, 160, 67)}
CURVE_COLORS = {
    "loss_raw": (120, 144, 170), "loss": (31, 111, 235), "eval_loss": (207, 34, 46), "lr": (130, 80, 223),
    "tokens_per_s": (26, 127, 55), "cpu_percent": (31, 111, 235), "ram_percent": (191, 135, 0),
    "gpu_util_percent": (26, 127, 55), "gpu_mem_percent": (130, 80, 223), "gpu_temp_c": (207, 34, 46),
    "gpu_power_w": (191, 135, 0), "reward_accuracy": (26, 127, 55), "eval_reward_accuracy": (207, 34, 46),
    "reward_margin": (31, 111, 235), "eval_reward_margin": (207, 34, 46),
}
COIN_FLIP = 0.5  # reward accuracy of a model that cannot yet tell the chosen answer from the rejected one

REWARD_LEGEND = (
    "<b>Preference training.</b> <b>Chosen wins</b>: how often the model now prefers the answer you marked "
    "better; 50% is a coin flip, so the line should climb above the dashed one. <b>Margin</b>: by how much "
    "it prefers it; above zero and rising means it is learning your preference."
)

ZONE_LEGEND = (
    "<span style='color:#2ea043'>■</span> <b>Healthy</b>: below where the loss started: the model learns."
    "&nbsp;&nbsp;<span style='color:#d29922'>■</span> <b>Watch</b>: back above its start, keep an eye on it."
    f"&nbsp;&nbsp;<span style='color:#da3633'>■</span> <b>Problem</b>: over {PROBLEM_FACTOR:g}× its start, "
    "training is going wrong."
)


def _curve(plot: pg.PlotItem, key: str, name: str, symbol: str | None = None) -> pg.PlotDataItem:
    """A curve that stays fast at any length: 1-pixel pen, automatic peak downsampling, clipped to view."""
    item = plot.plot([], [], name=name, pen=pg.mkPen(CURVE_COLORS[key], width=1), symbol=symbol,
                     symbolSize=6, symbolBrush=CURVE_COLORS[key] if symbol else None, symbolPen=None)
    item.setDownsampling(auto=True, method="peak")
    item.setClipToView(True)
    return item


def _plot(title: str, y_label: str, x_label: str = "step") -> pg.PlotWidget:
    widget = pg.PlotWidget(background=None)
    widget.setMinimumHeight(150)
    widget.setAccessibleName(f"Chart: {title}")
    plot = widget.getPlotItem()
    plot.setTitle(title, size="10pt", color=TEXT_COLOR)
    for side, label in (("left", y_label), ("bottom", x_label)):
        axis = plot.getAxis(side)
        axis.setTextPen(TEXT_COLOR)
        axis.enableAutoSIPrefix(False)  # "rate (x0.001)" confuses; the numbers say it themselves
        plot.setLabel(side, label, color=TEXT_COLOR)
    # No grid: pyqtgraph paints grid lines through the axes, which made each frame ~4x slower (bench).
    plot.addLegend(offset=(-10, 10), labelTextSize="8pt", labelTextColor=TEXT_COLOR)
    plot.setMenuEnabled(False)
    # pyqtgraph builds its context menus without a parent; give them one so they go with the chart.
    for menu in (plot.ctrlMenu, plot.getViewBox().menu):
        if menu is not None:
            menu.setParent(widget, menu.windowFlags())
    return widget


class _MarkerLayer:
    """Vertical lines for checkpoints, anomalies and recoveries on one plot, added as they appear."""

    def __init__(self, plot: pg.PlotItem, labelled: bool) -> None:
        self._plot = plot
        self._labelled = labelled
        self.lines: list[pg.InfiniteLine] = []

    def clear(self) -> None:
        for line in self.lines:
            self._plot.removeItem(line)
        self.lines.clear()

    def sync(self, markers: list[Marker]) -> None:
        for marker in markers[len(self.lines):]:
            style = Qt.PenStyle.DashLine if marker.kind == "checkpoint" else Qt.PenStyle.SolidLine
            label = marker.label if self._labelled and marker.kind != "checkpoint" else None
            line = pg.InfiniteLine(
                pos=marker.step, angle=90, movable=False, label=label,
                pen=pg.mkPen(MARKER_COLORS[marker.kind], width=1, style=style),
                labelOpts={"position": 0.97, "color": MARKER_COLORS[marker.kind], "anchors": [(0, 0), (0, 0)]},
            )
            line.setToolTip(f"{marker.kind} at step {marker.step:g}: {marker.label}")
            self._plot.addItem(line, ignoreBounds=True)
            self.lines.append(line)


class ChartsPanel(QWidget):
    """Loss (with zones and smoothing), learning rate, throughput and machine charts, and for preference
    training (DPO, ORPO) how often and how strongly the chosen answer wins.

    The plots are deliberately not x-linked: pyqtgraph's view linking makes PySide6 6.12 abort when a
    linked plot is garbage-collected at exit.

    Signals:
        redrawn(): the charts were just redrawn from the buffers.
    """

    redrawn = Signal()

    def __init__(self, buffers: MetricBuffers, show_gpu: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.buffers = buffers
        self.redraw_count = 0
        self._drawn_version = -1
        self._drawn: dict[str, tuple[int, float]] = {}  # curve -> (points, smoothing) last handed to it
        self._zones_for: float | None = None

        self.loss_plot = _plot("Loss: how wrong the model still is (lower is better)", "loss")
        loss = self.loss_plot.getPlotItem()
        self._zones = {
            name: pg.LinearRegionItem((0, 0), orientation="horizontal", movable=False,
                                      brush=pg.mkBrush(color), pen=pg.mkPen(None))
            for name, color in ZONE_COLORS.items()
        }
        for zone in self._zones.values():
            zone.setZValue(-100)
            zone.setVisible(False)
            loss.addItem(zone, ignoreBounds=True)
        self.curves: dict[str, pg.PlotDataItem] = {
            "loss_raw": _curve(loss, "loss_raw", "training loss (raw)"),
            "loss": _curve(loss, "loss", "training loss (smoothed)"),
            "eval_loss": _curve(loss, "eval_loss", "held-out (eval) loss", symbol="o"),
        }
        self.lr_plot = _plot("Learning rate", "rate")
        self.curves["lr"] = _curve(self.lr_plot.getPlotItem(), "lr", "learning rate")
        self.speed_plot = _plot("Speed", "tokens / s")
        self.curves["tokens_per_s"] = _curve(self.speed_plot.getPlotItem(), "tokens_per_s", "tokens / s")
        self.system_plot = _plot("This computer", "% in use", "seconds")
        self.system_plot.setYRange(0, 100)
        system = self.system_plot.getPlotItem()
        self.curves["cpu_percent"] = _curve(system, "cpu_percent", "CPU %")
        self.curves["ram_percent"] = _curve(system, "ram_percent", "RAM %")
        self.gpu_plot: pg.PlotWidget | None = None
        self.power_plot: pg.PlotWidget | None = None
        if show_gpu:
            self.gpu_plot = _plot("GPU", "% / °C", "seconds")
            gpu = self.gpu_plot.getPlotItem()
            self.curves["gpu_util_percent"] = _curve(gpu, "gpu_util_percent", "utilization %")
            self.curves["gpu_mem_percent"] = _curve(gpu, "gpu_mem_percent", "memory %")
            self.curves["gpu_temp_c"] = _curve(gpu, "gpu_temp_c", "temperature °C")
            self.power_plot = _plot("GPU power", "watts", "seconds")
            self.curves["gpu_power_w"] = _curve(self.power_plot.getPlotItem(), "gpu_power_w", "power W")
        self.reward_accuracy_plot = _plot("Chosen wins: how often the better answer is preferred", "share")
        self.reward_accuracy_plot.setYRange(0, 1)
        self.reward_accuracy_plot.setToolTip(
            "Reward accuracy: the share of answer pairs in which the model favours the answer you marked "
            "better. 0.5 is a coin flip; higher is better.")
        accuracy = self.reward_accuracy_plot.getPlotItem()
        accuracy.addItem(pg.InfiniteLine(COIN_FLIP, angle=0, pen=pg.mkPen((120, 120, 120), style=Qt.PenStyle.DashLine)))
        self.curves["reward_accuracy"] = _curve(accuracy, "reward_accuracy", "training pairs")
        self.curves["eval_reward_accuracy"] = _curve(accuracy, "eval_reward_accuracy", "held-out pairs", symbol="o")
        self.reward_margin_plot = _plot("Margin: how strongly the better answer is preferred", "margin")
        self.reward_margin_plot.setToolTip(
            "Reward margin: how much more likely the model finds the better answer than the worse one, in "
            "the preference method's own units. Above zero and rising means it is learning your preference.")
        margin = self.reward_margin_plot.getPlotItem()
        margin.addItem(pg.InfiniteLine(0.0, angle=0, pen=pg.mkPen((120, 120, 120), style=Qt.PenStyle.DashLine)))
        self.curves["reward_margin"] = _curve(margin, "reward_margin", "training pairs")
        self.curves["eval_reward_margin"] = _curve(margin, "eval_reward_margin", "held-out pairs", symbol="o")
        self.reward_legend = QLabel(REWARD_LEGEND)
        self.reward_legend.setWordWrap(True)
        self._reward_widgets = (self.reward_accuracy_plot, self.reward_margin_plot, self.reward_legend)
        for widget in self._reward_widgets:
            widget.setVisible(False)  # until the run reports rewards: an SFT run has none
        self._markers = [_MarkerLayer(loss, labelled=True), _MarkerLayer(self.lr_plot.getPlotItem(), False)]
        # The charts other than loss, each redrawn on its own timer tick (see redraw_if_changed).
        self._groups: list[list[str]] = [
            ["lr"], ["tokens_per_s"], ["cpu_percent", "ram_percent"], ["reward_accuracy", "eval_reward_accuracy"],
            ["reward_margin", "eval_reward_margin"],
        ]
        if show_gpu:
            self._groups += [["gpu_util_percent", "gpu_mem_percent", "gpu_temp_c"], ["gpu_power_w"]]
        self._turn = 0
        self._total_steps = 0

        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(round(buffers.smoothing * 100))
        self.smoothing.setMaximumWidth(180)
        self.smoothing.setAccessibleName("Loss smoothing")
        self.smoothing.setToolTip("How much the training loss curve is smoothed. Raw values stay in grey.")
        self.smoothing.valueChanged.connect(lambda value: self.buffers.set_smoothing(value / 100))
        smoothing_row = QHBoxLayout()
        smoothing_row.addWidget(QLabel("Smoothing"))
        smoothing_row.addWidget(self.smoothing)
        smoothing_row.addStretch(1)
        self.zone_legend = QLabel(ZONE_LEGEND)
        self.zone_legend.setWordWrap(True)
        smoothing_row.addWidget(self.zone_legend, 4)

        grid = QGridLayout()
        grid.addWidget(self.loss_plot, 0, 0, 1, 3)
        grid.addLayout(smoothing_row, 1, 0, 1, 3)  # the zones' explanation sits right under the loss chart
        grid.addWidget(self.lr_plot, 2, 0)
        grid.addWidget(self.speed_plot, 2, 1)
        grid.addWidget(self.system_plot, 2, 2)
        if self.gpu_plot is not None and self.power_plot is not None:
            grid.addWidget(self.gpu_plot, 3, 0, 1, 2)
            grid.addWidget(self.power_plot, 3, 2)
        grid.addWidget(self.reward_accuracy_plot, 4, 0)
        grid.addWidget(self.reward_margin_plot, 4, 1)
        grid.addWidget(self.reward_legend, 4, 2)
        grid.setRowStretch(0, 3)
        for row in (2, 3, 4) if show_gpu else (2, 4):  # no GPU: no empty row of stretch between the charts
            grid.setRowStretch(row, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(grid, 1)

        self._throttle = QTimer(self)
        self._throttle.setInterval(1000 // MAX_REDRAWS_PER_S)
        self._throttle.timeout.connect(self.redraw_if_changed)

    # ---- redraw ------------------------------------------------------------------------------------

    def start(self) -> None:
        self._throttle.start()

    def stop(self) -> None:
        self._throttle.stop()

    def is_active(self) -> bool:
        return self._throttle.isActive()

    def set_total_steps(self, total: int) -> None:
        """Step charts span the whole run from the start: the curve grows into a fixed axis, which reads
        as progress and spares a re-layout of the axes on every step."""
        if total <= 0 or total == self._total_steps:
            return
        self._total_steps = total
        for widget in (self.loss_plot, self.lr_plot, self.speed_plot, self.reward_accuracy_plot,
                       self.reward_margin_plot):
            widget.getPlotItem().setXRange(0, total, padding=0.01)
            if widget is not self.reward_accuracy_plot:  # a share keeps its 0..1 axis, with the coin flip mid-way
                widget.getPlotItem().enableAutoRange(y=True)

    def set_buffers(self, buffers: MetricBuffers) -> None:
        """Show another run: forget what was drawn from the previous one."""
        self.buffers = buffers
        self._drawn_version = -1
        self._drawn.clear()
        self._zones_for = None
        self._total_steps = 0
        for widget in (self.loss_plot, self.lr_plot, self.speed_plot):
            widget.getPlotItem().enableAutoRange()
        for widget in self._reward_widgets:
            widget.setVisible(False)
        for zone in self._zones.values():
            zone.setVisible(False)
        for layer in self._markers:
            layer.clear()

    def redraw_if_changed(self) -> None:
        """One timer tick: the loss chart, plus at most one other chart that is behind.

        Spreading the smaller charts over successive ticks keeps each event-loop pass to about two plot
        repaints instead of five, which is what keeps the window responsive with 100,000-point series.
        """
        stale = [group for group in self._groups if self._behind(group)]
        if self.buffers.version == self._drawn_version and not stale:
            return
        self._draw_loss()
        if stale:
            start = self._turn % len(self._groups)
            order = self._groups[start:] + self._groups[:start]
            group = next(g for g in order if g in stale)
            self._turn = self._groups.index(group) + 1
            self._draw(group)
        self.redraw_count += 1
        self.redrawn.emit()

    def redraw(self) -> None:
        """Everything at once (a run's history just loaded, or a check wants the final picture)."""
        self._draw_loss()
        for group in self._groups:
            self._draw(group)
        self.redraw_count += 1
        self.redrawn.emit()

    def _draw_loss(self) -> None:
        buffers = self.buffers
        self._drawn_version = buffers.version
        self._set("loss_raw", buffers.series["loss"])
        self._set("loss", buffers.smoothed_loss)
        self._set("eval_loss", buffers.series["eval_loss"])
        self._markers[0].sync(buffers.markers)
        self._update_zones(buffers.baseline_loss)

    def _draw(self, group: list[str]) -> None:
        if group[0].startswith("reward") and not self.reward_accuracy_plot.isVisibleTo(self):
            if not self.buffers.has_rewards:
                return
            for widget in self._reward_widgets:
                widget.setVisible(True)
        for key in group:
            self._set(key, self.buffers.series[key])
        if group == ["lr"]:
            self._markers[1].sync(self.buffers.markers)

    def _behind(self, group: list[str]) -> bool:
        if group[0].startswith("reward") and not self.buffers.has_rewards:
            return False  # an SFT run: its preference charts stay hidden and are never stale
        return any(self._drawn.get(key) != (len(self.buffers.series[key]), self.buffers.smoothing)
                   for key in group) or (group == ["lr"] and len(self._markers[1].lines) != len(self.buffers.markers))

    def _set(self, key: str, series: Series) -> None:
        """Series only grow (or, smoothed, change with the slider): an unchanged one is not handed over again."""
        drawn = (len(series), self.buffers.smoothing)
        if self._drawn.get(key) != drawn:
            self._drawn[key] = drawn
            self.curves[key].setData(series.x, series.y)

    def _update_zones(self, baseline: float | None) -> None:
        if baseline is None or baseline == self._zones_for:
            return
        self._zones_for = baseline
        bounds = {"healthy": (0.0, baseline), "watch": (baseline, baseline * PROBLEM_FACTOR),
                  "problem": (baseline * PROBLEM_FACTOR, baseline * 1000)}
        for name, zone in self._zones.items():
            zone.setRegion(bounds[name])
            zone.setVisible(True)
            zone.setToolTip(f"{name}: loss {bounds[name][0]:.3g} to {bounds[name][1]:.3g}")

    def plotted(self, key: str) -> tuple[list[float], list[float]]:
        """The full data of one curve as plotted (before view clipping), for checks and tests."""
        x, y = self.curves[key].getOriginalDataset()
        return ([] if x is None else x.tolist()), ([] if y is None else y.tolist())

    def zone_bounds(self) -> dict[str, tuple[float, float]]:
        return {name: tuple(zone.getRegion()) for name, zone in self._zones.items() if zone.isVisible()}

    def marker_positions(self) -> list[float]:
        return [line.value() for line in self._markers[0].lines]
