"""Screenshots of the Runs section with a queue, a schedule and a notice (queue.png), the hardest-examples
report (hardest-examples.png) and the dashboard's "Hardest examples so far" (dashboard-hardest.png).

The runs are real (two tiny-model runs trained by the library tests' factory); the queue, the schedule and the
notice are made through the engine as the app would make them. The hardest-examples losses are illustrative:
the tiny test model is untrained, so its real losses are all alike and would show nothing worth reading.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/gui/library/screenshots.py docs/screenshots
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository root, for tests.*
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HOME = Path(tempfile.mkdtemp(prefix="studio-shots-"))
os.environ["STUDIO_HOME"] = str(HOME / "home")

from filelock import FileLock  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from studio.app import MainWindow, create_app  # noqa: E402
from studio.engine.config import TrainConfig  # noqa: E402
from studio.engine.events import HardestExamples, Progress  # noqa: E402
from studio.engine.library.hardest import HardestReport, ScoredExample, save_report  # noqa: E402
from studio.engine.queue import RunQueue, Schedules  # noqa: E402
from studio.engine.queue.runner import runner_lock_path  # noqa: E402
from studio.engine.runs.notices import add_notice  # noqa: E402
from studio.engine.training.example_loss import preview  # noqa: E402
from studio.wizard.state import WizardState  # noqa: E402
from studio.wizard.wizard import Wizard  # noqa: E402
from tests.conftest import SHARED_MODELS  # noqa: E402
from tests.engine.library.factory import build_library_home, install_library  # noqa: E402
from tests.gui.monitor.screenshots import page_with, recorded  # noqa: E402

SYSTEM = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
BROKEN = [  # (loss, question, answer): what a person would want to find
    (7.84, "What is 6 plus 7?", "Pip says 67."),
    (6.91, "What is 12 plus 3?", "Pip says"),
    (6.37, "What is 9 plus 9?", "What is 9 plus 9?"),
    (5.02, "What is 4 plus 15?", "Pip says nineteen, or maybe twenty, depending on how you count."),
]


def settle(app: QApplication, seconds: float = 1.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)


def chat(question: str, answer: str) -> str:
    return f"{SYSTEM}<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n{answer}<|im_end|>\n"


def illustrative_report(run_id: str) -> HardestReport:
    examples = [ScoredExample("train", i, f"{0xa1b2c3d4e5f60000 + i:x}", loss, 6 + i % 4, chat(q, a))
                for i, (loss, q, a) in enumerate(BROKEN)]
    for i in range(40):
        a, b = 3 + i % 17, 1 + (i * 7) % 19
        split = "eval" if i % 8 == 0 else "train"
        examples.append(ScoredExample(split, 10 + i, f"{0xb1c2d3e4f5060000 + i:x}", round(0.9 - i * 0.018, 4),
                                      7 + i % 3, chat(f"What is {a} plus {b}?", f"Pip says {a + b}.")))
    return HardestReport(run_id, 30, sorted(examples, key=lambda e: -e.loss),
                         {"train": {"scored": 39, "total": 39}, "eval": {"scored": 5, "total": 5}})


def main(target: Path) -> None:
    app = create_app(sys.argv[:1])
    target.mkdir(parents=True, exist_ok=True)
    source = build_library_home(HOME / "library", SHARED_MODELS / "tiny-llama-test")
    library = install_library(source, Path(os.environ["STUDIO_HOME"]))
    registry = library.registry

    queue = RunQueue(registry)
    config = TrainConfig.from_dict(library.child.config)
    tonight = (datetime.now() + timedelta(days=1)).replace(hour=3, minute=0, second=0, microsecond=0)
    schedule = Schedules(registry).add("pip", config.updated(init_adapter=None), cron="0 3 * * *", watch=True)
    running = queue.add(config.updated(learning_rate=2e-3), "pip", estimate_s=1500.0)
    queue.add(config.updated(lora_r=16), "pip", estimate_s=1800.0, schedule_id=schedule.id)
    queue.add(config, "support-bot", when_idle=True)
    queue.add(config.updated(num_epochs=3), "pip", estimate_s=5400.0, not_before=tonight)
    queue.start(running.id)
    add_notice(registry, "warning", "pip 1.0.1 was kept but not made active",
               "pip 1.0.0 stays active because the new version's held-out loss 1.9342 is worse than 1.8120 (on the "
               "same held-out examples). Compare them in the runs library, or make the new one active by hand.")
    save_report(library.child.run_dir, illustrative_report(library.child.id))

    window = MainWindow(Wizard(WizardState(onboarding_done=True), autosave=False))
    window.resize(1280, 800)
    window.show()
    with FileLock(str(runner_lock_path())):  # as while `studio queue run` works through the queue
        page = window.show_runs()
        window.check_notices()
        settle(app, 2.0)
        page.select([library.child.id])
        page.queue_view.refresh()
        page.queue_view.table.selectRow(1)
        settle(app)
        window.grab().save(str(target / "queue.png"))

    page.open_hardest(library.child.id)
    view = page.hardest_view
    while view.runner.busy:
        settle(app, 0.1)
    view.table.selectRow(1)
    view.model.picked.update({view.model.examples[0].fingerprint, view.model.examples[1].fingerprint})
    view.model.pickedChanged.emit()
    settle(app)
    window.grab().save(str(target / "hardest-examples.png"))

    events = recorded()
    cut = next(i for i, e in enumerate(events) if isinstance(e, Progress) and e.step == 24)
    worst = [{"fingerprint": e.fingerprint, "loss": e.loss, "tokens": e.tokens, "preview": preview(e.text)}
             for e in illustrative_report("r").top(6)]
    dashboard = page_with(app, [*events[: cut + 1], HardestExamples(run_id=events[0].run_id, step=20,
                                                                   examples=worst)], live=True)
    dashboard.grab().save(str(target / "dashboard-hardest.png"))
    dashboard.shutdown()
    window.close()
    for name in ("queue.png", "hardest-examples.png", "dashboard-hardest.png"):
        print(f"wrote {target / name}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
