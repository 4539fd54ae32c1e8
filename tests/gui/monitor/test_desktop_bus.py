"""Taskbar progress and desktop notifications over a real, private D-Bus session bus.

A dbus-daemon of the test's own stands in for the desktop: a notification server on it (the test's, in a
thread) records each Notify call, and a listener records the LauncherEntry signals that docks read.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from jeepney import HeaderFields, MatchRule, MessageType, message_bus, new_method_call, new_method_return
from jeepney.io.blocking import DBusConnection, open_dbus_connection

from studio.gui.desktop_bus import LAUNCHER_ENTRY, NOTIFICATIONS, DesktopBus
from studio.monitor.notifications import NotificationSettings, Notifier
from studio.monitor.state import RunState, RunStatus


@pytest.fixture
def session_bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon is not installed (scripts/setup.sh installs it on Debian and Ubuntu)")
    daemon = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--nopidfile", f"--address=unix:path={tmp_path / 'bus'}",
         "--print-address=1"],
        stdout=subprocess.PIPE, text=True,
    )
    assert daemon.stdout is not None
    address = daemon.stdout.readline().strip()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
    yield address
    daemon.terminate()
    daemon.wait(timeout=10)


class NotificationServer(threading.Thread):
    """The desktop's notification service, as far as Studio sees it: owns the name, answers Notify."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.connection = open_dbus_connection(bus="SESSION")
        owned = self.connection.send_and_get_reply(
            new_method_call(message_bus, "RequestName", "su", (NOTIFICATIONS, 0)), timeout=5
        )
        assert owned.body == (1,)  # primary owner
        self.calls: list[tuple] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                message = self.connection.receive(timeout=0.1)
            except TimeoutError:
                continue
            fields = message.header.fields
            if message.header.message_type == MessageType.method_call and fields.get(HeaderFields.member) == "Notify":
                self.calls.append(message.body)
                self.connection.send(new_method_return(message, "u", (len(self.calls),)))


@pytest.fixture
def server(session_bus: str) -> Iterator[NotificationServer]:
    running = NotificationServer()
    running.start()
    yield running
    running.stop.set()
    running.join(timeout=5)
    running.connection.close()


@pytest.fixture
def dock(session_bus: str) -> Iterator[DBusConnection]:
    """A dock's view of the bus: it receives every LauncherEntry signal."""
    connection = open_dbus_connection(bus="SESSION")
    rule = MatchRule(type="signal", interface=LAUNCHER_ENTRY)
    connection.send_and_get_reply(new_method_call(message_bus, "AddMatch", "s", (rule.serialise(),)), timeout=5)
    yield connection
    connection.close()


def _updates(dock: DBusConnection, count: int) -> list[tuple[str, dict]]:
    received = []
    while len(received) < count:
        message = dock.receive(timeout=5)
        if message.header.fields.get(HeaderFields.member) == "Update":
            received.append(message.body)
    return received


def _state(fraction_step: int, status: RunStatus = RunStatus.RUNNING) -> RunState:
    state = RunState(run_id="r1")
    state.status, state.step, state.total_steps = status, fraction_step, 100
    return state


def test_milestones_go_to_the_desktops_notification_service(qtbot, server):
    notifier = Notifier(NotificationSettings())
    notifier.begin(_state(0))
    notifier.observe(_state(30))
    notifier.error(type("Failed", (), {"message": "The model ran out of memory."})())
    qtbot.waitUntil(lambda: len(server.calls) == 2, timeout=5000)
    app, replaces, _icon, title, body, actions, hints, timeout = server.calls[0]
    assert (app, replaces, title, body) == ("Studio", 0, "Training 25% done", "Step 30 of 100.")
    assert actions == [] and timeout == -1 and hints["urgency"] == ("y", 1)
    assert server.calls[1][3] == "Training failed" and server.calls[1][6]["urgency"] == ("y", 2)
    notifier.close()


def test_studios_own_do_not_disturb_sends_nothing(qtbot, server):
    notifier = Notifier(NotificationSettings(do_not_disturb=True))
    notifier.begin(_state(0))
    notifier.observe(_state(60))
    assert DesktopBus().notify("A probe", "Sent after the silenced ones.")
    qtbot.waitUntil(lambda: len(server.calls) == 1, timeout=5000)
    assert server.calls[0][3] == "A probe"  # the milestones at 25% and 50% never reached the desktop
    notifier.close()


def test_the_taskbar_shows_the_runs_progress_and_hides_it_at_the_end(dock):
    notifier = Notifier(NotificationSettings(do_not_disturb=True))
    notifier.begin(_state(40))
    notifier.observe(_state(100, RunStatus.COMPLETED))
    (uri, shown), (_uri, hidden) = _updates(dock, 2)
    assert uri == "application://studio.desktop"
    assert shown == {"progress-visible": ("b", True), "progress": ("d", 0.4)}
    assert hidden == {"progress-visible": ("b", False)}
    notifier.close()


def test_without_a_notification_server_the_tray_is_used_quietly(session_bus):
    bus = DesktopBus()
    assert bus.notify("Nobody listens", "There is no notification server on this bus.") is False
    assert bus.set_progress(0.5) is True  # a signal needs no listener
    bus.close()


def test_without_a_session_bus_everything_is_a_quiet_no_op(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'nothing-here'}")
    bus = DesktopBus()
    assert bus.notify("Title", "Message") is False and bus.set_progress(0.3) is False
    assert bus.set_urgent(True) is False
    notifier = Notifier(NotificationSettings(), bus=bus)
    with qtbot.waitSignal(notifier.notified, timeout=2000) as shown:
        notifier.notify("Training finished", "Your model is ready.")
    assert shown.args == ["Training finished", "Your model is ready."]
    notifier.close()
