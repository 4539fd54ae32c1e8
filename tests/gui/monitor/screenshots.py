"""Screenshots of the dashboard (mid-run, with an anomaly banner, and finished) for the docs.

Built from the recorded real run in data/recorded-run.jsonl, fed through the bridge as a live run would be.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/gui/monitor/screenshots.py docs/screenshots
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("STUDIO_HOME", tempfile.mkdtemp(prefix="studio-shots-"))

from PySide6.QtWidgets import QApplication

from studio.engine.events import Anomaly, Event, Progress, Recovery, Started, parse_event
from studio.monitor.dashboard import DashboardPage
from studio.monitor.notifications import NotificationSettings, Notifier
from studio.monitor.system_stats import SystemSample

RECORDED = Path(__file__).parent / "data" / "recorded-run.jsonl"


def recorded() -> list[Event]:
    return [parse_event(line) for line in RECORDED.read_text(encoding="utf-8").splitlines() if line.strip()]


def page_with(app: QApplication, events: list[Event], live: bool) -> DashboardPage:
    page = DashboardPage(notifier=Notifier(NotificationSettings(do_not_disturb=True)))
    page.resize(1280, 900)
    page.show()
    if live:
        page.bridge.set_sender(lambda command: True)  # the controls of a live run, without a worker
        for _ in range(12):  # a few real machine readings for the system chart
            sample = page.sampler.sample()
            page.buffers.add_system(sample.t, asdict(sample))
            time.sleep(0.05)
    page.bridge.feed_events(events, live=live)
    if live:  # the energy meter after the run's minutes: a reading a second, the CPU busy as training keeps it
        elapsed = max((e.elapsed_s for e in events if isinstance(e, Progress)), default=0.0)
        for second in range(round(elapsed) + 1):
            page.energy.add_sample(SystemSample(t=float(second), cpu_percent=95.0,
                                                ram_percent=40.0, ram_used_bytes=4e9))
    page.charts.redraw()
    for _ in range(5):
        app.processEvents()
    page._refresh_if_dirty()
    app.processEvents()
    return page


def main(target: Path) -> None:
    app = QApplication.instance() or QApplication(sys.argv)
    target.mkdir(parents=True, exist_ok=True)
    events = recorded()
    cut = next(i for i, e in enumerate(events) if isinstance(e, Progress) and e.step == 24)
    mid_run = events[: cut + 1]

    shots = {"dashboard-running.png": page_with(app, mid_run, live=True)}

    started = next(e for e in mid_run if isinstance(e, Started))
    ask = replace(started, config={**started.config, "anomaly_mode": "ask"})
    last = mid_run[-1]
    assert isinstance(last, Progress)
    spike = replace(last, step=25, loss=last.loss * 1.9 if last.loss else 20.0)
    anomaly = Anomaly(
        run_id=last.run_id, anomaly="loss_spike", severity="warning", step=25,
        message="The loss suddenly jumped to almost twice its recent level. One bad batch can do this; "
                "if it keeps happening, the learning rate is too high.",
        evidence={"loss": spike.loss, "recent_median": last.loss, "robust_z": 11.4},
        actions=["accept", "rollback", "lower_lr", "stop", "ignore"],
    )
    recovery = Recovery(run_id=last.run_id, action="tighten_grad_clip", step=18,
                        message="Gradients grew 12x above their usual size, so Studio tightened clipping.",
                        before={"max_grad_norm": 1.0}, after={"max_grad_norm": 0.5})
    with_anomaly = [ask if e is started else e for e in mid_run[:-4]] + [recovery, *mid_run[-4:], spike, anomaly]
    shots["dashboard-anomaly.png"] = page_with(app, with_anomaly, live=True)
    shots["dashboard-completed.png"] = page_with(app, events, live=False)

    for name, page in shots.items():
        page.grab().save(str(target / name))
        print(target / name)
        page.shutdown()
        page.deleteLater()
    app.processEvents()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
