"""The `studio` entry point: commands are registered, help is fast, errors never show a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from studio.cli.main import app

runner = CliRunner()


def test_help_lists_the_foundation_commands():
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for command in ("doctor", "models", "plan"):
        assert command in result.stdout


def _studio(*args: str, home: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "STUDIO_HOME": home, "COLUMNS": "200"}, check=False)


def test_a_real_process_reports_errors_without_a_traceback(tmp_path):
    bad = _studio("plan", "--model", str(tmp_path), home=str(tmp_path / "home"))
    assert bad.returncode == 4
    assert "config.json" in bad.stderr and "Traceback" not in bad.stderr + bad.stdout


def test_a_corrupt_hardware_cache_in_a_real_process(tmp_path):
    home = tmp_path / "home"
    (home / "cache").mkdir(parents=True)
    (home / "cache" / "hardware.json").write_text('{"format": 1, "created": 1e18, "profile": [1, 2]}')
    result = _studio("doctor", "--json", home=str(home))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert any("damaged" in note for note in json.loads(result.stdout)["notes"])


def test_every_command_is_mapped_to_its_module():
    import typer.main

    from studio.cli.main import COMMANDS

    registered = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert registered == set(COMMANDS)


def test_a_command_imports_only_its_own_module():
    code = ("import sys; from studio.cli.main import build_app; build_app(['models', 'download', '--help']); "
            "print(sorted(m for m in sys.modules if m.startswith('studio.cli.') and m != 'studio.cli.main'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["['studio.cli.models',", "'studio.cli.output']"]


def test_a_mistyped_command_gets_typers_own_answer_with_every_command_known(tmp_path):
    result = _studio("modles", home=str(tmp_path / "home"))
    assert result.returncode == 2
    assert "No such command" in result.stderr and "Traceback" not in result.stderr
