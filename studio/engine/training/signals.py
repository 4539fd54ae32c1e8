"""SIGTERM and SIGINT become a "stop" command, so a signal ends a run exactly like the Stop button:
the current step finishes, a checkpoint is written, and the worker exits 130.
"""

from __future__ import annotations

import signal
from types import FrameType

from studio.engine.control import ControlCommand
from studio.engine.training.control_channel import ControlChannel


def install_stop_handlers(channel: ControlChannel) -> None:
    def _handler(signum: int, _frame: FrameType | None) -> None:
        channel.put(ControlCommand("stop", {"reason": signal.Signals(signum).name}))

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _handler)
