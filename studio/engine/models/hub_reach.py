"""Whether the Hugging Face Hub can be reached, and the one plain message when it cannot.

Shared by the Hub search (catalog) and the model download, and kept light: a command that only downloads
should not import the planner to say it is offline.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

from studio.engine.errors import StudioError


def check_hub_reachable(endpoint: str, timeout_s: float, doing: str = "search") -> None:
    """Fail in seconds, not after the Hub client's retries, when there is no network at all.

    `doing` completes "Studio cannot ... Hugging Face right now" (search, download from)."""
    from huggingface_hub import constants

    if constants.is_offline_mode():
        raise hub_offline_error("Offline mode is on (HF_HUB_OFFLINE is set).", doing)
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")):
        return  # behind a proxy only the client itself can tell
    url = urlsplit(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=timeout_s).close()
    except OSError as exc:
        raise hub_offline_error(f"The Hugging Face Hub could not be reached ({exc.strerror or exc}).",
                                doing) from None


def hub_network_reason(exc: BaseException) -> str:
    from huggingface_hub.errors import OfflineModeIsEnabled

    if isinstance(exc, OfflineModeIsEnabled):
        return "Offline mode is on (HF_HUB_OFFLINE is set)."
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"The Hugging Face Hub could not be reached ({text})."


def hub_offline_error(why: str, doing: str = "search") -> StudioError:
    """The one message for "no Hub": offline mode, no network, or a Hub that does not answer."""
    return StudioError(
        what=f"Studio cannot {doing} Hugging Face right now.",
        why=why,
        actions=[
            "Check your internet connection and try again.",
            "Use a model that is already on this computer: run `studio models`.",
            "The built-in model always works offline.",
        ],
        code="hub_offline",
    )
