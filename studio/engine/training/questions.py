"""The anomaly guard's "ask" mode in a worker: pause the run, wait for the user's answer, go on with it."""

from __future__ import annotations

import sys
from collections.abc import Callable

from studio.engine.anomalies import ACTION_LABELS, Decision
from studio.engine.control import ControlCommand
from studio.engine.events import Paused, Resumed
from studio.engine.runs.registry import Registry
from studio.engine.training.control_channel import ControlChannel
from studio.engine.training.heartbeats import Heartbeats
from studio.engine.training.sinks import EventEmitter

ANSWER_POLL_S = 0.25


def ask_user(
    run_id: str, emitter: EventEmitter, channel: ControlChannel, beats: Heartbeats, registry: Registry
) -> Callable[[Decision], str]:
    """"ask" mode: pause the run, wait for the user's `anomaly_action`, and hand back its key."""

    def choose(decision: Decision) -> str:
        emitter.emit(Paused, step=decision.step, released=False, reason="anomaly")
        beats.set_phase("paused")
        registry.set_status(run_id, "paused")
        try:
            return await_choice(channel)
        finally:
            registry.set_status(run_id, "running")
            beats.set_phase("training")
            emitter.emit(Resumed, step=decision.step)

    return choose


def await_choice(channel: ControlChannel) -> str:
    """The first `anomaly_action` naming a key of ACTION_LABELS (a `stop` answers "stop"); other commands
    wait in the channel until the question is settled."""
    deferred: list[ControlCommand] = []
    try:
        while True:
            command = channel.get(timeout=ANSWER_POLL_S)
            if command is None:
                continue
            if command.command == "stop":
                return "stop"
            if command.command != "anomaly_action":
                deferred.append(command)
            elif command.args.get("action") in ACTION_LABELS:
                return str(command.args["action"])
            else:
                sys.stderr.write(f"ignored an anomaly_action with an unknown action: {command.args}\n")
    finally:
        for command in deferred:
            channel.put(command)
