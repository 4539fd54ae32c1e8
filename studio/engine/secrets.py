"""Secrets (API keys, tokens) in the operating system's password store, never in a Studio config file.

One small wrapper over `keyring`, so every secret Studio keeps fails the same plain way on a machine
without a usable password store.
"""

from __future__ import annotations

from studio.engine.errors import StudioError


def save_secret(service: str, user: str, value: str, label: str, alternative: str | None = None) -> None:
    """Store `value` under (service, user); `label` names the secret in messages ("the RunPod API key") and
    `alternative` is another way to give it that the error offers (an environment variable, say)."""
    import keyring
    from keyring.errors import KeyringError

    try:
        keyring.set_password(service, user, value.strip())
    except KeyringError as exc:
        raise keyring_error(exc, label, alternative) from None


def load_secret(service: str, user: str, label: str, alternative: str | None = None) -> str | None:
    """The stored secret, stripped, or None when there is none."""
    import keyring
    from keyring.errors import KeyringError

    try:
        value = keyring.get_password(service, user)
    except KeyringError as exc:
        raise keyring_error(exc, label, alternative) from None
    return value.strip() if value and value.strip() else None


def keyring_error(exc: Exception, label: str, alternative: str | None = None) -> StudioError:
    return StudioError(
        what=f"Studio cannot use this system's password store (keyring) for {label}.",
        why=str(exc) or type(exc).__name__,
        actions=["On Linux, install and unlock a keyring service (GNOME Keyring or KWallet), then try again.",
                 alternative or "On Windows and macOS the system's own store is used: check that it is unlocked."],
        code="keyring_unavailable",
    )
