"""Studio killed while a run trains on a rented GPU, then started again (issue 19), against the fake RunPod
whose pods are the real run agent on 127.0.0.1 (tests/engine/cloud/fake_runpod.py).

The run is started as Studio starts it: a Studio process whose dashboard supervises the cloud runner (as
after the wizard's Launch), and that process is SIGKILLed. What really happens then: the runner lives
in a session of its own, an end of its stdin is not a stop and its stdout switches itself off, so it goes on
training and billing. A restarted Studio lists it as still training on the rented GPU and Watch follows it.
When the runner dies too (the login session ends and takes every process with it), the run is listed
interrupted, its machine possibly still billing, with Reattach (the cloud runner again, on the same machine,
to the end) and Terminate the machine (the checkpoints copied back are kept, the run is stopped)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from PySide6.QtWidgets import QLabel, QMessageBox

from studio.engine.cloud import save_api_key
from studio.engine.cloud.cloud_state import load_launch
from studio.engine.cloud.offers import OfferEstimate
from studio.engine.config import TrainConfig
from studio.engine.runs.folders import events_file, final_adapter_dir
from studio.engine.runs.registry import Registry
from studio.engine.training.checkpoints import latest_good
from studio.monitor.state import RunStatus
from tests.engine.cloud.fake_runpod import GOOD_KEY, fake_runpod_pods

WINDOWS = pytest.mark.skipif(sys.platform == "win32", reason="the bundle's launch script is a bash script")

SLOW = 300_000  # ms: the pod loads the tiny model on a busy 2-core machine
ROOT = Path(__file__).resolve().parents[3]

# Studio, as the wizard's Launch leaves it on a rented GPU: its dashboard supervising the cloud runner (reading
# its stdout, holding its stdin), in a process of its own that the test kills.
STUDIO = """
import sys
from pathlib import Path
from PySide6.QtWidgets import QApplication
from studio.monitor.dashboard import DashboardPage
from studio.monitor.notifications import NotificationSettings, Notifier
from tests.gui.monitor.test_rented_restart import rented_choice
app = QApplication([])
config, offer = rented_choice(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))
page = DashboardPage(notifier=Notifier(NotificationSettings()))
run_id = page.start_run(config, "restart", offer=offer, budget=5.0)
print(run_id, page.supervisor.pid, flush=True)
app.exec()
"""


@pytest.fixture
def runpod(monkeypatch, tmp_path, studio_home):
    with fake_runpod_pods(monkeypatch, tmp_path) as api:
        save_api_key("runpod", GOOD_KEY)
        yield api


@pytest.fixture
def studio_process() -> Iterator[list[subprocess.Popen[str]]]:
    """Studio processes started by a test; any left (and their runners) are ended when it ends."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


@pytest.fixture
def runners() -> Iterator[list[int]]:
    """Cloud runners a test left behind (it failed mid-run): killed at the end."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def rented_choice(model: Path, data: Path, max_steps: int) -> tuple[TrainConfig, OfferEstimate]:
    """A run of the tiny model on a rented RTX 4090 (on-demand, $0.34 per hour), with a checkpoint every 3 steps."""
    from studio.engine.cloud.offers import Offer
    from studio.engine.cloud.providers import GpuType, Price
    from studio.engine.planner import Interval
    from tests.gui.monitor.test_live_run import tiny_config

    config = tiny_config(model, data).updated(max_steps=max_steps, checkpoint_every_steps=3, eval_fraction=0.0,
                                              score_examples=False, hardest_top_n=0)
    gpu = GpuType("NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 4090", 24.0)
    offer = OfferEstimate(Offer("runpod", gpu, Price(0.34, False, "community")), config,
                          Interval(900, 1000, 1100), Interval(400, 600, 1200), Interval(0.04, 0.06, 0.11))
    return config, offer


def start_studio(model: Path, data: Path, max_steps: int, started: list[subprocess.Popen[str]],
                 runners: list[int]) -> tuple[subprocess.Popen[str], Path, int]:
    """Studio launching the rented run (budget $5); returns its process, the run's folder and the runner's pid."""
    studio = subprocess.Popen([sys.executable, "-c", STUDIO, str(model), str(data), str(max_steps)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT,
                              env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    started.append(studio)
    assert studio.stdout is not None
    line = studio.stdout.readline().split()
    assert len(line) == 2, f"Studio did not start the run: {line}"
    runners.append(int(line[1]))
    record = Registry().get(line[0])
    assert record is not None
    return studio, record.run_dir, int(line[1])


def remote_step(run_dir: Path) -> int:
    """The last training step the runner has passed on into the run's record."""
    step = 0
    path = events_file(run_dir)
    if not path.exists():
        return 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if data.get("event") == "progress" and data.get("cloud_pod"):
            step = max(step, int(data.get("step") or 0))
    return step


def shown(panel) -> str:
    return " ".join(label.text() for label in panel.findChildren(QLabel) if label.isVisible())


def restarted(qtbot, make_window):
    """Studio started again: the unfinished runs are offered first."""
    window = make_window(opened=True)
    panel = window.resumable
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.runs and panel.isVisible() and shown_rows(panel),
                    timeout=120_000)
    return window


