"""Light and dark themes that follow the system setting, on the Fusion style so both look the same everywhere.

Colours for status (good / caution / problem) come from here too, so badges stay readable in both themes.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication


@dataclass(frozen=True)
class Colors:
    window: str
    base: str
    alt_base: str
    text: str
    muted: str
    button: str
    highlight: str
    highlight_text: str
    border: str
    ok: str
    warn: str
    bad: str
    info: str
    trained: str


LIGHT = Colors(
    window="#f5f6f8",
    base="#ffffff",
    alt_base="#eef0f4",
    text="#1d2025",
    muted="#5b6270",
    button="#e9ebef",
    highlight="#2f6fde",
    highlight_text="#ffffff",
    border="#c9cdd6",
    ok="#1e7b3a",
    warn="#8a5a00",
    bad="#b3261e",
    info="#2f6fde",
    trained="#d7f0dc",
)
DARK = Colors(
    window="#1f2227",
    base="#2a2e35",
    alt_base="#30353d",
    text="#e8eaee",
    muted="#a9b0bd",
    button="#363b44",
    highlight="#5b8def",
    highlight_text="#ffffff",
    border="#4a505b",
    ok="#6fd08c",
    warn="#f2c16b",
    bad="#ff8a80",
    info="#8fb3ff",
    trained="#28482f",
)


_current = {"dark": False}


def is_dark() -> bool:
    return _current["dark"]


def colors() -> Colors:
    return DARK if is_dark() else LIGHT


def apply_theme(app: QApplication) -> None:
    """Follow the system: apply its colour scheme now and again whenever it switches (unknown means light)."""
    app.setStyle("Fusion")
    hints = app.styleHints()
    use_scheme(app, hints.colorScheme())
    hints.colorSchemeChanged.connect(lambda scheme: use_scheme(app, scheme))


def use_scheme(app: QApplication, scheme: Qt.ColorScheme) -> None:
    _current["dark"] = scheme == Qt.ColorScheme.Dark
    _apply(app)


def _apply(app: QApplication) -> None:
    c = colors()
    pal = QPalette()
    roles = {
        QPalette.ColorRole.Window: c.window,
        QPalette.ColorRole.WindowText: c.text,
        QPalette.ColorRole.Base: c.base,
        QPalette.ColorRole.AlternateBase: c.alt_base,
        QPalette.ColorRole.Text: c.text,
        QPalette.ColorRole.Button: c.button,
        QPalette.ColorRole.ButtonText: c.text,
        QPalette.ColorRole.Highlight: c.highlight,
        QPalette.ColorRole.HighlightedText: c.highlight_text,
        QPalette.ColorRole.ToolTipBase: c.base,
        QPalette.ColorRole.ToolTipText: c.text,
        QPalette.ColorRole.PlaceholderText: c.muted,
        QPalette.ColorRole.Link: c.info,
        QPalette.ColorRole.Mid: c.border,
    }
    for role, value in roles.items():
        pal.setColor(role, QColor(value))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor(c.muted))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor(c.muted))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, QColor(c.muted))
    app.setPalette(pal)
    app.setStyleSheet(_stylesheet(c))


def _stylesheet(c: Colors) -> str:
    return f"""
    QFrame#card {{ background: {c.base}; border: 1px solid {c.border}; border-radius: 8px; }}
    QFrame#card[selected="true"] {{ border: 2px solid {c.highlight}; background: {c.alt_base}; }}
    QFrame#card:focus {{ border: 2px dashed {c.highlight}; }}
    QFrame#card[selected="true"]:focus {{ border: 2px solid {c.highlight}; }}
    QLabel#pageTitle {{ font-size: 18pt; font-weight: 600; }}
    QLabel#muted {{ color: {c.muted}; }}
    QPushButton#primary {{ background: {c.highlight}; color: {c.highlight_text};
                           border: 1px solid {c.highlight}; border-radius: 5px; padding: 5px 16px;
                           font-weight: 600; }}
    QPushButton#primary:disabled {{ background: {c.button}; color: {c.muted}; border: 1px solid {c.border}; }}
    QPushButton#primary:focus {{ border: 2px solid {c.text}; }}
    QLabel#blocker {{ color: {c.bad}; font-weight: 600; }}
    QLabel#sectionTitle {{ font-weight: 600; }}
    QLabel#badge_ok {{ color: {c.ok}; border: 1px solid {c.ok}; border-radius: 6px; padding: 1px 6px; }}
    QLabel#badge_warn {{ color: {c.warn}; border: 1px solid {c.warn}; border-radius: 6px; padding: 1px 6px; }}
    QLabel#badge_bad {{ color: {c.bad}; border: 1px solid {c.bad}; border-radius: 6px; padding: 1px 6px; }}
    QLabel#badge_info {{ color: {c.info}; border: 1px solid {c.info}; border-radius: 6px; padding: 1px 6px; }}
    QFrame#banner_bad {{ border: 1px solid {c.bad}; border-radius: 6px; background: {c.base}; }}
    QFrame#banner_warn {{ border: 1px solid {c.warn}; border-radius: 6px; background: {c.base}; }}
    QFrame#banner_info {{ border: 1px solid {c.info}; border-radius: 6px; background: {c.base}; }}
    QFrame#banner_ok {{ border: 1px solid {c.ok}; border-radius: 6px; background: {c.base}; }}
    QFrame#dropZone {{ border: 2px dashed {c.border}; border-radius: 10px; background: {c.base}; }}
    QFrame#dropZone[hover="true"] {{ border: 2px dashed {c.highlight}; }}
    QListWidget#steps {{ background: transparent; border: none; }}
    QListWidget#steps::item {{ padding: 8px 6px; border-radius: 6px; }}
    QListWidget#steps::item:selected {{ background: {c.highlight}; color: {c.highlight_text}; }}
    """
