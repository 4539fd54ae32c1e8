"""Cloud API keys: typed once (`studio cloud login`, or the Settings dialog), kept in the system keyring."""

from __future__ import annotations

from studio.engine.cloud.providers import provider_name
from studio.engine.errors import StudioError
from studio.engine.secrets import load_secret, save_secret

KEYRING_USER = "api-key"


def keyring_service(provider: str) -> str:
    return f"studio-cloud-{provider}"


def save_api_key(provider: str, key: str) -> None:
    if not key.strip():
        raise StudioError(what="The API key is empty.", actions=["Paste the whole key and try again."],
                          code="cloud_no_key")
    save_secret(keyring_service(provider), KEYRING_USER, key, f"the {provider_name(provider)} API key")


def load_api_key(provider: str) -> str:
    """The saved key; a plain error that says how to save one when there is none."""
    key = load_secret(keyring_service(provider), KEYRING_USER, f"the {provider_name(provider)} API key")
    if key is None:
        name = provider_name(provider)
        raise StudioError(
            what=f"No {name} API key is saved on this computer.",
            why="Studio needs the key once to list and rent machines in your account.",
            actions=[f"Save it with `studio cloud login {provider}` (it goes to the system keyring).",
                     f"Create a key in your {name} account settings if you have none."],
            code="cloud_no_key",
        )
    return key