def shown_rows(panel) -> bool:
    """Every row's buttons on screen (a row added to a shown panel appears on the next turn of the loop)."""
    buttons = [button for row in panel.buttons.values() for button in row.values()]
    return bool(buttons) and all(button.isVisible() for button in buttons)


@pytest.mark.slow
@WINDOWS
def test_studio_killed_the_runner_trains_on_watch_follows_then_reattach_finishes_on_the_same_machine(
        qtbot, click, make_window, runpod, studio_process, runners, tiny_model_dir: Path, tiny_chat_file: Path,
        slow_steps, monkeypatch):
    # At least 20 s of training: it must outlast two restarts of Studio before it completes.
    monkeypatch.setenv("STUDIO_TEST_FAULTS", "sleep_per_step=0.5")
    studio, run_dir, runner = start_studio(tiny_model_dir, tiny_chat_file, 40, studio_process, runners)
    run_id = run_dir.name
    qtbot.waitUntil(lambda: remote_step(run_dir) >= 2, timeout=SLOW)

    # Studio is killed. Its runner is in a session of its own (so neither a signal to Studio's process group nor
    # the end of its terminal reaches it): it goes on training, on the same machine.
    assert os.getsid(runner) == runner != os.getsid(studio.pid)
    studio.send_signal(signal.SIGKILL)
    studio.wait(timeout=30)
    killed_at = remote_step(run_dir)
    qtbot.waitUntil(lambda: remote_step(run_dir) > killed_at, timeout=SLOW)
    assert alive(runner)
    pod = load_launch(run_dir).pod_id
    assert pod is not None and runpod.billing() == [pod]

    # Studio starts again: the run is still training on the rented GPU, billing; Watch follows it, with its cost.
    window = restarted(qtbot, make_window)
    panel = window.resumable
    assert [record.id for record in panel.records] == [run_id]
    assert ("still training in the background on a rented GPU: GeForce RTX 4090 on RunPod, billing $0.34 per hour"
            in shown(panel)), shown(panel)
    assert set(panel.buttons[run_id]) == {"open"} and panel.buttons[run_id]["open"].text() == "Watch"
    click(panel.buttons[run_id]["open"])
    dashboard = window.dashboard
    assert dashboard is not None and window.stack.currentWidget() is dashboard
    assert dashboard.rented_label.text().startswith("Rented GPU: GeForce RTX 4090 on RunPod (on-demand")
    watched_from = remote_step(run_dir)
    qtbot.waitUntil(lambda: dashboard.state.step > watched_from and
                    dashboard.energy.labels["Cost"].text().startswith("$"), timeout=SLOW)
    assert dashboard.energy.title() == "Rented GPU cost so far"
    assert "pause" in dashboard.controls.enabled_buttons()  # its commands go to the run's folder

    # Now the runner dies too (the whole session went): the machine is still there, billing.
    os.kill(runner, signal.SIGKILL)
    qtbot.waitUntil(lambda: not alive(runner), timeout=30_000)
    dashboard.shutdown()
    assert runpod.billing() == [pod]

    # Studio starts again: interrupted, the machine may still be billing; Reattach goes on on the same machine.
    window = restarted(qtbot, make_window)
    panel = window.resumable
    assert Registry().get(run_id).status == "interrupted"
    assert ("interrupted: Studio lost hold of its rented GPU (GeForce RTX 4090 on RunPod), which may still be "
            "billing ($0.34 per hour" in shown(panel)), shown(panel)
    buttons = panel.buttons[run_id]
    assert buttons["reattach"].text() == "Reattach" and buttons["terminate"].text() == "Terminate the machine"
    click(buttons["reattach"])
    dashboard = window.dashboard
    assert dashboard is not None and window.stack.currentWidget() is dashboard
    qtbot.waitUntil(lambda: dashboard.supervisor is not None, timeout=60_000)  # its history read, then launched
    qtbot.waitUntil(lambda: dashboard.state.status.finished, timeout=SLOW)
    assert dashboard.state.status is RunStatus.COMPLETED, dashboard.state.error or dashboard.state.crash
    qtbot.waitUntil(lambda: dashboard.supervisor is None, timeout=60_000)
    assert "Reattached to the rented machine" in events_file(run_dir).read_text(encoding="utf-8")

    # One machine from start to end, terminated; the adapter is in the library as a version of the run.
    launch = load_launch(run_dir)
    assert launch.pods == [pod] and runpod.created == [pod]
    assert runpod.terminated == [pod] and runpod.billing() == []
    assert launch.imported_run_id is not None
    record = Registry().get(launch.imported_run_id)
    assert record is not None and record.status == "completed" and record.parent_id == run_id
    assert (final_adapter_dir(record.run_dir) / "adapter_model.safetensors").is_file()
    library = window.show_runs()
    qtbot.waitUntil(lambda: record.id in library.rows and not library.loader.busy, timeout=30_000)
    assert not window.resumable.records


