"""The first-run tour: an overlay that dims the window, rings one control at a time and explains it in a
callout with Back, Skip and Next.

The stops' words are in resources/help/tour.yaml; which control each stop points at is the main window's
business (it knows its sections), given as a function per stop id that brings the control on screen and
returns it. The tour is shown once (remembered in the app settings, `TOUR_SEEN`) and replayed from Help.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import yaml
from PySide6.QtCore import QCoreApplication, QEvent, QObject, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from studio.gui import app_settings
from studio.gui.help import help_dir
from studio.gui.theme import colors
from studio.gui.widgets import wrapped_label

TOUR_SEEN = "tour_seen"
RING_MARGIN = 6  # pixels of dim-free space around the control
CALLOUT_WIDTH = 360
GAP = 14  # between the ring and the callout


@dataclass(frozen=True)
class TourStop:
    """One stop: what it says, and the control it points at (found when the stop is reached)."""

    id: str
    title: str
    text: str
    target: Callable[[], QWidget | tuple[QWidget, QRect] | None]


def tour_texts() -> list[dict[str, str]]:
    """The stops' ids, titles and texts, in order."""
    data = yaml.safe_load((help_dir() / "tour.yaml").read_text(encoding="utf-8"))
    return [{"id": str(s["id"]), "title": str(s["title"]), "text": " ".join(str(s["text"]).split())}
            for s in data["stops"]]


def build_stops(
    targets: Mapping[str, Callable[[], QWidget | tuple[QWidget, QRect] | None]],
) -> list[TourStop]:
    """The tour's stops with their targets; a stop the window has no target for is left out."""
    return [TourStop(s["id"], s["title"], s["text"], targets[s["id"]]) for s in tour_texts() if s["id"] in targets]


def tour_seen() -> bool:
    return bool(app_settings.load().get(TOUR_SEEN, False))


def mark_tour_seen() -> None:
    app_settings.update(**{TOUR_SEEN: True})


