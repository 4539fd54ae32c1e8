"""The export dialog: pick a format (and a quantization), a folder, watch the engine's progress, cancel.

The export runs on the shared background task thread through `export_run`, the same entry point the CLI
uses; Cancel ends it at the next progress report (a converter subprocess is killed at once) and the engine
keeps nothing half-written. The verification verdict is shown in words, a failure as a failure.

Signals:
    exportFinished(object): the ExportResult of a completed export (verified or not).
    exportFailed(object): the StudioError that stopped it.
    exportCancelled(): the export stopped because the user asked.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QCloseEvent, QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.engine.export.lmstudio import lmstudio_models_dir
from studio.engine.export.pipeline import ExportResult, default_out_dir, export_run
from studio.engine.export.verify import VerificationReport
from studio.gui.help import help_button
from studio.gui.tasks import TaskRunner, TaskState
from studio.gui.widgets import Banner, wrapped_label

# Ollama first: what the Export button promises and what most people want; the rest by how often asked for.
FORMAT_CHOICES: tuple[tuple[str, str, str], ...] = (
    ("ollama", "Ollama", "A GGUF file plus a Modelfile, added to Ollama when it is installed."),
    ("gguf", "GGUF file (llama.cpp)", "One file for llama.cpp and the apps built on it."),
    ("lmstudio", "LM Studio", "A GGUF file placed in LM Studio's models folder."),
    ("hf", "Merged model (Hugging Face folder)",
     "Your changes merged into the base model: loads anywhere transformers does."),
    ("adapter", "Adapter only (small)",
     "Just the few megabytes you trained; needs the base model next to it."),
    ("gguf-adapter", "Adapter as GGUF (llama.cpp --lora)",
     "Just your changes as a small GGUF file, applied on top of the base model's GGUF."),
    ("ollama-adapter", "Ollama, adapter on the base model",
     "The base model's GGUF plus your adapter GGUF, and a Modelfile that combines them (ADAPTER)."),
)
QUANTS: tuple[tuple[str, str], ...] = (
    ("", "Automatic (f16 for small models, Q4_K_M for large ones)"),
    ("f16", "f16: exact, largest"),
    ("q8_0", "q8_0: near-exact, half the size"),
    ("Q5_K_M", "Q5_K_M: smaller, small loss"),
    ("Q4_K_M", "Q4_K_M: smallest, more loss (not for small models)"),
)
GGUF_FORMATS = frozenset({"gguf", "ollama", "lmstudio"})
SAFE_QUANTS = "Export again with f16 or q8_0 (choose it under Quantization): small models break under " \
              "stronger quantization."


def open_folder(folder: Path) -> None:
    """Show the folder in the system's file manager."""
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


def verification_text(report: VerificationReport) -> tuple[str, str, str]:
    """(banner kind, title, body) that say plainly whether the exported file can be trusted."""
    share = (f"The {report.quant} file picks the same next word as your trained model at "
             f"{report.agreement:.0%} of {report.positions} positions checked (it needs {report.threshold:.0%}).")
    if report.passed:
        return "ok", "Verification passed: the exported file behaves like your model.", share
    body = f"{share}\nDo not use this file as it is. {report.recommendation}".strip()
    if report.quant.lower() not in {"f16", "q8_0"}:
        body += f"\n{SAFE_QUANTS}"
    return "bad", "Verification failed: the exported file does not behave like your model.", body


