"""The window's own small settings (has the tour been seen), in STUDIO_HOME/app-settings.json.

Like the wizard's state and the electricity settings, a JSON file in Studio's data folder, written
atomically; tests get an empty home, so the tour never shows there unless a test starts it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from studio.engine.paths import studio_home

log = logging.getLogger(__name__)

SETTINGS_FILE = "app-settings.json"


def settings_path() -> Path:
    return studio_home() / SETTINGS_FILE


def load() -> dict[str, Any]:
    """The saved settings; none when the file is missing or damaged (never a start-up error)."""
    try:
        data = json.loads(settings_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("Ignoring damaged app settings %s: %s", settings_path(), exc)
        return {}
    return data if isinstance(data, dict) else {}


def update(**values: Any) -> None:
    """Change some settings and keep the others."""
    data = {**load(), **values}
    target = settings_path()
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    tmp.replace(target)
