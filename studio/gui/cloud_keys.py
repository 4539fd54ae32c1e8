"""The Settings dialog's cloud section: the API keys Studio rents GPUs with, kept in the system keyring.

A key is typed once into a password field and checked against the provider in the background (a wrong
key gets the provider's plain refusal, no network the offline message); only a key that worked is saved
(studio.engine.cloud.keys). It is never shown again: the section says "A key is saved" and offers Replace
and Remove. Providers that are decided but not built yet (providers.PLANNED) are listed as not available.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.engine.cloud.providers import PLANNED, PROVIDER_NAMES
from studio.engine.errors import StudioError
from studio.gui.glossary import TermExplainer
from studio.gui.help import set_help_topic
from studio.gui.tasks import TaskRunner, TaskState
from studio.gui.widgets import Banner, wrapped_label

KEY_PAGES = {"runpod": "https://www.runpod.io/console/user/settings",
             "lambda": "https://cloud.lambdalabs.com/api-keys"}
# What else a provider's account needs before Studio can rent from it.
KEY_NOTES = {"lambda": " Lambda also needs one SSH key in your account before it starts a machine: any key of "
                       "yours will do, Studio does not use it."}


def saved_key(provider: str) -> bool:
    """Whether a key for `provider` is in the keyring (the key itself never reaches a widget)."""
    from studio.engine.cloud.keys import KEYRING_USER, keyring_service
    from studio.engine.cloud.providers import provider_name
    from studio.engine.secrets import load_secret

    return load_secret(keyring_service(provider), KEYRING_USER, f"the {provider_name(provider)} API key") is not None


def remove_key(provider: str) -> None:
    """Take the key out of the keyring; nothing to do when there is none."""
    import keyring
    from keyring.errors import KeyringError, PasswordDeleteError

    from studio.engine.cloud.keys import KEYRING_USER, keyring_service
    from studio.engine.cloud.providers import provider_name
    from studio.engine.secrets import keyring_error

    try:
        keyring.delete_password(keyring_service(provider), KEYRING_USER)
    except PasswordDeleteError:
        return
    except KeyringError as exc:
        raise keyring_error(exc, f"the {provider_name(provider)} API key") from None


def _check_and_save(task: TaskState, provider: str, key: str) -> int:
    """Ask the provider for its GPU types with this key (a read: nothing is rented), then keep the key."""
    from studio.engine.cloud.connect import get_provider
    from studio.engine.cloud.keys import save_api_key

    name = PROVIDER_NAMES[provider]
    task.report(f"Asking {name} whether it accepts the key", 0.2)
    found = len(get_provider(provider).gpu_types(key))
    task.check()  # cancelled while the provider answered: keep nothing
    task.report("Saving the key in the system's password store", 0.9)
    save_api_key(provider, key)
    return found


class ProviderKeyRow(QGroupBox):
    """One provider's key: a password field and "Check and save", or "A key is saved" with Replace and Remove.

    Signals:
        keyChanged(str): a key for this provider was saved or removed (its id).
    """

    keyChanged = Signal(str)  # noqa: N815 - Qt signal naming

    def __init__(self, provider: str, parent: QWidget | None = None) -> None:
        name = PROVIDER_NAMES[provider]
        super().__init__(name, parent)
        self.provider, self.name = provider, name
        self.runner = TaskRunner(self)
        layout = QVBoxLayout(self)

        self.saved_row = QWidget()
        saved = QHBoxLayout(self.saved_row)
        saved.setContentsMargins(0, 0, 0, 0)
        self.saved_label = QLabel("A key is saved")
        self.saved_label.setAccessibleName(f"{name} API key")
        self.replace_button = QPushButton("Replace…")
        self.replace_button.setAccessibleName(f"Replace the {name} API key")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setAccessibleName(f"Remove the {name} API key from this computer")
        saved.addWidget(self.saved_label, 1)
        saved.addWidget(self.replace_button)
        saved.addWidget(self.remove_button)
        layout.addWidget(self.saved_row)

        self.entry_row = QWidget()
        entry = QVBoxLayout(self.entry_row)
        entry.setContentsMargins(0, 0, 0, 0)
        page = KEY_PAGES.get(provider, "")
        self.how = QLabel(f"Create an API key in <a href='{page}'>your {name} account settings</a> and paste it "
                          "here. Studio checks it with "
                          f"{name} and keeps it in this computer's password store, never in a file."
                          + KEY_NOTES.get(provider, ""))
        self.how.setTextFormat(Qt.TextFormat.RichText)
        self.how.setWordWrap(True)
        self.how.setOpenExternalLinks(True)
        self.how.setAccessibleName(f"How to get a {name} API key")
        entry.addWidget(self.how)
        fields = QHBoxLayout()
        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("Paste the API key")
        self.key_edit.setAccessibleName(f"{name} API key")
        self.save_button = QPushButton("Check and save")
        self.save_button.setObjectName("primary")
        self.save_button.setAccessibleName(f"Check the {name} API key and save it")
        self.save_button.setEnabled(False)
        self.keep_button = QPushButton("Keep the saved key")
        self.keep_button.setAccessibleName(f"Keep the {name} API key that is saved")
        fields.addWidget(self.key_edit, 1)
        fields.addWidget(self.save_button)
        fields.addWidget(self.keep_button)
        entry.addLayout(fields)
        layout.addWidget(self.entry_row)

        self.progress_row = QWidget()
        progress = QHBoxLayout(self.progress_row)
        progress.setContentsMargins(0, 0, 0, 0)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setAccessibleName(f"Checking the {name} API key")
        self.status = QLabel()
        self.status.setObjectName("muted")
        self.status.setAccessibleName("What Studio is doing")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName(f"Cancel checking the {name} API key")
        progress.addWidget(self.progress, 1)
        progress.addWidget(self.status, 2)
        progress.addWidget(self.cancel_button)
        self.progress_row.hide()
        layout.addWidget(self.progress_row)
        self.banner = Banner()
        layout.addWidget(self.banner)

        self.key_edit.textChanged.connect(lambda text: self.save_button.setEnabled(bool(text.strip())))
        self.key_edit.returnPressed.connect(self.check_and_save)
        self.save_button.clicked.connect(self.check_and_save)
        self.replace_button.clicked.connect(lambda: self._show_entry(replacing=True))
        self.keep_button.clicked.connect(self._show_saved)
        self.remove_button.clicked.connect(self.remove)
        self.cancel_button.clicked.connect(self.runner.cancel)
        self.runner.progressChanged.connect(lambda f: self.progress.setValue(int(f * 1000)))
        self.runner.statusChanged.connect(self.status.setText)
        self.runner.busyChanged.connect(self._on_busy)
        self.runner.finished.connect(self._on_saved)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(self._on_cancelled)
        self.refresh()

    @property
    def has_key(self) -> bool:
        return not self.saved_row.isHidden()

    def refresh(self) -> None:
        """Show what the keyring holds now."""
        try:
            present = saved_key(self.provider)
        except StudioError as exc:  # no usable password store: say so, and let the person try anyway
            self._show_entry(replacing=False)
            self.banner.show_error(exc)
            return
        if present:
            self._show_saved()
        else:
            self._show_entry(replacing=False)

    def _show_saved(self) -> None:
        self.key_edit.clear()
        self.saved_row.show()
        self.entry_row.hide()

    def _show_entry(self, replacing: bool) -> None:
        self.saved_row.setVisible(False)
        self.entry_row.show()
        self.keep_button.setVisible(replacing)
        self.key_edit.setFocus(Qt.FocusReason.OtherFocusReason)

    def check_and_save(self) -> None:
        key = self.key_edit.text().strip()
        if not key or self.runner.busy:
            return
        self.banner.hide()
        self.progress.setValue(0)
        provider = self.provider
        self.runner.start(lambda task: _check_and_save(task, provider, key), f"checking the {self.name} API key")

    def remove(self) -> None:
        try:
            remove_key(self.provider)
        except StudioError as exc:
            self.banner.show_error(exc)
            return
        self._show_entry(replacing=False)
        self.banner.show_message("info", f"The {self.name} API key was removed from this computer.",
                                 f"Studio cannot rent GPUs from {self.name} until you save a key again. Machines "
                                 "already running in your account are not affected.")
        self.keyChanged.emit(self.provider)

    def _on_busy(self, busy: bool) -> None:
        self.progress_row.setVisible(busy)
        for widget in (self.key_edit, self.save_button, self.keep_button):
            widget.setEnabled(not busy and (widget is not self.save_button or bool(self.key_edit.text().strip())))

    def _on_saved(self, gpu_types: Any) -> None:
        self._show_saved()
        self.banner.show_message("ok", f"{self.name} accepted the key, and it is saved.",
                                 f"{self.name} lists {gpu_types} kinds of GPU. The key stays in this computer's "
                                 "password store and is not shown again.")
        self.keyChanged.emit(self.provider)

    def _on_failed(self, error: object) -> None:
        self.banner.show_error(error)  # the key stays in the field (hidden) to try again

    def _on_cancelled(self) -> None:
        self.banner.show_message("info", "Checking the key was cancelled; nothing was saved.")

    def shutdown(self) -> None:
        self.runner.shutdown()


class CloudKeysSection(QWidget):
    """Every provider Studio knows: the ones it rents from with their key, the planned ones as not yet."""

    keyChanged = Signal(str)  # noqa: N815 - Qt signal naming

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(wrapped_label(
            "To train on a rented GPU, Studio needs an API key for your account with the provider. Studio uses it "
            "only to list machines, rent them for your runs and switch them off again.", name="muted"))
        self.rows: dict[str, ProviderKeyRow] = {}
        for provider in PROVIDER_NAMES:
            row = ProviderKeyRow(provider)
            row.keyChanged.connect(self.keyChanged)
            self.rows[provider] = row
            layout.addWidget(row)
        self.planned: dict[str, QLabel] = {}
        for provider, name in PLANNED.items():
            box = QGroupBox(name)
            inner = QVBoxLayout(box)
            label = wrapped_label(f"Not available yet: a later version of Studio rents from {name}.", name="muted")
            label.setAccessibleName(f"{name}: not available yet")
            inner.addWidget(label)
            self.planned[provider] = label
            layout.addWidget(box)
        layout.addStretch(1)

    def shutdown(self) -> None:
        for row in self.rows.values():
            row.shutdown()


class CloudKeysDialog(QDialog):
    """Settings > Cloud GPUs, as a dialog of its own (the review page's "Save a key" opens it too)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings: cloud GPU providers")
        self.setMinimumWidth(620)
        layout = QVBoxLayout(self)
        layout.addWidget(wrapped_label("Cloud GPU providers", name="sectionTitle"))
        self.section = CloudKeysSection()
        layout.addWidget(self.section, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.Close).setAccessibleName("Close the settings")
        layout.addWidget(buttons)
        self.finished.connect(lambda _code: self.section.shutdown())
        set_help_topic(self, "cloud-keys")
        TermExplainer(self).watch(self, self.section.keyChanged)
