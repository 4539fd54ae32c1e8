"""The Quality judge settings: the optional second opinion the automatic quality check can ask for.

Off by default. A judge is a local GGUF file or an OpenAI-compatible endpoint; the screen saves
STUDIO_HOME/judge.json through the engine (studio.engine.library.judge), which puts an API key in the
system's password store, never in that file. Test asks the judge one small question in the background
(studio.gui.tasks), with progress and Cancel, so a wrong address or an unloadable file shows up here in
words instead of as a note in the next quality check.
"""

from __future__ import annotations

from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from studio.engine.errors import StudioError
from studio.engine.library.judge import JudgeSettings, Kind, check_judge, load_settings, save_settings
from studio.gui.glossary import explain_terms
from studio.gui.help import set_help_topic
from studio.gui.tasks import TaskRunner, TaskState
from studio.gui.widgets import Banner, wrapped_label

EXPLANATION = (
    "After training, Studio checks your model on held-out examples it never trained on and says whether it "
    "got better than the base model. A judge is an optional second opinion: a larger language model reads "
    "the base model's and your model's answers to the same request and says which is better. It is off by "
    "default, and the check works without it."
)
OFFLINE_NOTE = (
    "Offline-safe: Studio talks only to the judge you choose here. A local GGUF file runs on this computer; "
    "an endpoint is asked only at the address you enter (a server on this computer, such as llama.cpp's "
    "llama-server or LM Studio, keeps everything local). If the judge cannot be reached, the quality check "
    "says so and goes on without it."
)
KINDS: tuple[tuple[Kind, str], ...] = (
    ("off", "Off (the default)"),
    ("gguf", "A local GGUF file"),
    ("endpoint", "An OpenAI-compatible endpoint"),
)