class ExportDialog(QDialog):
    exportFinished = Signal(object)  # noqa: N815 - Qt signal naming
    exportFailed = Signal(object)  # noqa: N815
    exportCancelled = Signal()  # noqa: N815

    def __init__(self, run_dir: Path, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_dir = Path(run_dir)
        self.result: ExportResult | None = None
        self.open_folder: Callable[[Path], None] = open_folder
        """Replaceable (tests must not start a file manager)."""
        self._folder_edited = False
        self.setWindowTitle(f"Export {title or self.run_dir.name}")
        self.setMinimumWidth(640)

        self.format = QComboBox()
        self.format.setAccessibleName("Export format")
        for key, label, _ in FORMAT_CHOICES:
            self.format.addItem(label, key)
        self.format_hint = wrapped_label(name="muted")
        self.quant = QComboBox()
        self.quant.setAccessibleName("Quantization")
        for key, label in QUANTS:
            self.quant.addItem(label, key)
        self.folder = QLineEdit()
        self.folder.setAccessibleName("Output folder")
        self.folder.textEdited.connect(self._on_folder_edited)
        self.browse = QPushButton("Choose…")
        self.browse.clicked.connect(self._choose_folder)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(self.browse)

        form = QFormLayout()
        form.addRow("Format", self.format)
        form.addRow("", self.format_hint)
        form.addRow("Quantization", self.quant)
        form.addRow("Folder", folder_row)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setAccessibleName("Export progress")
        self.progress.hide()  # an empty bar under the form read as an unlabelled box; shown once exporting
        self.status = wrapped_label(name="muted")
        self.banner = Banner()
        self.verification = Banner()
        self.files = QListWidget()
        self.files.setAccessibleName("Exported files")
        self.files.setMaximumHeight(140)
        self.files.hide()
        self.command_label = QLabel("Ollama is not installed here. To add the model later, run:")
        self.command = QLineEdit()
        self.command.setReadOnly(True)
        self.command.setAccessibleName("Ollama command")
        self.copy_command = QPushButton("Copy")
        self.copy_command.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.command.text()))
        command_row = QHBoxLayout()
        command_row.addWidget(self.command, 1)
        command_row.addWidget(self.copy_command)
        self.command_box = QWidget()
        box = QVBoxLayout(self.command_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.command_label)
        box.addLayout(command_row)
        self.command_box.hide()

        self.export_button = QPushButton("&Export")
        self.export_button.setObjectName("primary")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start_export)
        self.cancel_button = QPushButton("&Cancel")
        self.cancel_button.clicked.connect(self.cancel_export)
        self.cancel_button.setEnabled(False)
        self.open_button = QPushButton("&Open folder")
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self._open_result)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.close_button)

        heading = QLabel(f"Export {title or self.run_dir.name}")
        heading.setObjectName("sectionTitle")
        title_row = QHBoxLayout()
        title_row.addWidget(heading, 1)
        title_row.addWidget(help_button("export", "exporting"))
        layout = QVBoxLayout(self)
        layout.addLayout(title_row)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.banner)
        layout.addWidget(self.verification)
        layout.addWidget(self.files)
        layout.addWidget(self.command_box)
        layout.addStretch(1)
        layout.addLayout(buttons)

        self.runner = TaskRunner(self)
        self.runner.progressChanged.connect(lambda value: self.progress.setValue(round(value * 1000)))
        self.runner.statusChanged.connect(self.status.setText)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(self._on_cancelled)
        self.runner.busyChanged.connect(self._set_busy)
        self.format.currentIndexChanged.connect(self._on_format)
        self._on_format()

    # ---- choices ---------------------------------------------------------------------------------------

    @property
    def chosen_format(self) -> str:
        return str(self.format.currentData())

    def set_format(self, fmt: str, quant: str | None = None) -> None:
        self.format.setCurrentIndex(self.format.findData(fmt))
        if quant is not None:
            self.quant.setCurrentIndex(self.quant.findData(quant))

    def default_folder(self, fmt: str) -> Path:
        """Exports go inside the run by default; LM Studio's own models folder when it is installed."""
        if fmt == "lmstudio":
            return lmstudio_models_dir() or default_out_dir(self.run_dir, fmt)
        return default_out_dir(self.run_dir, fmt)

    def _on_format(self) -> None:
        fmt = self.chosen_format
        self.format_hint.setText(next(hint for key, _, hint in FORMAT_CHOICES if key == fmt))
        self.quant.setEnabled(fmt in GGUF_FORMATS)
        if not self._folder_edited:
            self.folder.setText(str(self.default_folder(fmt)))

    def _on_folder_edited(self, _text: str) -> None:
        self._folder_edited = True

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into", self.folder.text())
        if folder:
            self.folder.setText(folder)
            self._folder_edited = True

    # ---- running ---------------------------------------------------------------------------------------

    def start_export(self) -> None:
        fmt = self.chosen_format
        quant = (str(self.quant.currentData()) or None) if fmt in GGUF_FORMATS else None
        folder = Path(self.folder.text().strip()).expanduser() if self.folder.text().strip() else None
        run_dir = self.run_dir
        self.result = None
        for widget in (self.banner, self.verification, self.files, self.command_box):
            widget.hide()
        self.open_button.setEnabled(False)
        self.progress.setValue(0)
        self.progress.show()
        self.status.setText("Starting the export…")

        def work(task: TaskState) -> Any:
            return export_run(run_dir, fmt, quant=quant, out_dir=folder, task=task)  # type: ignore[arg-type]

        self.runner.start(work, "exporting the model")

    def cancel_export(self) -> None:
        if self.runner.busy:
            self.cancel_button.setEnabled(False)
            self.status.setText("Cancelling: removing what was written so far…")
            self.runner.cancel()

    @property
    def busy(self) -> bool:
        return self.runner.busy

    def _set_busy(self, busy: bool) -> None:
        for widget in (self.format, self.folder, self.browse, self.export_button):
            widget.setEnabled(not busy)
        self.quant.setEnabled(not busy and self.chosen_format in GGUF_FORMATS)
        self.cancel_button.setEnabled(busy)

    def _on_finished(self, result: object) -> None:
        assert isinstance(result, ExportResult)
        self.result = result
        self.progress.setValue(1000)
        if result.ok:
            self.status.setText(f"Exported to {result.out_dir}")
        else:
            self.status.setText(f"Written to {result.out_dir}, but it failed verification.")
        if result.verification is not None:
            kind, title, body = verification_text(result.verification)
            self.verification.show_message(kind, title, body)
        self.files.clear()
        for path in result.files:
            self.files.addItem(str(path.relative_to(result.out_dir)) if path.is_relative_to(result.out_dir)
                               else str(path))
        self.files.setVisible(bool(result.files))
        ollama = result.ollama
        if ollama is not None and ollama.created:
            self.banner.show_message("ok", f"Added to Ollama as {ollama.model_name}.",
                                     f"Try it: {ollama.run_command}")
        elif ollama is not None:
            self.command.setText(ollama.command)
            self.command_box.show()
        self.open_button.setEnabled(result.out_dir.is_dir())
        self.exportFinished.emit(result)

    def _on_failed(self, error: object) -> None:
        self.progress.setValue(0)
        self.status.setText("The export did not complete; nothing half-written was kept.")
        self.banner.show_error(error)
        self.exportFailed.emit(error)

    def _on_cancelled(self) -> None:
        self.progress.setValue(0)
        self.status.setText("Export cancelled; nothing half-written was kept.")
        self.exportCancelled.emit()

    def _open_result(self) -> None:
        if self.result is not None:
            self.open_folder(self.result.out_dir)

    # ---- closing ---------------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Cancel a running export and wait for its thread: call before the dialog goes away."""
        self.runner.shutdown()

    def reject(self) -> None:
        """Esc or Close during an export cancels it first, so no export runs on unseen."""
        self.shutdown()
        super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)

