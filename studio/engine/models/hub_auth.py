"""The Hugging Face token, for downloading gated or private models and for uploading exports.

Looked for in this order: the system keyring (where Studio stores a token typed in the app or saved
with `studio hub-login`), the HF_TOKEN environment variable, then a login made with `hf auth login`.
The token never goes into a Studio config file: the keyring is the operating system's password store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from studio.engine.errors import StudioError

KEYRING_SERVICE = "studio-huggingface"
KEYRING_USER = "token"

TokenSource = Literal["app", "keyring", "HF_TOKEN", "hf auth login"]


@dataclass(frozen=True)
class HubToken:
    value: str
    source: TokenSource  # said in messages, so a refused token can be traced to where it came from

    def __repr__(self) -> str:  # never print the secret itself
        return f"HubToken(source={self.source!r})"


def save_token(token: str) -> None:
    """Store a token in the system keyring (a token typed in the app, or `studio hub-login`)."""
    import keyring
    from keyring.errors import KeyringError

    try:
        keyring.set_password(KEYRING_SERVICE, KEYRING_USER, token.strip())
    except KeyringError as exc:
        raise _keyring_error(exc) from None


def load_token() -> str | None:
    """The token stored in the system keyring, if any; raises StudioError when there is no usable keyring."""
    import keyring
    from keyring.errors import KeyringError

    try:
        return keyring.get_password(KEYRING_SERVICE, KEYRING_USER)
    except KeyringError as exc:
        raise _keyring_error(exc) from None


def find_token() -> HubToken | None:
    """The first token found: keyring, then HF_TOKEN, then `hf auth login`; None when there is none.

    A machine without a usable keyring still gets the other two: a missing password store must not
    block downloading a public model.
    """
    try:
        stored = load_token()
    except StudioError:
        stored = None
    if stored and stored.strip():
        return HubToken(stored.strip(), "keyring")
    env = os.environ.get("HF_TOKEN", "").strip()
    if env:
        return HubToken(env, "HF_TOKEN")
    from huggingface_hub import get_token

    logged_in = get_token()
    return HubToken(logged_in, "hf auth login") if logged_in else None


def _keyring_error(exc: Exception) -> StudioError:
    return StudioError(
        what="Studio cannot use this system's password store (keyring) for the Hugging Face token.",
        why=str(exc) or type(exc).__name__,
        actions=["On Linux, install and unlock a keyring service (GNOME Keyring or KWallet).",
                 "Or set the HF_TOKEN environment variable, or log in with `hf auth login`: Studio reads both."],
        code="keyring_unavailable",
    )
