"""Fixtures for the dashboard tests: a dashboard that cleans up after itself, and a recorded real run."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.engine.events import Event, parse_event
from studio.monitor.dashboard import DashboardPage
from studio.monitor.notifications import NotificationSettings, Notifier

RECORDED = Path(__file__).parent / "data" / "recorded-run.jsonl"


def recorded_events() -> list[Event]:
    """The events of a real 40-step run of the tiny model (evaluations every 5, checkpoints every 10)."""
    return [parse_event(line) for line in RECORDED.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def dashboard(qtbot) -> Iterator[DashboardPage]:
    page = DashboardPage(notifier=Notifier(NotificationSettings()))
    qtbot.addWidget(page, before_close_func=lambda w: w.shutdown())
    page.resize(1280, 900)
    page.show()
    yield page
    supervisor = page.supervisor
    if supervisor is not None and supervisor.running():  # a test that failed mid-run: end its worker
        supervisor.kill()
        supervisor.wait(timeout=30)
    for thread in page._waiters:
        thread.join(timeout=30)
    page.shutdown()
    assert not page.is_watching()


@pytest.fixture
def recorded() -> list[Event]:
    return recorded_events()


@pytest.fixture
def recorded_run_dir(tmp_path: Path) -> Path:
    run_dir = tmp_path / "runs" / recorded_events()[0].run_id
    run_dir.mkdir(parents=True)
    shutil.copy(RECORDED, run_dir / "events.jsonl")
    return run_dir


@pytest.fixture
def slow_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each step sleeps a little, so a live run is still going when the test clicks or presses keys."""
    monkeypatch.setenv("STUDIO_TEST_FAULTS", "sleep_per_step=0.2")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
