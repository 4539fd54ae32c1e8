"""The Linux desktop's own channels, over the D-Bus session bus: taskbar progress and notifications.

Taskbar progress uses the Unity LauncherEntry signal, which KDE's task manager, Dash to Dock, Plank and
other docks read; notifications go to the freedesktop Notifications service, so the desktop's own Do Not
Disturb applies to them. Both are best effort: without a session bus, a dock or a notification server (a
bare X server, macOS, Windows, a test), every call does nothing and says so only in the debug log, and the
caller falls back to the tray icon. jeepney speaks the protocol in pure Python (keyring uses it too); every
call is a short local write, and the only one that waits for an answer is bounded by REPLY_TIMEOUT_S.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jeepney.io.blocking import DBusConnection

log = logging.getLogger(__name__)

DESKTOP_FILE = "studio.desktop"  # packaging/linux/studio.desktop: docks match the progress to its launcher
APP_NAME = "Studio"
NOTIFICATIONS = "org.freedesktop.Notifications"
LAUNCHER_ENTRY = "com.canonical.Unity.LauncherEntry"
REPLY_TIMEOUT_S = 0.5
URGENCY_NORMAL, URGENCY_CRITICAL = 1, 2


class DesktopBus:
    """Taskbar progress and desktop notifications for this app, if the desktop offers them."""

    def __init__(self, desktop_file: str = DESKTOP_FILE) -> None:
        self.app_uri = f"application://{desktop_file}"
        self._connection: DBusConnection | None = None
        self._unavailable = False
        self._last_id = 0

    def set_progress(self, fraction: float | None) -> bool:
        """Show `fraction` (0..1) on the app's taskbar or dock entry; None hides the bar. True when sent."""
        shown = fraction is not None
        properties: dict[str, tuple[str, Any]] = {"progress-visible": ("b", shown)}
        if fraction is not None:
            properties["progress"] = ("d", min(max(float(fraction), 0.0), 1.0))
        return self._signal("Update", properties)

    def set_urgent(self, urgent: bool) -> bool:
        """Ask the dock to draw attention to the app (a run failed or needs a decision)."""
        return self._signal("Update", {"urgent": ("b", urgent)})

    def notify(self, title: str, message: str, critical: bool = False) -> bool:
        """Show a notification through the desktop's notification server; False when there is none, so the
        caller can fall back to the tray. The server decides whether to show it (its Do Not Disturb)."""
        from jeepney import DBusAddress, new_method_call

        connection = self._connect()
        if connection is None or not self._has_owner(connection, NOTIFICATIONS):
            return False
        address = DBusAddress("/org/freedesktop/Notifications", bus_name=NOTIFICATIONS, interface=NOTIFICATIONS)
        hints = {"urgency": ("y", URGENCY_CRITICAL if critical else URGENCY_NORMAL),
                 "desktop-entry": ("s", self.app_uri.removeprefix("application://").removesuffix(".desktop"))}
        call = new_method_call(address, "Notify", "susssasa{sv}i",
                               (APP_NAME, 0, "studio", title, message, [], hints, -1))
        try:
            reply = connection.send_and_get_reply(call, timeout=REPLY_TIMEOUT_S)
        except Exception as exc:  # a desktop service that misbehaves must not break training
            log.debug("desktop notification failed: %s", exc)
            return False
        self._last_id = int(reply.body[0]) if reply.body else 0
        return True

    def close(self) -> None:
        if self._connection is not None:
            self.set_progress(None)
            self._connection.close()
            self._connection = None

    def _signal(self, member: str, properties: dict[str, tuple[str, Any]]) -> bool:
        from jeepney import DBusAddress, new_signal

        connection = self._connect()
        if connection is None:
            return False
        # The object path only has to be unique to this process; docks read the app URI in the body.
        address = DBusAddress(f"/com/canonical/unity/launcherentry/{os.getpid()}", interface=LAUNCHER_ENTRY)
        try:
            connection.send(new_signal(address, member, "sa{sv}", (self.app_uri, properties)))
        except OSError as exc:
            log.debug("taskbar progress failed: %s", exc)
            self._drop()
            return False
        return True

    def _connect(self) -> DBusConnection | None:
        if self._connection is not None or self._unavailable:
            return self._connection
        try:
            from jeepney.io.blocking import open_dbus_connection

            self._connection = open_dbus_connection(bus="SESSION", auth_timeout=REPLY_TIMEOUT_S)
        except Exception as exc:  # no bus, no jeepney, refused: all mean "not on this desktop"
            log.debug("no D-Bus session bus: %s", exc)
            self._unavailable = True
        return self._connection

    def _has_owner(self, connection: DBusConnection, name: str) -> bool:
        from jeepney import message_bus, new_method_call

        try:
            reply = connection.send_and_get_reply(
                new_method_call(message_bus, "NameHasOwner", "s", (name,)), timeout=REPLY_TIMEOUT_S
            )
        except Exception as exc:  # see notify
            log.debug("D-Bus name query failed: %s", exc)
            self._drop()
            return False
        return bool(reply.body and reply.body[0])

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = None
        self._unavailable = True
