"""The comparison shows each version's quality verdict and measures side by side, from the saved reports
(an older report with loss and perplexity only, a newer one with its per-example tally, none at all)."""

from __future__ import annotations

import json

from studio.engine.library.metrics import Tally
from studio.engine.library.quality import REPORT_FILE, LossScore, MetricScore, QualityReport, save_report
from studio.library.compare_view import CompareView


def _rows(view: CompareView) -> dict[str, list[str]]:
    table = view.quality
    return {table.verticalHeaderItem(r).text(): [table.item(r, c).text() for c in range(table.columnCount())]
            for r in range(table.rowCount())}


def test_two_versions_verdicts_side_by_side(qtbot, library):
    parent, child = library.parent, library.child
    save_report(parent.run_dir, QualityReport(
        parent.id, "now", 50, LossScore(2.0, 7.389, 300), LossScore(1.5, 4.482, 300),
        tally=Tally(41, 5, 4, "token F1"),
        metrics=(MetricScore("token_f1", "token F1", 0.25, 0.8, True, 50),
                 MetricScore("perplexity", "perplexity", 7.389, 4.482, False, 50))))
    older = {"run_id": child.id, "created": "then", "eval_examples": 6, "verdict": "old words",
             "base": {"loss": 2.0, "perplexity": 7.389, "tokens": 30},
             "tuned": {"loss": 2.5, "perplexity": 12.18, "tokens": 30}}
    (child.run_dir / REPORT_FILE).write_text(json.dumps(older))

    view = CompareView()
    qtbot.addWidget(view, before_close_func=lambda v: v.shutdown())
    view.resize(1280, 800)
    view.show()
    with qtbot.waitSignal(view.loaded, timeout=30000):  # the reports are read in the background
        view.set_runs([parent, child])
    rows = _rows(view)
    assert rows["Verdict"][0] == ("Better than the base model on 41 of 50 held-out examples (by token F1); "
                                  "worse on 4.")
    assert rows["Verdict"][1] == "The tuned model fits the held-out data worse than the base (25% higher loss)."
    assert rows["token F1 (base → tuned)"] == ["0.25 → 0.8", "–"]
    assert rows["perplexity (base → tuned)"] == ["7.389 → 4.482", "7.389 → 12.18"]
    assert view.quality.isVisible() and view.quality.accessibleName()

    (child.run_dir / REPORT_FILE).unlink()
    with qtbot.waitSignal(view.loaded, timeout=30000):
        view.set_runs([child, parent])
    assert _rows(view)["Verdict"][0] == "Not checked yet"


def test_the_runs_files_are_read_off_the_gui_thread_while_it_says_loading(qtbot, library, monkeypatch):
    """Opening the comparison reads metrics, events, configs and quality.json on the worker thread; until
    they are in, the view says it is loading and offers nothing that needs them."""
    import threading

    import studio.library.compare_view as compare_view

    read_in: dict[str, list[threading.Thread]] = {"runs": [], "reports": []}
    release = threading.Event()
    real_compare, real_report = compare_view.compare_runs, compare_view.load_report

    def compare_runs(runs, axis="step"):
        read_in["runs"].append(threading.current_thread())
        release.wait(10)
        return real_compare(runs, axis)

    def load_report(run_dir):
        read_in["reports"].append(threading.current_thread())
        return real_report(run_dir)

    monkeypatch.setattr(compare_view, "compare_runs", compare_runs)
    monkeypatch.setattr(compare_view, "load_report", load_report)
    view = CompareView()
    qtbot.addWidget(view, before_close_func=lambda v: v.shutdown())
    view.resize(1280, 800)
    view.show()
    view.set_runs([library.parent, library.child])
    try:
        qtbot.waitUntil(lambda: bool(read_in["runs"]), timeout=10000)
        assert view.loading and view.banner.isVisible() and view.banner.title.text() == "Loading…"
        assert not view.new_run_button.isEnabled() and view.quality.rowCount() == 0
        assert view.title.text() == f"Compare {library.parent.name} {library.parent.version}, " \
                                    f"{library.child.name} {library.child.version}"
    finally:
        with qtbot.waitSignal(view.loaded, timeout=20000):
            release.set()
    assert read_in["runs"] and len(read_in["reports"]) == 2
    assert all(thread is not threading.main_thread() for thread in read_in["runs"] + read_in["reports"])
    assert not view.banner.isVisible() and view.new_run_button.isEnabled()
    assert _rows(view)["Verdict"] == ["Not checked yet", "Not checked yet"]
    assert len(view.plot.getPlotItem().listDataItems()) == 4

    with qtbot.waitSignal(view.loaded, timeout=20000):  # one run is not a comparison: said once read
        view.set_runs([library.parent])
    assert "compares 2 to 5" in view.banner.title.text() and view.banner.get_help.isVisible()
    assert not view.new_run_button.isEnabled()
