"""`studio --smoke-test`: open the main window the way `studio` does, wait until it is on screen, and quit.

Proves that a build (above all the frozen bundle) has everything the GUI needs: Qt plugins, resources,
icons. The exit code is 0 only when the window was really shown.
"""

from __future__ import annotations

SMOKE_FLAG = "--smoke-test"
SHOW_TIMEOUT_MS = 20_000
POLL_MS = 100


def run_smoke_test() -> int:
    from PySide6.QtCore import QTimer

    from studio.app import MainWindow, create_app

    app = create_app([])
    window = MainWindow()
    window.show()
    window.wizard.start()
    polls: list[bool] = []

    def check() -> None:
        handle = window.windowHandle()
        polls.append(window.isVisible() and handle is not None and handle.isExposed())
        if polls[-1] or len(polls) * POLL_MS >= SHOW_TIMEOUT_MS:
            window.close()
            app.quit()

    timer = QTimer()
    timer.timeout.connect(check)
    timer.start(POLL_MS)
    app.exec()
    timer.stop()
    shown = bool(polls and polls[-1])
    print(f"smoke test: the main window was {'shown' if shown else 'NOT shown'} ({window.windowTitle()!r})")
    return 0 if shown else 1
