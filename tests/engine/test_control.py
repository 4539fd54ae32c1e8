"""Control commands: known commands parse, anything else is ignored rather than fatal."""

from __future__ import annotations

import pytest

from studio.engine.control import COMMANDS, ControlCommand, parse_command


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_round_trips(name):
    command = ControlCommand(name, {"action": "rollback"} if name == "anomaly_action" else {})
    assert parse_command(command.to_json()) == command


@pytest.mark.parametrize("line", ["", "nope", "[]", '{"command": "explode"}', '{"args": {}}'])
def test_unknown_or_malformed_lines_are_ignored(line):
    assert parse_command(line) is None


def test_non_mapping_args_become_empty():
    assert parse_command('{"command": "pause", "args": [1]}') == ControlCommand("pause", {})
