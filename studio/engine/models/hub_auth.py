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
from studio.engine.secrets import load_secret, save_secret

KEYRING_SERVICE = "studio-huggingface"
KEYRING_USER = "token"
_LABEL = "the Hugging Face token"
_ALTERNATIVE = "Or set the HF_TOKEN environment variable, or log in with `hf auth login`: Studio reads both."

TokenSource = Literal["app", "keyring", "HF_TOKEN", "hf auth login"]


@dataclass(frozen=True)
class HubToken:
    value: str
    source: TokenSource  # said in messages, so a refused token can be traced to where it came from

    def __repr__(self) -> str:  # never print the secret itself
        return f"HubToken(source={self.source!r})"


def save_token(token: str) -> None:
    """Store a token in the system keyring (a token typed in the app, or `studio hub-login`)."""
    save_secret(KEYRING_SERVICE, KEYRING_USER, token, _LABEL, _ALTERNATIVE)


def load_token() -> str | None:
    """The token stored in the system keyring, if any; raises StudioError when there is no usable keyring."""
    return load_secret(KEYRING_SERVICE, KEYRING_USER, _LABEL, _ALTERNATIVE)


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
