"""First-run path in a handful of clicks, and on every page at 1280x800: names for every control a
keyboard can reach, and no label or button whose text is cut off.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from studio.engine.config import TrainConfig
from tests.gui.layout_checks import layout_problems as _problems


@pytest.mark.slow
def test_first_run_reaches_launch_in_five_clicks_with_clean_pages(qtbot, make_wizard, builtin_model_dir):
    wizard = make_wizard()
    clicks = 0

    def click(button) -> None:
        nonlocal clicks
        qtbot.waitUntil(button.isEnabled, timeout=120_000)
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        clicks += 1

    assert _problems(wizard) == []
    click(wizard.onboarding.quick)
    seen = []
    with qtbot.waitSignal(wizard.launchRequested, timeout=300_000) as launched:
        while not launched.signal_triggered and clicks < 8:
            qtbot.waitUntil(wizard.next_button.isEnabled, timeout=120_000)
            qtbot.wait(50)  # let layouts settle before measuring
            seen.append((wizard.index, _problems(wizard)))
            click(wizard.next_button)
    assert clicks == 5
    assert [index for index, _ in seen] == [1, 2, 3, 4]
    assert all(problems == [] for _, problems in seen), seen
    assert isinstance(launched.args[0], TrainConfig)


def test_the_checks_catch_cut_text_and_nameless_controls(qtbot):
    from PySide6.QtWidgets import QLineEdit, QVBoxLayout

    root = QWidget()
    qtbot.addWidget(root)
    layout = QVBoxLayout(root)
    label = QLabel("A long sentence that cannot possibly fit in twenty pixels")
    label.setFixedWidth(20)
    layout.addWidget(label)
    layout.addWidget(QLineEdit())
    root.show()
    problems = _problems(root)
    assert any(p.startswith("cut label") for p in problems)
    assert any(p.startswith("no accessible name: QLineEdit") for p in problems)
