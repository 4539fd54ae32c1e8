"""The first-run tour: shown once when Studio first opens (never again, and never unasked in tests), walked
stop by stop with Next, each stop ringing its real control; Skip and Esc end it; Help replays it."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt

from studio.app import open_main_window
from studio.gui import app_settings
from studio.gui.tour import TOUR_SEEN, tour_seen, tour_texts
from studio.wizard.state import WizardState
from studio.wizard.wizard import Wizard


def _ring_holds(tour, widget, window) -> bool:
    """The ring is drawn around the control (within the part of it the window shows)."""
    corner = widget.mapTo(window, widget.rect().topLeft())
    shown = QRect(corner, widget.size()).intersected(window.rect())
    return tour.ring.contains(shown.center()) and tour.ring.intersects(shown)


def test_next_walks_every_stop_onto_its_control_and_done_ends_it(make_window, qtbot, click):
    window = make_window()
    qtbot.waitUntil(lambda: window.isVisible())
    tour = window.start_tour()
    stops = tour_texts()
    assert [stop.id for stop in tour.stops] == [stop["id"] for stop in stops]  # every stop has its control
    seen = []
    for number, stop in enumerate(stops, start=1):
        qtbot.waitUntil(lambda n=number: tour.counter.text() == f"Tour · {n} of {len(stops)}")
        assert tour.title.text() == stop["title"] and tour.text.text() == stop["text"]
        assert window.rect().contains(tour.callout.geometry())  # the callout is never off the window
        assert not tour.callout.geometry().intersects(tour.ring) or tour.ring.height() > window.height() // 3
        seen.append((stop["id"], window.stack.currentWidget()))
        if stop["id"].startswith("step-"):
            row = int(stop["id"][5:]) - 1
            steps = window.wizard.steps
            item = steps.visualItemRect(steps.item(row))
            centre = steps.viewport().mapTo(window, item.center())
            assert tour.ring.contains(centre), stop["id"]
        elif stop["id"] == "chart":
            assert _ring_holds(tour, window.dashboard.charts, window)
        elif stop["id"] == "pause":
            assert _ring_holds(tour, window.dashboard.controls.buttons["pause"], window)
        elif stop["id"] == "export":
            assert _ring_holds(tour, window.library.export_button, window)
        elif stop["id"] == "help":
            assert _ring_holds(tour, window.help_button, window)
        else:
            assert not tour.ring.isValid()  # a stop about nothing in particular sits in the middle
        click(tour.next_button)
    assert tour.next_button.text() == "Done" or not tour.isVisible()
    qtbot.waitUntil(lambda: window.tour is None)
    assert not tour.isVisible()
    assert window.stack.currentWidget() is window.wizard  # back where the tour started
    assert [where for _, where in seen][1] is window.wizard and seen[-2][1] is window.runs
    qtbot.waitUntil(lambda: not window.library.loader.busy, timeout=20_000)


def test_back_returns_and_skip_ends_the_tour_at_once(make_window, qtbot, click):
    window = make_window()
    tour = window.start_tour()
    click(tour.next_button)
    click(tour.next_button)
    assert tour.index == 2
    click(tour.back_button)
    assert tour.index == 1 and tour.title.text() == tour_texts()[1]["title"]
    with qtbot.waitSignal(tour.finished) as ended:
        click(tour.skip_button)
    assert ended.args == [False]
    assert not tour.isVisible() and window.tour is None


def test_escape_skips_the_tour(make_window, qtbot):
    window = make_window()
    tour = window.start_tour()
    with qtbot.waitSignal(tour.finished) as ended:
        qtbot.keyClick(tour, Qt.Key.Key_Escape)
    assert ended.args == [False]


def test_the_tour_shows_once_on_first_start_and_help_replays_it(qtbot, studio_home):
    windows = []
    try:
        assert not tour_seen()
        first = open_main_window(Wizard(WizardState(), autosave=False), first_run_tour=True)
        windows.append(first)
        qtbot.waitUntil(lambda: first.tour is not None and first.tour.isVisible())
        assert app_settings.load()[TOUR_SEEN] is True
        assert (studio_home / app_settings.SETTINGS_FILE).is_file()
        first.tour.end(completed=False)
        qtbot.waitUntil(lambda: first.wizard.ready, timeout=60_000)

        second = open_main_window(Wizard(WizardState(), autosave=False), first_run_tour=True)
        windows.append(second)
        qtbot.wait(100)
        assert second.tour is None  # remembered: not shown again

        replay = next(a for a in second.help_menu.actions() if a.text() == "Take the tour")
        replay.trigger()
        assert second.tour is not None and second.tour.isVisible() and second.tour.index == 0
        second.tour.end(completed=False)
        qtbot.waitUntil(lambda: second.wizard.ready, timeout=60_000)
    finally:
        for window in windows:
            window.close()
            window.deleteLater()


def test_the_tour_never_starts_by_itself_without_being_asked(make_window, qtbot):
    window = make_window(opened=True)
    qtbot.waitUntil(lambda: window.wizard.ready, timeout=60_000)
    qtbot.wait(100)
    assert window.tour is None and not tour_seen()