class JudgeSettingsDialog(QDialog):
    """Choose, test and save the quality judge (Settings ▸ Quality judge… in the main window)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Quality judge")
        self.setMinimumWidth(560)
        set_help_topic(self, "judge")
        self.runner = TaskRunner(self)

        layout = QVBoxLayout(self)
        layout.addWidget(wrapped_label(EXPLANATION))
        layout.addWidget(wrapped_label(OFFLINE_NOTE, name="muted"))

        choice = QGroupBox("Judge")
        choice_box = QVBoxLayout(choice)
        self.kind_group = QButtonGroup(self)
        self.kind_buttons: dict[Kind, QRadioButton] = {}
        for index, (kind, text) in enumerate(KINDS):
            button = QRadioButton(text)
            self.kind_group.addButton(button, index)
            self.kind_buttons[kind] = button
            choice_box.addWidget(button)
        self.kind_group.idToggled.connect(self._kind_toggled)
        layout.addWidget(choice)

        self.gguf_box = QGroupBox("Local GGUF file")
        self.gguf_box.setToolTip("A GGUF model file on this computer, run with llama-cpp-python (install it "
                                 "first: pip install llama-cpp-python).")
        gguf_row = QHBoxLayout(self.gguf_box)
        self.model_path = QLineEdit()
        self.model_path.setAccessibleName("Judge model file")
        self.model_path.setPlaceholderText("A .gguf file, for example a 7B instruct model")
        self.browse_button = QPushButton("Choose…")
        self.browse_button.setAccessibleName("Choose the judge model file")
        self.browse_button.clicked.connect(self._browse)
        gguf_row.addWidget(self.model_path, 1)
        gguf_row.addWidget(self.browse_button)
        layout.addWidget(self.gguf_box)

        self.endpoint_box = QGroupBox("OpenAI-compatible endpoint")
        self.endpoint_box.setToolTip("A server that answers OpenAI-style chat requests (/v1/chat/completions), "
                                     "on this computer or one you trust.")
        form = QFormLayout(self.endpoint_box)
        self.url = QLineEdit()
        self.url.setAccessibleName("Endpoint address")
        self.url.setPlaceholderText("http://127.0.0.1:8080/v1")
        self.model = QLineEdit()
        self.model.setAccessibleName("Model name")
        self.model.setPlaceholderText("As the server names it (may be left empty for llama-server)")
        self.api_key = QLineEdit()
        self.api_key.setAccessibleName("API key")
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.api_key.setPlaceholderText("Optional")
        form.addRow("Address:", self.url)
        form.addRow("Model name:", self.model)
        form.addRow("API key:", self.api_key)
        form.addRow("", wrapped_label("The API key is kept in this system's password store, never in a "
                                      "Studio settings file.", name="muted"))
        layout.addWidget(self.endpoint_box)

        test_row = QHBoxLayout()
        self.test_button = QPushButton("Test")
        self.test_button.setAccessibleName("Test the judge")
        self.test_button.setToolTip("Ask the judge one small question now, to see that it loads (or answers) "
                                    "and replies the way the quality check needs.")
        self.test_button.clicked.connect(self.test)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setAccessibleName("Test progress")
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel test")
        self.cancel_button.setAccessibleName("Cancel the test")
        self.cancel_button.clicked.connect(self.cancel_test)
        self.cancel_button.hide()
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.progress, 1)
        test_row.addWidget(self.cancel_button)
        test_row.addStretch(0)
        layout.addLayout(test_row)
        self.status = wrapped_label("", name="muted")
        self.status.setAccessibleName("Test status")
        layout.addWidget(self.status)
        self.banner = Banner()
        layout.addWidget(self.banner)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Close)
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.save_button.setAccessibleName("Save the judge settings")
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.close)
        layout.addWidget(self.buttons)

        self.runner.progressChanged.connect(self._on_progress)
        self.runner.statusChanged.connect(self.status.setText)
        self.runner.finished.connect(self._on_tested)
        self.runner.failed.connect(self._on_test_failed)
        self.runner.cancelled.connect(self._on_test_cancelled)
        self.runner.busyChanged.connect(self._on_busy)
        self._show(load_settings())
        explain_terms(self)

    # ---- the settings -----------------------------------------------------------------------------------

    def _show(self, settings: JudgeSettings) -> None:
        self.kind_buttons[settings.kind].setChecked(True)
        self.model_path.setText(settings.model_path)
        self.url.setText(settings.url)
        self.model.setText(settings.model)
        self.api_key.setText(settings.api_key)
        self._show_kind()

    def kind(self) -> Kind:
        return next((kind for kind, button in self.kind_buttons.items() if button.isChecked()), "off")

    def settings(self) -> JudgeSettings:
        """What the screen shows now, as settings (the fields of the kind not chosen are kept too)."""
        return JudgeSettings(kind=self.kind(), model_path=self.model_path.text().strip(),
                             url=self.url.text().strip(), model=self.model.text().strip(),
                             api_key=self.api_key.text().strip())

    def _kind_toggled(self, _id: int, checked: bool) -> None:
        if checked:
            self._show_kind()

    def _show_kind(self) -> None:
        kind = self.kind()
        self.gguf_box.setVisible(kind == "gguf")
        self.endpoint_box.setVisible(kind == "endpoint")
        self.test_button.setEnabled(kind != "off" and not self.runner.busy)
        self.banner.hide()
        self.status.setText("")

    def _browse(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, "Choose the judge model", self.model_path.text(),
                                                    "GGUF models (*.gguf);;All files (*)")
        if path:
            self.model_path.setText(path)

    def save(self) -> bool:
        """Write judge.json (the key to the password store); a problem is shown here and nothing changes."""
        settings = self.settings()
        if settings.kind != "off" and not settings.enabled:
            self.banner.show_message("warn", "Nothing to save yet",
                                     "Choose a model file or enter the endpoint's address, or choose Off.")
            return False
        try:
            save_settings(settings)
        except (StudioError, OSError) as exc:
            self.banner.show_error(exc if isinstance(exc, StudioError) else StudioError(
                what="Studio could not save the judge settings.", why=str(exc),
                actions=["Check that Studio's data folder can be written to, then save again."],
                code="config_unwritable"))
            return False
        self.banner.show_message("ok", "Saved", "The next quality check uses this judge."
                                 if settings.enabled else "The quality check runs without a judge.")
        return True

    # ---- the test ---------------------------------------------------------------------------------------

    def test(self) -> None:
        settings = self.settings()
        self.banner.hide()
        self.progress.setValue(0)
        self.status.setText("Starting the test…")

        def run(state: TaskState) -> str:
            return check_judge(settings, state)

        self.runner.start(run, "testing the judge")

    def cancel_test(self) -> None:
        self.status.setText("Stopping the test…")
        self.cancel_button.setEnabled(False)
        self.runner.cancel()

    def _on_progress(self, fraction: float) -> None:
        self.progress.setValue(round(fraction * 100))

    def _on_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.cancel_button.setEnabled(busy)
        self.test_button.setEnabled(not busy and self.kind() != "off")

    def _on_tested(self, sentence: object) -> None:
        self.status.setText("")
        self.banner.show_message("ok", "Test passed", str(sentence))

    def _on_test_failed(self, error: object) -> None:
        self.status.setText("")
        self.banner.show_error(error)

    def _on_test_cancelled(self) -> None:
        self.status.setText("Test cancelled.")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """A test still running stops at its next step (never waited for here: an endpoint may be slow)."""
        self.runner.cancel()
        super().closeEvent(event)
