"""Upload an export folder to the Hugging Face Hub, with the token from studio.engine.models.hub_auth
(the system keyring, HF_TOKEN or `hf auth login`).

This is the only export step that needs the internet, and it says so plainly when there is none.
"""

from __future__ import annotations

import os
from pathlib import Path

from studio.engine.errors import StudioError
from studio.engine.models.hub_auth import find_token, save_token
from studio.engine.progress import Span

__all__ = ["save_token", "upload_folder"]  # `studio hub-login` saves its token through here


def upload_folder(folder: Path, repo_id: str, private: bool = True, steps: Span | None = None) -> str:
    """Create `repo_id` if needed and upload `folder`; returns the repository's URL."""
    steps = steps or Span()
    if _offline():
        raise _offline_error("Studio is set to work offline (HF_HUB_OFFLINE is set).")
    found = find_token()
    if found is None:
        raise StudioError(
            what="Studio has no Hugging Face token to upload with.",
            why="Uploading needs a token with write access, and none is in the system keyring, HF_TOKEN or an "
                "`hf auth login`.",
            actions=["Create a token at https://huggingface.co/settings/tokens (type: write).",
                     "Save it with `studio hub-login` (it is stored in the system keyring)."],
            code="hub_token_missing",
        )
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(token=found.value)
    try:
        steps.report(f"Creating {repo_id} on the Hub", 0.05)
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        steps.report(f"Uploading {folder.name}", 0.1)
        api.upload_folder(folder_path=folder, repo_id=repo_id, repo_type="model",
                          commit_message="Upload from Studio")
    except HfHubHTTPError as exc:
        raise StudioError(
            what=f"The Hugging Face Hub refused the upload to {repo_id}.",
            why=str(exc).splitlines()[0],
            actions=["Check that your token has write access and that you own this repository name.",
                     "Save a new token with `studio hub-login`."],
            code="hub_refused",
        ) from None
    except (ConnectionError, OSError) as exc:
        raise _offline_error(str(exc).splitlines()[0] if str(exc) else "No connection.") from None
    steps.report("Uploaded", 1.0)
    return str(url)


def _offline() -> bool:
    return any(os.environ.get(name, "").lower() in {"1", "true", "yes", "on"}
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _offline_error(why: str) -> StudioError:
    return StudioError(
        what="Studio cannot reach the Hugging Face Hub, so nothing was uploaded.",
        why=why,
        actions=["Connect to the internet and upload again; the export folder is complete and kept.",
                 "Or upload the folder yourself later: hf upload <your-name>/<model> <folder>"],
        code="hub_offline",
    )
