"""The dataset page: background check with cancel, column mapping, issue drill-down, sample dataset."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt

from studio.wizard.state import WizardState

CHECK_TIMEOUT_MS = 120_000


@pytest.fixture
def page_of(make_wizard):
    def make(**state):
        wizard = make_wizard(WizardState(onboarding_done=True, profile_id="chatbot", page=1, **state))
        return wizard, wizard.page_at(1)

    return make


def test_cancel_stops_a_long_check(qtbot, page_of, tmp_path):
    big = tmp_path / "big.jsonl"
    row = {"instruction": "Say something about the number {}.", "output": "It is a fine number. " * 20}
    big.write_text("".join(json.dumps({**row, "instruction": row["instruction"].format(i)}) + "\n"
                           for i in range(150_000)), encoding="utf-8")
    wizard, page = page_of()
    page.set_file(str(big))
    qtbot.waitUntil(lambda: page.progress_box.isVisible(), timeout=5000)
    assert "still checking" in wizard.message.text()
    with qtbot.waitSignal(page.runner.cancelled, timeout=60_000):
        qtbot.mouseClick(page.cancel, Qt.MouseButton.LeftButton)
    assert page.banner.title.text() == "Check cancelled." and not page.progress_box.isVisible()
    assert not wizard.next_button.isEnabled()


@pytest.mark.slow
def test_unclear_columns_get_a_mapping_that_makes_the_data_usable(qtbot, page_of, tmp_path, builtin_model_dir):
    data = tmp_path / "pairs.csv"
    data.write_text("title,body,notes\n" + "".join(
        f"What is {i} times two?,{i} times two is {2 * i}.,row {i}\n" for i in range(80)), encoding="utf-8")
    wizard, page = page_of()
    page.set_file(str(data))
    qtbot.waitUntil(lambda: not page.runner.busy, timeout=CHECK_TIMEOUT_MS)
    assert not wizard.next_button.isEnabled()
    assert page.mapping_box.isVisible() and set(page.mapping_combos) == {"title", "body", "notes"}
    page.mapping_combos["title"].setCurrentIndex(page.mapping_combos["title"].findData("user"))
    body = page.mapping_combos["body"]
    body.setCurrentIndex(body.findData("assistant"))
    body.activated.emit(body.currentIndex())
    assert wizard.session.state.column_mapping == {"title": "user", "body": "assistant"}
    qtbot.waitUntil(lambda: not page.runner.busy and page.check is not None, timeout=CHECK_TIMEOUT_MS)
    assert page.check.report.usable, page.check.report.render()
    assert wizard.next_button.isEnabled()


@pytest.mark.slow
def test_issue_rows_can_be_shown(qtbot, page_of, tmp_path, builtin_model_dir):
    data = tmp_path / "gaps.jsonl"
    rows = [{"prompt": f"Question {i}?", "completion": f"Answer {i}."} for i in range(60)]
    rows[7]["completion"] = ""
    rows[11]["completion"] = ""
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    _wizard, page = page_of()
    page.set_file(str(data))
    qtbot.waitUntil(lambda: page.check is not None, timeout=CHECK_TIMEOUT_MS)
    row = next(w for w in page.issue_widgets if w.issue.count == 2 and w.issue.examples)
    assert not row.rows_view.isVisible()
    qtbot.mouseClick(row.show_rows, Qt.MouseButton.LeftButton)
    assert row.rows_view.isVisible()
    text = row.rows_view.toPlainText()
    assert "line 8" in text and "line 12" in text


def test_the_encoding_found_is_shown_with_the_check(qtbot, page_of, tmp_path):
    data = tmp_path / "windows.csv"
    data.write_bytes(("question,answer\n" + "".join(
        f"“Price {i}?”,It costs {i} € – cheap\n" for i in range(20))).encode("cp1252"))
    _wizard, page = page_of()
    page.set_file(str(data))
    qtbot.waitUntil(lambda: page.check is not None, timeout=CHECK_TIMEOUT_MS)
    assert page.summary.text().startswith("Read as CSV, Windows-1252 (Western). 20 rows read, 20 usable")
    assert any("read it as Windows-1252" in row.issue.message for row in page.issue_widgets)


def test_sample_button_uses_the_profiles_sample(qtbot, page_of):
    from studio.engine.datasets import sample_path

    wizard, page = page_of()
    qtbot.mouseClick(page.sample, Qt.MouseButton.LeftButton)
    assert wizard.session.state.dataset_path == str(sample_path("chatbot"))
    qtbot.waitUntil(lambda: not page.runner.busy, timeout=CHECK_TIMEOUT_MS)
