"""The quality verdict on the completion card: is the tuned model better than its base, example by example?

When a run completes in the dashboard the check starts by itself in the background (a TaskRunner: the GUI
never waits on it), with its progress, a Cancel and a switch to stop doing it automatically. Then the
verdict in one sentence, the numbers base vs tuned, and the examples that got worse. A finished run opened
later shows its saved report, or a "Check now" button.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.engine.errors import StudioError
from studio.engine.library.quality import MetricScore, QualityReport, load_report
from studio.gui import app_settings
from studio.gui.glossary import explain_terms
from studio.gui.tasks import TaskRunner
from studio.gui.widgets import wrapped_label

AUTO_SETTING = "quality_after_training"
COLORS = {"better": "#1a7f37", "worse": "#cf222e", "same": "#9a6700", "unknown": "#59636e"}
ICONS = {"better": "▲", "worse": "▼", "same": "≈", "unknown": "?"}


def auto_check_enabled() -> bool:
    """Whether a completed run gets its quality check by itself (on unless the user switched it off)."""
    return bool(app_settings.load().get(AUTO_SETTING, True))


def _number(metric: MetricScore, value: float) -> str:
    if metric.key in {"exact_match", "tests_passed"}:
        return f"{value:.0%}"
    if metric.key == "perplexity":
        return f"{value:.2f}"
    return f"{value:.3f}"


def metrics_html(report: QualityReport) -> str:
    """The numbers base vs tuned, as a small table (older reports: loss and perplexity only)."""
    metrics = list(report.metrics)
    if not metrics and report.base and report.tuned:
        metrics = [MetricScore("loss", "held-out loss", report.base.loss, report.tuned.loss, False,
                               report.eval_examples),
                   MetricScore("perplexity", "perplexity", report.base.perplexity, report.tuned.perplexity, False,
                               report.eval_examples)]
    rows = "".join(
        f"<tr><td>{html.escape(m.label)}</td><td align='right'>{_number(m, m.base)}</td>"
        f"<td align='right'><b>{_number(m, m.tuned)}</b></td>"
        f"<td style='color:#59636e'>&nbsp;{'higher' if m.higher_is_better else 'lower'} is better</td></tr>"
        for m in metrics)
    return ("<table cellspacing='0' cellpadding='3'><tr><th align='left'>Measure</th><th>Base model</th>"
            f"<th>Tuned model</th><th></th></tr>{rows}</table>") if rows else ""


def _clip(text: object, limit: int = 240) -> str:
    value = " ".join(str(text).split())
    return html.escape(value if len(value) <= limit else value[: limit - 1] + "…")


def worse_html(example: dict[str, Any]) -> str:
    """One example that got worse: what was asked, both answers, and the metric that says so."""
    metric = str(example.get("metric", ""))
    shown = "{:.0%}" if metric == "tests passed" else "{:.3f}"
    scores = ""
    if isinstance(example.get("base_score"), int | float) and isinstance(example.get("tuned_score"), int | float):
        scores = (f"{html.escape(metric)}: base {shown.format(example['base_score'])} → "
                  f"tuned {shown.format(example['tuned_score'])}")
    parts = [f"<b>Prompt:</b> {_clip(example.get('prompt', ''))}"]
    if example.get("reference"):
        parts.append(f"<b>Expected:</b> {_clip(example['reference'])}")
    parts += [f"<b>Base model:</b> {_clip(example.get('base', '') or '(no answer)')}",
              f"<b>Tuned model:</b> {_clip(example.get('tuned', '') or '(no answer)')}"]
    if scores:
        parts.append(f"<span style='color:#59636e'>{scores}</span>")
    return "<br>".join(parts)


class QualityPanel(QFrame):
    """The quality check of one run: running (progress, Cancel), its verdict, or a button to run it.

    Signals:
        reportShown(object): a QualityReport is on screen (fresh or saved).
    """

    reportShown = Signal(object)  # noqa: N815 - Qt signal naming

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("qualityPanel")
        self.setStyleSheet("#qualityPanel { border-top: 1px solid #d0d7de; }")
        self.report: QualityReport | None = None
        self._run_id = ""
        self._run_dir: Path | None = None
        self.runner = TaskRunner(self)
        self.runner.statusChanged.connect(self._on_status)
        self.runner.finished.connect(self._on_done)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(self._on_cancelled)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 8, 0, 0)
        self.heading = QLabel("<b>Is it better than the base model?</b>")
        layout.addWidget(self.heading)
        self.status = wrapped_label()
        self.status.setAccessibleName("Quality check status")
        layout.addWidget(self.status)
        row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setAccessibleName("Quality check progress")
        self.progress.setMaximumWidth(360)
        self.runner.progressChanged.connect(lambda f: self.progress.setValue(int(f * 100)))
        row.addWidget(self.progress)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("Cancel the quality check")
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.cancel_button)
        self.check_button = QPushButton("Check now")
        self.check_button.setAccessibleName("Check the quality now")
        self.check_button.setToolTip("Compare the tuned model with its base model on the held-out examples "
                                     "(the examples it never trained on).")
        self.check_button.clicked.connect(self._check_now)
        row.addWidget(self.check_button)
        row.addStretch(1)
        self.auto = QCheckBox("Check automatically after each training")
        self.auto.setAccessibleName("Check quality automatically after each training")
        self.auto.setChecked(auto_check_enabled())
        self.auto.toggled.connect(lambda on: app_settings.update(**{AUTO_SETTING: bool(on)}))
        row.addWidget(self.auto)
        layout.addLayout(row)
        self.verdict = wrapped_label(selectable=True)
        self.verdict.setTextFormat(Qt.TextFormat.RichText)
        self.verdict.setAccessibleName("Quality verdict")
        layout.addWidget(self.verdict)
        self.metrics = QLabel()
        self.metrics.setAccessibleName("Quality measures, base and tuned")
        layout.addWidget(self.metrics)
        self.judge = wrapped_label()
        self.judge.setAccessibleName("The judge's opinion")
        layout.addWidget(self.judge)
        self.worse_title = QLabel()
        layout.addWidget(self.worse_title)
        self.worse_box = QVBoxLayout()
        layout.addLayout(self.worse_box)
        self.worse: list[QLabel] = []
        self._show_idle("")

    # ---- ways in ---------------------------------------------------------------------------------------

    def set_run(self, run_id: str, run_dir: Path | None) -> None:
        """The run this panel is about: its saved report if there is one, else a button to check it."""
        if self.runner.busy:
            self.runner.cancel()
        self._run_id, self._run_dir = run_id, run_dir
        report = load_report(run_dir) if run_dir is not None else None
        if report is not None:
            self.show_report(report)
        else:
            self._show_idle("Not checked yet: compare the tuned model with its base model on the examples it "
                            "never trained on.")

    def start(self) -> None:
        """Run the check in the background for the current run (progress and Cancel on screen)."""
        run_id = self._run_id

        def check(state: Any) -> QualityReport:
            from studio.engine.library.quality import evaluate_quality
            from studio.engine.runs.registry import Registry

            record = Registry().get(run_id)
            if record is None:
                raise StudioError(what="Studio cannot find this run in its library any more.",
                                  why=f"No run with the id {run_id} is registered.",
                                  actions=["Open the run from the library."], code="run_not_found")
            return evaluate_quality(record, task=state)

        self.report = None
        self._clear_result()
        self.status.setText("Checking the tuned model against the base model on the held-out examples…")
        self.progress.setValue(0)
        self._set_running(True)
        self.runner.start(check, "checking the model's quality")

    def skip(self, why: str) -> None:
        """No automatic check this time, and why in words (the button still runs one)."""
        self._show_idle(why)

    def cancel(self) -> None:
        self.runner.cancel()

    def shutdown(self) -> None:
        """Stop a running check (the page is going away or shows another run)."""
        self.runner.shutdown(timeout_ms=30_000)

    @property
    def running(self) -> bool:
        return self.runner.busy

    # ---- what is shown ---------------------------------------------------------------------------------

    def show_report(self, report: QualityReport) -> None:
        self.report = report
        self._set_running(False)
        self.check_button.setText("Check again")
        self.check_button.setAccessibleName("Check the quality again")
        self.status.setText(f"Checked on {report.eval_examples} held-out examples the model never trained on.")
        overall = report.overall
        self.verdict.setText(f"<span style='font-size:13pt; color:{COLORS.get(overall, COLORS['unknown'])}'>"
                             f"<b>{ICONS.get(overall, '?')} {html.escape(report.verdict)}</b></span>")
        self.metrics.setText(metrics_html(report))
        self.metrics.setVisible(bool(self.metrics.text()))
        self.judge.setText(report.judge.sentence if report.judge else "")
        self.judge.setVisible(report.judge is not None)
        self._fill_worse(report)
        explain_terms(self)
        self.reportShown.emit(report)

    def verdict_text(self) -> str:
        return self.report.verdict if self.report is not None else ""

    def _fill_worse(self, report: QualityReport) -> None:
        for label in self.worse:
            self.worse_box.removeWidget(label)
            label.deleteLater()
        self.worse = []
        examples = list(report.worse_examples)
        count = report.tally.worse if report.tally else 0
        if examples:
            more = f" (the {len(examples)} that changed most)" if count > len(examples) else ""
            self.worse_title.setText(f"<b>Examples that got worse{more}</b>")
        self.worse_title.setVisible(bool(examples))
        for index, example in enumerate(examples, start=1):
            label = wrapped_label(selectable=True)
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setText(worse_html(example))
            label.setAccessibleName(f"Example that got worse {index}")
            label.setStyleSheet("background: palette(alternate-base); padding: 6px; border-radius: 4px;")
            self.worse_box.addWidget(label)
            self.worse.append(label)

    def _clear_result(self) -> None:
        self.verdict.setText("")
        self.metrics.setText("")
        self.metrics.setVisible(False)
        self.judge.setVisible(False)
        self._fill_worse(QualityReport(self._run_id, "", 0, None, None))

    def _show_idle(self, text: str) -> None:
        self._set_running(False)
        self.report = None
        self._clear_result()
        self.check_button.setText("Check now")
        self.check_button.setAccessibleName("Check the quality now")
        self.status.setText(text)

    def _set_running(self, running: bool) -> None:
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self.check_button.setVisible(not running and bool(self._run_id))

    # ---- the task --------------------------------------------------------------------------------------

    def _check_now(self) -> None:
        if self._run_id and not self.runner.busy:
            self.start()

    def _on_status(self, text: str) -> None:
        self.status.setText(f"Checking quality: {text.lower() if text[:1].isupper() else text}…")

    def _on_done(self, report: object) -> None:
        if isinstance(report, QualityReport):
            self.show_report(report)

    def _on_failed(self, error: object) -> None:
        self._show_idle("")
        if isinstance(error, StudioError):
            self.status.setText(f"The quality check could not run: {error.what} {error.why}".strip())
        else:
            self.status.setText("The quality check could not run.")

    def _on_cancelled(self) -> None:
        self._show_idle("Quality check skipped. You can run it any time with Check now.")
