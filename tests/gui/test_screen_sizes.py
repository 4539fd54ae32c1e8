"""The window on every screen size: it fits the screen it opens on, and the wizard, the runs library and the
dashboard keep their buttons on screen with no text cut off, from 1024x640 up to a maximized 2560x1440."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRect
from PySide6.QtWidgets import QWidget

from studio.app import PREFERRED_SIZE, TITLE_BAR_PX, fitted_geometry
from tests.gui.layout_checks import layout_problems

SCREENS = [(1366, 768), (1024, 640)]


def test_a_large_screen_gets_the_preferred_size_centred():
    geometry = fitted_geometry(QRect(0, 0, 2560, 1440))
    assert (geometry.width(), geometry.height()) == PREFERRED_SIZE
    assert geometry.center().x() in (1279, 1280)


@pytest.mark.parametrize("screen", SCREENS)
def test_a_small_screen_holds_the_whole_window_with_its_title_bar(screen):
    available = QRect(0, 0, screen[0], screen[1] - 40)  # a panel along one edge
    geometry = fitted_geometry(available)
    assert geometry.left() >= 0 and geometry.right() < screen[0]
    assert geometry.top() - TITLE_BAR_PX >= 0 and geometry.bottom() < available.bottom() + 1


def _on_screen(widget: QWidget, window: QWidget) -> bool:
    corner = widget.mapTo(window, widget.rect().bottomRight())
    return widget.isVisible() and 0 <= corner.x() <= window.width() and 0 <= corner.y() <= window.height()


@pytest.mark.parametrize(("screen", "maximized"), [
    *((screen, False) for screen in SCREENS),
    ((1920, 1080), True),  # a large screen, with the window maximized: nothing stretches out of place
    ((2560, 1440), True),
])
def test_every_section_fits_the_screen(make_window, qtbot, screen, maximized):
    window = make_window(opened=True)
    qtbot.waitUntil(lambda: window.wizard.ready, timeout=60_000)
    geometry = QRect(0, 0, *screen) if maximized else fitted_geometry(QRect(0, 0, *screen))
    window.setGeometry(geometry)
    qtbot.waitUntil(lambda: window.height() == geometry.height() and window.width() == geometry.width(),
                    timeout=5000)

    wizard = window.wizard
    for page in (1, 4):
        wizard.go_to(page)
        qtbot.wait(50)  # let the layout settle before measuring
        for control in (wizard.back_button, wizard.next_button, wizard.message):
            assert _on_screen(control, window), (page, control.objectName() or control.text())
        assert layout_problems(wizard) == [], page

    library = window.show_runs()
    qtbot.wait(50)
    assert _on_screen(library.export_button, window)
    assert layout_problems(library) == []

    dashboard = window.ensure_dashboard()
    window.show_section(dashboard)
    qtbot.wait(50)
    problems = layout_problems(dashboard)
    assert problems == [], "\n".join(problems)
