"""Benchmark: is the dashboard still responsive while a run streams events into it?

1. A loss history of 100,000 points is loaded, then zoomed and panned: frame time with Studio's curve
   settings (auto downsampling, clip to view, 1-pixel pen) against the same curve without them.
2. A thread feeds 50 events per second (as the supervisor's reader thread does: JSON lines into the bridge)
   for --seconds while a 10 ms QTimer measures event-loop lag; targets: p99 lag < 50 ms and at most
   20 chart redraws per second.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/gui_responsiveness.py [--seconds 60] [--history 100000]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import threading
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("STUDIO_HOME", tempfile.mkdtemp(prefix="studio-bench-"))

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from studio.engine.events import Anomaly, Checkpoint, Eval, Progress
from studio.monitor.charts import MAX_REDRAWS_PER_S
from studio.monitor.dashboard import DashboardPage
from studio.monitor.notifications import NotificationSettings, Notifier

LAG_TARGET_MS = 50.0
TICK_MS = 10
RATE = 50


def loss_at(step: int, rng: random.Random) -> float:
    return 2.0 + 8.0 * math.exp(-step / 20000) + rng.gauss(0, 0.15)


def load_history(page: DashboardPage, points: int) -> None:
    rng = random.Random(0)
    total = points * 2
    for step in range(1, points + 1):
        page.buffers.apply(Progress(run_id="bench", step=step, total_steps=total, loss=loss_at(step, rng),
                                    lr=2e-4, tokens_per_s=900 + rng.gauss(0, 40)))
        if step % 5000 == 0:
            page.buffers.apply(Eval(run_id="bench", step=step, eval_loss=loss_at(step, rng) + 0.1))
            page.buffers.apply(Checkpoint(run_id="bench", step=step, path="-"))


def frame_times(app: QApplication, page: DashboardPage, points: int) -> dict[bool, list[float]]:
    """Zoom and pan over the loss chart, with Studio's curve settings (True) and without (False).

    Each frame is a full render of the chart; the two settings alternate so machine noise hits both alike.
    """
    plot = page.charts.loss_plot.getPlotItem()
    times: dict[bool, list[float]] = {True: [], False: []}
    for fast in (False, True) * 4:  # ends on Studio's settings, which the live phase then uses
        for curve in page.charts.curves.values():
            curve.setDownsampling(ds=1, auto=fast, method="peak")
            curve.setClipToView(fast)
        for i in range(8):
            span = points / (1 + (i % 4) * 3)  # the whole run, then zoomed in, panning along
            start = (i * 7919) % max(1, int(points - span) + 1)
            t0 = time.perf_counter()
            plot.setXRange(start, start + span, padding=0)
            page.charts.loss_plot.viewport().repaint()  # the frame a user waits for after a zoom or pan
            times[fast].append((time.perf_counter() - t0) * 1000)
            app.processEvents()
    plot.enableAutoRange()
    return times


def feed(page: DashboardPage, seconds: float, first_step: int, stop: threading.Event) -> int:
    """On a thread, like the supervisor: one JSON line every 1/RATE s into the bridge."""
    rng = random.Random(1)
    sent, step = 0, first_step
    t0 = time.perf_counter()
    while not stop.is_set() and time.perf_counter() - t0 < seconds:
        step += 1
        if sent % 200 == 199:
            event = Anomaly(run_id="bench", anomaly="loss_spike", severity="warning", step=step,
                            message="The loss jumped.", evidence={"loss": 9.0}, actions=["rollback"])
        elif sent % 50 == 49:
            event = Eval(run_id="bench", step=step, eval_loss=loss_at(step, rng))
        else:
            event = Progress(run_id="bench", step=step, total_steps=first_step * 2, loss=loss_at(step, rng),
                             lr=2e-4, tokens_per_s=900.0, elapsed_s=time.perf_counter() - t0, eta_s=600.0,
                             eta_interval_s=(500.0, 700.0), mem={"rss": 1.5e9})
        page.bridge.feed_line(event.to_json())
        sent += 1
        time.sleep(max(0.0, t0 + sent / RATE - time.perf_counter()))
    return sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--history", type=int, default=100_000)
    args = parser.parse_args()

    app = QApplication.instance() or QApplication(sys.argv)
    page = DashboardPage(notifier=Notifier(NotificationSettings(do_not_disturb=True)))
    page.resize(1280, 900)
    page.show()
    app.processEvents()

    t0 = time.perf_counter()
    load_history(page, args.history)
    page.charts.redraw()
    app.processEvents()
    print(f"history: {args.history:,} loss points loaded and drawn in {time.perf_counter() - t0:.2f} s")
    frames = frame_times(app, page, args.history)
    fast, slow = frames[True], frames[False]
    fast_med, slow_med = statistics.median(fast), statistics.median(slow)
    print(f"zoom/pan frame, {args.history:,} points: median {fast_med:.1f} ms, max {max(fast):.1f} ms "
          f"(same chart without downsampling/clip-to-view: median {slow_med:.1f} ms, "
          f"ratio {slow_med / fast_med:.2f})")
    page.charts.set_total_steps(args.history * 2)

    lags: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        lags.append(max(0.0, (now - last[0]) * 1000 - TICK_MS))
        last[0] = now

    probe = QTimer()
    probe.setInterval(TICK_MS)
    probe.timeout.connect(tick)
    redraws_before = page.charts.redraw_count
    page.charts.start()
    page._refresh_timer.start()  # as when a run is live
    stop = threading.Event()
    result: dict[str, int] = {}
    feeder = threading.Thread(target=lambda: result.update(sent=feed(page, args.seconds, args.history, stop)))
    probe.start()
    start = time.perf_counter()
    feeder.start()
    while feeder.is_alive():
        app.processEvents()
        time.sleep(0.001)
    app.processEvents()
    elapsed = time.perf_counter() - start
    probe.stop()
    redraws = page.charts.redraw_count - redraws_before
    page.shutdown()
    lags.sort()
    p99 = lags[int(0.99 * (len(lags) - 1))]
    print(f"live feed: {result['sent']:,} events in {elapsed:.1f} s ({result['sent'] / elapsed:.1f}/s) into "
          f"{len(page.buffers.series['loss']):,} loss points")
    print(f"event-loop lag: p50 {statistics.median(lags):.1f} ms, p99 {p99:.1f} ms, max {lags[-1]:.1f} ms "
          f"(target p99 < {LAG_TARGET_MS:.0f} ms)")
    print(f"chart redraws: {redraws} in {elapsed:.1f} s = {redraws / elapsed:.1f}/s "
          f"(limit {MAX_REDRAWS_PER_S}/s)")
    ok = p99 < LAG_TARGET_MS and redraws / elapsed <= MAX_REDRAWS_PER_S + 0.5
    print("PASS" if ok else "FAIL")
    page.deleteLater()
    app.processEvents()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