@pytest.mark.slow
@WINDOWS
def test_studio_and_its_runner_killed_terminate_the_machine_keeps_the_checkpoints(
        qtbot, click, make_window, runpod, studio_process, runners, tiny_model_dir: Path, tiny_chat_file: Path,
        slow_steps):
    studio, run_dir, runner = start_studio(tiny_model_dir, tiny_chat_file, 400, studio_process, runners)
    run_id = run_dir.name
    qtbot.waitUntil(lambda: latest_good(run_dir) is not None, timeout=SLOW)  # a checkpoint came back

    # Studio and every process of its session are killed: nobody holds the machine any more.
    studio.send_signal(signal.SIGKILL)
    os.kill(runner, signal.SIGKILL)
    studio.wait(timeout=30)
    qtbot.waitUntil(lambda: not alive(runner), timeout=30_000)
    pod = load_launch(run_dir).pod_id
    assert pod is not None and runpod.billing() == [pod]
    kept = latest_good(run_dir)
    assert kept is not None

    window = restarted(qtbot, make_window)
    panel = window.resumable
    assert "which may still be billing" in shown(panel), shown(panel)

    # The provider refuses (the key was changed meanwhile): a plain error with what to do, still billing.
    save_api_key("runpod", "rp_wrong_key_0000000000")
    steps: list[str] = []
    panel.tasks.statusChanged.connect(steps.append)
    with qtbot.waitSignal(panel.tasks.failed, timeout=120_000):
        click(panel.buttons[run_id]["terminate"])
        if panel.releasing:  # (unless the refusal came back already) the row waits for the answer
            assert not panel.buttons[run_id]["reattach"].isEnabled()
    assert steps[:1] == ["Terminating the rented machine…"] and not panel.releasing
    errors = [box for box in window.findChildren(QMessageBox) if box.objectName() == "errorDialog"
              and box.isVisible()]
    assert errors and errors[0].windowTitle() == "The machine could not be terminated"
    assert "What you can do:" in errors[0].text(), errors[0].text()  # the provider's refusal, with actions
    assert "The rented machine could not be terminated, so it may still be billing" in panel.notice.text()
    assert runpod.billing() == [pod] and Registry().get(run_id).status == "interrupted"
    errors[0].close()

    # With the right key: terminated, what it cost, the checkpoints kept and the run stopped.
    save_api_key("runpod", GOOD_KEY)
    qtbot.waitUntil(lambda: shown_rows(panel))  # the rows are listed anew
    with qtbot.waitSignal(panel.released, timeout=120_000) as done:
        click(panel.buttons[run_id]["terminate"])
    assert done.args[0].run_id == run_id and done.args[0].spent_usd > 0
    text = panel.notice.text()
    assert ": The machine is terminated ($0." in text and "the checkpoints copied back are kept" in text, text
    assert runpod.terminated == [pod] and runpod.billing() == []
    assert Registry().get(run_id).status == "stopped" and run_id not in {r.id for r in panel.records}
    assert latest_good(run_dir) == kept and kept.path.is_dir()
    launch = load_launch(run_dir)
    assert launch.pod_id is None and launch.state == "ended"
    library = window.library
    qtbot.waitUntil(lambda: run_id in library.rows and library.rows[run_id].run.status == "stopped"
                    and not library.loader.busy, timeout=30_000)


def test_the_list_says_which_rented_runs_may_be_billing(qtbot, studio_home: Path, tmp_path: Path):
    """Only a run whose machine may still be there gets Reattach and Terminate: one with a saved machine, or
    one killed while renting (release_machine looks that machine up by name); one whose machine was already
    terminated just resumes, on a new machine."""
    from studio.engine.cloud.cloud_state import CloudLaunch, save_launch
    from studio.monitor.resumable import ResumableRunsPanel

    registry = Registry()
    states = {"held": ("pod1", "running"), "renting": (None, "renting"), "ended": (None, "ended")}
    for run_id, (pod, state) in states.items():
        run_dir = tmp_path / run_id
        run_dir.mkdir()
        registry.create_run(run_id, run_id, TrainConfig(), run_dir)
        registry.set_status(run_id, "interrupted")
        save_launch(run_dir, CloudLaunch("runpod", "NVIDIA GeForce RTX 4090", False, "community", 5.0, 0.34,
                                         pod_id=pod, pod_started_at=time.time() - 3600 if pod else None,
                                         state=state))
    panel = ResumableRunsPanel(registry)
    qtbot.addWidget(panel)
    assert set(panel.buttons["held"]) == set(panel.buttons["renting"]) == {"reattach", "terminate", "open"}
    assert set(panel.buttons["ended"]) == {"resume", "open"}
    text = shown(panel) if panel.isVisible() else " ".join(label.text() for label in panel.findChildren(QLabel))
    assert text.count("which may still be billing ($0.34 per hour") == 2
    assert "($0.34 per hour, about $0.34 spent of the $5.00 budget)" in text  # an hour of the held machine
    assert "interrupted on a rented GPU (GeForce RTX 4090 on RunPod): the checkpoints copied back are safe" in text
    with qtbot.waitSignal(panel.resumeRequested) as blocker:
        panel.buttons["held"]["reattach"].click()
    assert blocker.args == ["held"]