class TourOverlay(QWidget):
    """Covers its parent window: dims everything but the current stop's control, with the callout beside it.

    Signals:
        finished(bool): the tour ended; True when the user went through every stop, False when skipped.
    """

    finished = Signal(bool)

    def __init__(self, window: QWidget, stops: list[TourStop]) -> None:
        super().__init__(window)
        self.host = window
        self.setObjectName("tour")
        self.setAccessibleName("Guided tour")
        self.stops = stops
        self.index = -1
        self.ring = QRect()
        self.callout = QFrame(self)
        self.callout.setObjectName("card")
        self.callout.setAutoFillBackground(True)
        self.callout.setFixedWidth(CALLOUT_WIDTH)
        layout = QVBoxLayout(self.callout)
        layout.setContentsMargins(16, 14, 16, 12)
        self.counter = QLabel()
        self.counter.setObjectName("muted")
        self.title = wrapped_label(name="sectionTitle")
        self.text = wrapped_label()
        self.back_button = QPushButton("Back")
        self.back_button.setAccessibleName("Previous stop of the tour")
        self.skip_button = QPushButton("Skip tour")
        self.skip_button.setToolTip("End the tour now; Help > Take the tour replays it (Esc does the same)")
        self.skip_button.setAccessibleName("Skip the tour")
        self.next_button = QPushButton("Next")
        self.next_button.setObjectName("primary")
        self.next_button.setDefault(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.skip_button)
        buttons.addStretch(1)
        buttons.addWidget(self.back_button)
        buttons.addWidget(self.next_button)
        for widget in (self.counter, self.title, self.text):
            layout.addWidget(widget)
        layout.addLayout(buttons)
        self.back_button.clicked.connect(lambda: self.go(self.index - 1))
        self.next_button.clicked.connect(self.next)
        self.skip_button.clicked.connect(lambda: self.end(completed=False))
        window.installEventFilter(self)
        self.hide()

    @property
    def stop(self) -> TourStop:
        return self.stops[self.index]

    def start(self) -> None:
        self.setGeometry(self.host.rect())
        self.show()
        self.raise_()
        self.go(0)

    def next(self) -> None:
        if self.index >= len(self.stops) - 1:
            self.end(completed=True)
        else:
            self.go(self.index + 1)

    def go(self, index: int) -> None:
        """Bring stop `index`'s control on screen, ring it and explain it."""
        if not 0 <= index < len(self.stops):
            return
        self.index = index
        stop = self.stop
        self.counter.setText(f"Tour · {index + 1} of {len(self.stops)}")
        self.title.setText(stop.title)
        self.text.setText(stop.text)
        self.back_button.setEnabled(index > 0)
        last = index == len(self.stops) - 1
        self.next_button.setText("Done" if last else "Next")
        self.next_button.setAccessibleName("End the tour" if last else "Next stop of the tour")
        self.callout.setAccessibleDescription(f"{stop.title}. {stop.text}")
        self._place()
        self.next_button.setFocus()

    def end(self, completed: bool) -> None:
        self.host.removeEventFilter(self)
        self.hide()
        self.finished.emit(completed)
        self.deleteLater()

    def target_rect(self) -> QRect:
        """Where the current stop's control is, in this overlay's coordinates (empty when it is not shown)."""
        found = self.stop.target()
        for _ in range(3):  # lay out the section the target just brought on screen, so it is measured in place
            QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        if isinstance(found, tuple):
            found = self.stop.target()  # an item's rectangle, measured again after the layout
        widget, rect = found if isinstance(found, tuple) else (found, None)
        if widget is None or not widget.isVisible():
            return QRect()
        window = self.host
        area = rect if rect is not None else widget.rect()
        shown = QRect(widget.mapTo(window, area.topLeft()), area.size())
        parent = widget.parentWidget()
        while parent is not None and parent is not window:  # a chart taller than its scroll area: its shown part
            shown = shown.intersected(QRect(parent.mapTo(window, QPoint(0, 0)), parent.size()))
            parent = parent.parentWidget()
        return shown

    def _place(self) -> None:
        """Ring the target and put the callout below it, else above, else beside it; always inside the window
        (with no target, the callout sits in the middle)."""
        target = self.target_rect()
        ring = target.adjusted(-RING_MARGIN, -RING_MARGIN, RING_MARGIN, RING_MARGIN)
        self.ring = ring.intersected(self.rect().adjusted(2, 2, -2, -2)) if target.isValid() else QRect()
        height = self.callout.heightForWidth(CALLOUT_WIDTH)  # the wrapped text's height at the fixed width
        size = QSize(CALLOUT_WIDTH, height if height > 0 else self.callout.sizeHint().height())
        bounds = self.rect().adjusted(8, 8, -8, -8)
        ring = self.ring
        beside = QPoint(ring.right() + GAP, ring.top()), ring.right() + GAP + size.width() <= bounds.right()
        other_side = QPoint(ring.left() - GAP - size.width(), ring.top()), ring.left() - GAP - size.width() >= 0
        below = QPoint(ring.left(), ring.bottom() + GAP), ring.bottom() + GAP + size.height() <= bounds.bottom()
        above = QPoint(ring.left(), ring.top() - GAP - size.height()), ring.top() - GAP - size.height() >= 0
        # A narrow control (a step, a button) keeps its neighbours in view with the callout beside it.
        order = [beside, other_side, below, above] if ring.width() < self.width() // 3 else \
            [below, above, beside, other_side]
        if not ring.isValid():
            spot = QPoint(bounds.center().x() - size.width() // 2, bounds.center().y() - size.height() // 2)
        else:
            spot = next((point for point, fits in order if fits), below[0])
        spot.setX(max(bounds.left(), min(spot.x(), bounds.right() - size.width())))
        spot.setY(max(bounds.top(), min(spot.y(), bounds.bottom() - size.height())))
        self.callout.setGeometry(QRect(spot, size))
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        shade = QPainterPath()
        shade.addRect(self.rect())
        if self.ring.isValid():
            hole = QPainterPath()
            hole.addRoundedRect(self.ring, 8, 8)
            shade = shade.subtracted(hole)
        painter.fillPath(shade, QColor(0, 0, 0, 120))
        if self.ring.isValid():
            painter.setPen(QPen(QColor(colors().highlight), 3))
            painter.drawRoundedRect(self.ring, 8, 8)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() == Qt.Key.Key_Escape:
            self.end(completed=False)
        elif event.key() == Qt.Key.Key_Right:
            self.next()
        elif event.key() == Qt.Key.Key_Left:
            self.go(self.index - 1)
        else:
            super().keyPressEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        """Follow the window's size, so the ring and the callout stay on their control."""
        if watched is self.host and event.type() == QEvent.Type.Resize and self.index >= 0:
            self.setGeometry(self.host.rect())
            self._place()
        return False
