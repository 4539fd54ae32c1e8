"""The library's table model and its proxy: what each cell says, the search words and filters, and sorting by
value (versions part by part, losses and sizes by number), also when a person clicks a column's header."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QTableView

from studio.engine.library.catalog import LibraryRow
from studio.engine.runs.active import NOT_ACTIVATED_TAG
from studio.engine.runs.registry import RunRecord
from studio.library.runs_table import (
    COLUMNS,
    ID_ROLE,
    LibrarySnapshot,
    RunsFilter,
    RunsModel,
    short_date,
    version_key,
)


def make_row(run_id: str, version: str, *, name: str = "pip", status: str = "completed", created: str = "",
             loss: float | None = None, size: int = 0, tags: tuple[str, ...] = (),
             notes: tuple[str, ...] = ()) -> LibraryRow:
    run = RunRecord(id=run_id, name=name, version=version, parent_id=None, status=status, dataset="/data/qa.jsonl",
                    base_model="tiny-llama-test", created_at=created or f"2026-01-0{len(run_id) % 9 + 1}T10:00:00",
                    started_at=None, finished_at=None, metrics={}, peak_memory=None, run_dir=Path("/nowhere"),
                    pid=None, exit_code=None)
    return LibraryRow(run, tags, notes, size, loss)


@pytest.fixture
def table(qtbot):
    rows = (
        make_row("a", "1.9.0", created="2026-01-01T10:00:00", loss=0.5, size=2_000_000, tags=("favourite",)),
        make_row("b", "1.10.0", created="2026-01-03T10:00:00", loss=None, size=900_000,
                 notes=("lower rate, steadier",)),
        make_row("c", "1.2.0", created="2026-01-02T10:00:00", loss=0.25, size=50_000_000, status="failed",
                 tags=(NOT_ACTIVATED_TAG,)),
        make_row("d", "2.0.0", name="owl", created="2026-01-04T10:00:00", loss=1.5, size=10),
    )
    model = RunsModel()
    model.set_snapshot(LibrarySnapshot(rows, frozenset({"a"})))
    proxy = RunsFilter(model)
    view = QTableView()
    view.setModel(proxy)
    view.setSortingEnabled(True)
    qtbot.addWidget(view)
    view.resize(900, 300)
    view.show()
    return view


def ids(proxy: RunsFilter) -> list[str]:
    return [proxy.index(row, 0).data(ID_ROLE) for row in range(proxy.rowCount())]


def cell(proxy: RunsFilter, run_id: str, column: str, role: int = Qt.ItemDataRole.DisplayRole) -> object:
    return proxy.index(ids(proxy).index(run_id), COLUMNS.index(column)).data(role)


def test_version_key_is_numeric():
    assert version_key("1.10.0") > version_key("1.9.0") > version_key("1.2.0")
    assert short_date("2026-03-01T12:34:56") == "2026-03-01 12:34"


def test_cells_say_what_the_library_shows(table):
    proxy = table.model()
    assert proxy.columnCount() == len(COLUMNS)
    assert [proxy.headerData(c, Qt.Orientation.Horizontal) for c in range(len(COLUMNS))] == list(COLUMNS)
    assert cell(proxy, "a", "Version") == "1.9.0  ★ active"
    assert cell(proxy, "a", "Version", Qt.ItemDataRole.FontRole).bold()
    assert "active version of pip" in cell(proxy, "a", "Version", Qt.ItemDataRole.ToolTipRole)
    assert cell(proxy, "c", "Version") == "1.2.0  not made active"
    assert "not made active" in cell(proxy, "c", "Version", Qt.ItemDataRole.ToolTipRole)
    assert cell(proxy, "c", "Version", Qt.ItemDataRole.ForegroundRole) is not None
    assert cell(proxy, "b", "Version") == "1.10.0"
    assert cell(proxy, "b", "Best eval loss") == "–" and cell(proxy, "a", "Best eval loss") == "0.5000"
    assert cell(proxy, "a", "Dataset") == "qa.jsonl" and cell(proxy, "a", "Date") == "2026-01-01 10:00"
    assert cell(proxy, "a", "Size on disk").endswith("MB") and cell(proxy, "a", "Tags") == "favourite"
    assert proxy.rowCount(proxy.index(0, 0)) == 0 and proxy.index(0, 0).parent() == QModelIndex()


def test_the_proxy_sorts_versions_numbers_and_text(table):
    proxy = table.model()
    proxy.sort(COLUMNS.index("Version"), Qt.SortOrder.AscendingOrder)
    assert ids(proxy) == ["c", "a", "b", "d"]  # 1.2.0, 1.9.0, 1.10.0, 2.0.0 (as text 1.10.0 would come first)
    proxy.sort(COLUMNS.index("Best eval loss"), Qt.SortOrder.AscendingOrder)
    assert ids(proxy) == ["c", "a", "d", "b"]  # a run without a held-out loss comes last
    proxy.sort(COLUMNS.index("Size on disk"), Qt.SortOrder.DescendingOrder)
    assert ids(proxy) == ["c", "a", "b", "d"]  # 50 MB, 2 MB, 900 KB, 10 B: by bytes, not by text
    proxy.sort(COLUMNS.index("Date"), Qt.SortOrder.DescendingOrder)
    assert ids(proxy) == ["d", "b", "c", "a"]
    proxy.sort(COLUMNS.index("Name"), Qt.SortOrder.AscendingOrder)
    assert ids(proxy)[0] == "d"  # owl before pip


def test_clicking_the_version_header_sorts_by_version(table, qtbot):
    header = table.horizontalHeader()
    column = COLUMNS.index("Version")
    pos = header.rect().center()
    pos.setX(header.sectionViewportPosition(column) + header.sectionSize(column) // 2)
    table.sortByColumn(COLUMNS.index("Name"), Qt.SortOrder.AscendingOrder)
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    order = [table.model().index(row, column).data().split()[0] for row in range(table.model().rowCount())]
    if header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder:
        order.reverse()
    assert header.sortIndicatorSection() == column
    assert order == ["1.2.0", "1.9.0", "1.10.0", "2.0.0"]


def test_the_proxy_filters_by_words_status_and_tag(table):
    proxy = table.model()
    proxy.set_filter(text="steadier")  # a note's words count
    assert ids(proxy) == ["b"]
    proxy.set_filter(text="pip 1.9")  # every word must occur
    assert ids(proxy) == ["a"]
    proxy.set_filter(status="failed")
    assert ids(proxy) == ["c"]
    proxy.set_filter(tag="favourite")
    assert ids(proxy) == ["a"]
    proxy.set_filter(text="owl", tag="favourite")
    assert ids(proxy) == []
    proxy.set_filter()
    assert sorted(ids(proxy)) == ["a", "b", "c", "d"]


def test_a_new_snapshot_replaces_the_rows(table):
    proxy = table.model()
    proxy.sourceModel().set_snapshot(LibrarySnapshot((make_row("z", "3.0.0"),)))
    assert ids(proxy) == ["z"] and cell(proxy, "z", "Version") == "3.0.0"
