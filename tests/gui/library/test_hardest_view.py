"""The hardest-examples report in the library: sorted by loss, filtered by split, the whole example of the
selected row, rows ticked and the next version queued (or opened in the wizard) without them; and a run
without a report scored on the spot, with progress and Cancel."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QStyle, QStyleOptionViewItem

from studio.engine.config import TrainConfig
from studio.engine.library.hardest import REPORT_FILE, HardestReport, ScoredExample, save_report
from studio.engine.runs.registry import RunRecord
from studio.library.hardest_view import LEAVE_OUT, LOSS, HardestView
from studio.library.library_page import LibraryPage

EXAMPLES = [  # (split, loss, answer): one mislabeled row far above the rest
    ("train", 0.41, "Pip says 7."), ("train", 6.93, "Pip says banana."), ("eval", 1.22, "Pip says 12."),
    ("train", 0.35, "Pip says 3."), ("eval", 3.10, "Pip says 41, I think, maybe."), ("train", 0.88, "Pip says 9."),
]


def write_report(run: RunRecord) -> HardestReport:
    examples = [
        ScoredExample(split=split, index=i, fingerprint=f"fp{i:02d}", loss=loss, tokens=5 + i,
                      text=f"<|im_start|>user\nWhat is {i} plus {i}?<|im_end|>\n<|im_start|>assistant\n{answer}"
                           f"<|im_end|>\n" + "(the rest of the conversation) " * 20)
        for i, (split, loss, answer) in enumerate(EXAMPLES)
    ]
    report = HardestReport(run_id=run.id, step=3, examples=sorted(examples, key=lambda e: -e.loss),
                           splits={"train": {"scored": 4, "total": 4}, "eval": {"scored": 2, "total": 2}})
    save_report(run.run_dir, report)
    return report


@pytest.fixture
def page(open_library_page, library):
    write_report(library.child)
    return open_library_page(library.registry)


def open_report(page: LibraryPage, run_id: str, qtbot, click) -> HardestView:
    page.select([run_id])
    click(page.hardest_button)
    view = page.hardest_view
    assert page.stack.currentWidget() is view
    qtbot.waitUntil(lambda: not view.runner.busy, timeout=20000)
    return view


def column(view: HardestView, index: int) -> list[str]:
    return [view.proxy.index(row, index).data() for row in range(view.proxy.rowCount())]


def click_header(view: HardestView, index: int, qtbot) -> None:
    header = view.table.horizontalHeader()
    x = header.sectionViewportPosition(index) + header.sectionSize(index) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2))


def tick(view: HardestView, row: int, qtbot) -> None:
    """Click the row's checkbox where the style draws it."""
    option = QStyleOptionViewItem()
    option.rect = view.table.visualRect(view.proxy.index(row, LEAVE_OUT))
    option.features |= QStyleOptionViewItem.ViewItemFeature.HasCheckIndicator
    box = view.table.style().subElementRect(QStyle.SubElement.SE_ItemViewItemCheckIndicator, option, view.table)
    assert option.rect.contains(box.center())
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=box.center())


def test_sorted_filtered_read_in_full_then_queued_without_the_ticked_rows(page, library, qtbot, click):
    view = open_report(page, library.child.id, qtbot, click)
    assert view.title.text() == "Hardest examples of pip 1.1.0"
    assert "4 training, 2 held-out examples, measured after step 3" in view.summary.text()
    assert column(view, LOSS) == ["6.9300", "3.1000", "1.2200", "0.8800", "0.4100", "0.3500"]
    assert "Pip says banana." in column(view, 5)[0] and "<|im_start|>" not in column(view, 5)[0]

    click_header(view, LOSS, qtbot)  # the other way round
    assert column(view, LOSS) == ["0.3500", "0.4100", "0.8800", "1.2200", "3.1000", "6.9300"]
    click_header(view, LOSS, qtbot)

    view.split_filter.setCurrentIndex(view.split_filter.findData("eval"))
    assert column(view, 2) == ["held-out", "held-out"] and column(view, LOSS) == ["3.1000", "1.2200"]
    view.table.selectRow(0)
    assert view.text.toPlainText().startswith("<|im_start|>user\nWhat is 4 plus 4?")
    assert "Pip says 41, I think, maybe." in view.text.toPlainText()
    assert "loss 3.1000" in view.detail.text() and "fingerprint fp04" in view.detail.text()
    assert not view.queue_button.isEnabled()
    tick(view, 0, qtbot)
    view.split_filter.setCurrentIndex(view.split_filter.findData(""))
    tick(view, 0, qtbot)  # the worst training example
    assert view.model.picked_fingerprints() == ["fp01", "fp04"]
    assert view.picked_label.text().startswith("2 examples ticked")

    page.queue_view.estimate = lambda _config: 120.0  # the planner's estimate is tested in the engine
    with qtbot.waitSignal(page.queue_view.added, timeout=20000) as added:
        click(view.queue_button)
    assert page.stack.currentIndex() == 0  # back to the list, the queue on top
    entry = added.args[0]
    assert entry.name == "pip" and entry.state == "waiting"
    config = TrainConfig.from_dict(library.registry.get(entry.run_id).config)
    assert config.exclude_examples == ["fp01", "fp04"]
    assert config.init_adapter is None and config.learning_rate == library.child.config["learning_rate"]
    assert page.queue_view.table.item(0, 0).text() == f"pip {entry.version}"


def test_exclude_and_open_in_the_wizard(page, library, qtbot, click):
    view = open_report(page, library.child.id, qtbot, click)
    tick(view, 0, qtbot)
    with qtbot.waitSignal(page.newRunRequested) as requested:
        click(view.wizard_button)
    config = requested.args[0]
    assert config["exclude_examples"] == ["fp01"] and config["dataset_path"] == library.child.config["dataset_path"]
    click(view.clear_button)
    assert view.model.picked == set() and not view.queue_button.isEnabled()


def test_a_run_without_a_report_is_scored_with_progress_and_cancel(qtbot, tiny_run, click):
    (tiny_run.run_dir / REPORT_FILE).unlink(missing_ok=True)
    view = HardestView()
    qtbot.addWidget(view, before_close_func=lambda v: v.shutdown())
    view.resize(1100, 700)
    view.show()
    view.set_run(tiny_run)
    qtbot.waitUntil(lambda: view.pages.currentIndex() == 1, timeout=20000)
    assert "has no per-example report yet" in view.missing.text()
    assert view.score_button.isEnabled() and not view.cancel_button.isEnabled()

    with qtbot.waitSignal(view.runner.cancelled, timeout=120_000):
        click(view.score_button)
        assert view.cancel_button.isEnabled() and not view.score_button.isEnabled()
        click(view.cancel_button)
    assert view.status.text() == "Scoring was cancelled; nothing was saved."
    assert not (tiny_run.run_dir / REPORT_FILE).exists()

    with qtbot.waitSignal(view.runner.finished, timeout=180_000):
        click(view.score_button)
    assert view.pages.currentIndex() == 0
    assert view.proxy.rowCount() == 24  # every training row of the tiny run (it has no held-out split)
    losses = [float(value) for value in column(view, LOSS)]
    assert losses == sorted(losses, reverse=True) and losses[0] > 0
    assert (tiny_run.run_dir / REPORT_FILE).is_file() and view.text.toPlainText()  # the worst row is shown
