"""The export dialog drives the real export pipeline on a real tiny run: adapter export, GGUF cancel,
and the verification verdict in words."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from studio.engine.export.atomic import partial_path
from studio.engine.export.verify import VerificationReport
from studio.engine.runs.registry import RunRecord
from studio.exporting.export_dialog import ExportDialog, verification_text


@pytest.fixture
def make_dialog(qtbot) -> Iterator[Callable[[RunRecord], ExportDialog]]:
    made: list[ExportDialog] = []

    def make(record: RunRecord) -> ExportDialog:
        dialog = ExportDialog(record.run_dir, f"{record.name} {record.version}")
        made.append(dialog)
        dialog.show()
        return dialog

    yield make
    for dialog in made:
        dialog.shutdown()
        dialog.close()
        dialog.deleteLater()


def test_the_dialog_opens_on_ollama_with_no_empty_progress_bar(make_dialog, tiny_run: RunRecord):
    dialog = make_dialog(tiny_run)
    assert dialog.chosen_format == "ollama" and dialog.format.currentText() == "Ollama"
    assert dialog.quant.isEnabled() and not dialog.progress.isVisible()


def test_adapter_export_completes_and_lists_the_files(qtbot, make_dialog, tiny_run: RunRecord):
    dialog = make_dialog(tiny_run)
    opened: list[Path] = []
    dialog.open_folder = opened.append
    dialog.set_format("adapter")
    target = tiny_run.run_dir / "exports" / "adapter"
    assert dialog.folder.text() == str(target)
    assert not dialog.quant.isEnabled()  # quantization only applies to GGUF formats
    with qtbot.waitSignal(dialog.exportFinished, timeout=60_000) as done:
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    result = done.args[0]
    assert result.ok and result.out_dir == target
    names = {dialog.files.item(i).text() for i in range(dialog.files.count())}
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= names
    assert all((target / name).is_file() for name in names)
    assert dialog.files.isVisible() and dialog.progress.value() == 1000
    assert dialog.export_button.isEnabled() and not dialog.cancel_button.isEnabled()
    qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)
    assert opened == [target]


def test_adapter_gguf_formats_are_offered_without_a_quantization(make_dialog, tiny_run: RunRecord):
    dialog = make_dialog(tiny_run)
    for fmt in ("gguf-adapter", "ollama-adapter"):
        dialog.set_format(fmt)
        assert dialog.chosen_format == fmt and not dialog.quant.isEnabled()  # always f16 on an f16 base
        assert dialog.folder.text() == str(tiny_run.run_dir / "exports" / fmt)


def test_cancel_during_a_gguf_export_keeps_nothing(qtbot, make_dialog, tiny_run: RunRecord):
    dialog = make_dialog(tiny_run)
    dialog.set_format("gguf", "f16")
    target = Path(dialog.folder.text())
    with qtbot.waitSignal(dialog.runner.statusChanged, timeout=60_000,
                          check_params_cb=lambda text: "converter" in text):
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert dialog.busy and not dialog.export_button.isEnabled()
    with qtbot.waitSignal(dialog.exportCancelled, timeout=30_000):
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert not target.exists() and not partial_path(target).exists()
    assert not list(tiny_run.run_dir.rglob("*.gguf"))
    assert "cancelled" in dialog.status.text() and dialog.progress.value() == 0
    assert dialog.export_button.isEnabled() and not dialog.open_button.isEnabled()


def _report(quant: str, agreement: float, passed: bool, recommendation: str = "") -> VerificationReport:
    return VerificationReport(gguf_file="m.gguf", quant=quant, agreement=agreement, threshold=0.9, passed=passed,
                              positions=48, tokenizer_match=True, template_match=True,
                              recommendation=recommendation)


def test_verification_verdict_in_words():
    kind, title, body = verification_text(_report("f16", 1.0, True))
    assert kind == "ok" and "passed" in title and "100% of 48" in body
    kind, title, body = verification_text(_report("Q4_K_M", 0.42, False, "Small models lose too much."))
    assert kind == "bad" and "failed" in title and "42%" in body and "needs 90%" in body
    assert "Do not use this file" in body and "f16 or q8_0" in body
