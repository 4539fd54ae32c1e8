"""Download a Hugging Face Hub model into the Hugging Face cache, with progress, cancel and plain errors.

huggingface_hub's own `snapshot_download` moves the bytes (so the cache layout, locking, Xet and a
dropped connection's Range resume are all theirs); Studio adds what a person needs around it:

1. The revision's real file sizes come from `model_info(files_metadata=True)`; only safetensors weights,
   the config, the generation config, the tokenizer files and the model card are fetched (never .bin/.pth
   pickles, `original/` or other subfolders, or Mistral's `consolidated.*` duplicates).
2. Refused before a byte of weights is fetched: a repo without safetensors weights, a config asking for
   remote code (unless `allow_remote_code`), a config Studio cannot read, and a download that would not
   fit on the disk (checked against the files still missing from the cache).
3. The transfer runs in a worker thread: the caller's thread gets progress every 0.1 s, can cancel at any
   moment, and gives up with one plain message when the Hub has sent no file bytes after
   `first_bytes_timeout_s` (huggingface_hub's file listing has no timeout of its own; once bytes flow,
   its read timeouts and retries end a stalled transfer).

Complete or absent: Studio finds a cached model by its config.json (`resolve.hf_cache_snapshot`, the
catalog), so config.json is fetched last, after every other file is in place. A cancelled or failed
download leaves a snapshot without config.json, which Studio neither lists nor trains from, and the next
download of the same model fetches only what is missing. The branch's pointer (refs/main) is written
last of all, so a model already downloaded at an older commit stays usable meanwhile.

Resuming: huggingface_hub resumes a dropped connection within a download with a Range request; files
finished before a cancel are kept, while a partly written file is deleted by huggingface_hub 2.x (its
process-unique `.incomplete` files, see huggingface_hub PR 4228) and fetched again from its start. A
connection torn down mid-read (which huggingface_hub does not retry; it also closes its shared client
whenever any request of the program fails to connect) is taken up again here, from the files finished.

The callbacks are called on the thread that called `download_model`, so a QThread can emit signals from
them directly.
"""

from __future__ import annotations

import errno
import json
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from studio.engine.errors import ExitCode, StudioError
from studio.engine.models.facts import facts_from_config, read_model_facts
from studio.engine.models.hub_auth import HubToken, find_token
from studio.engine.models.hub_reach import check_hub_reachable, hub_network_reason, hub_offline_error
from studio.engine.models.resolve import looks_like_hub_id
from studio.engine.progress import Cancelled

if TYPE_CHECKING:
    from huggingface_hub.hf_api import ModelInfo

ALLOW_PATTERNS = [
    "*.safetensors", "*.safetensors.index.json", "config.json", "generation_config.json",
    "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json", "added_tokens.json",
    "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json", "README.md",
]
# Subfolders (original/, onnx/, quantized variants) and Mistral's consolidated.* copies of the same weights.
IGNORE_PATTERNS = ["*/*", "consolidated.*"]
PICKLE_WEIGHTS = (".bin", ".pth", ".pt", ".ckpt")
# Left free after the download, for the system and the training's checkpoints.
HEADROOM_BYTES = 512 * 1024**2
POLL_S = 0.1
SPEED_WINDOW_S = 5.0
MIN_SPEED_WINDOW_S = 1.0  # a shorter start gives wild early estimates
# huggingface_hub reports (and so notices a cancel) once per 10 MB received; the partly written file is
# deleted when it does, even if that is after this grace.
CANCEL_GRACE_S = 1.0
DOING = "download from"
TRANSFER_ATTEMPTS = 3
BYTE_BARS = ("huggingface_hub.snapshot_download", "huggingface_hub.http_get")


@dataclass(frozen=True)
class DownloadProgress:
    """Where a download stands; bytes count only the files this download fetches."""

    done_bytes: int
    total_bytes: int
    bytes_per_s: float  # over the last few seconds
    eta_s: float | None  # None until a speed is known
    files_done: int  # huggingface_hub fetches up to 8 files at once, so there is no single "current file"
    files_total: int

    @property
    def fraction(self) -> float:
        return min(1.0, self.done_bytes / self.total_bytes) if self.total_bytes else 1.0


@dataclass(frozen=True)
class DownloadResult:
    repo_id: str
    revision: str  # the commit downloaded
    path: Path  # the snapshot folder: pass it (or repo_id) as the model to train
    total_bytes: int  # all the model's files
    downloaded_bytes: int  # the part fetched now (the rest was already in the cache)
    seconds: float
    notes: list[str] = field(default_factory=list)  # worth saying, never a failure (e.g. no chat template)

    def to_dict(self) -> dict[str, Any]:
        return {"repo_id": self.repo_id, "revision": self.revision, "path": str(self.path),
                "total_bytes": self.total_bytes, "downloaded_bytes": self.downloaded_bytes,
                "seconds": round(self.seconds, 2), "notes": list(self.notes)}


class DownloadCancelledError(Cancelled):
    """The person stopped the download; finished files stay in the cache for next time."""


ProgressCallback = Callable[[DownloadProgress], None]


def download_model(
    repo_id: str,
    revision: str | None = None,
    *,
    token: str | None = None,
    allow_remote_code: bool = False,
    progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
    endpoint: str | None = None,
    cache_dir: Path | None = None,
    timeout_s: float = 10.0,
    first_bytes_timeout_s: float = 60.0,
) -> DownloadResult:
    """Download `repo_id` (at `revision`, default the main branch) into the Hugging Face cache.

    `token` is one typed in the app (save it with hub_auth.save_token once it works). Without one, a public
    model is fetched with no token at all, and only when the Hub asks for one (gated or private) is the
    first of the keyring, HF_TOKEN and `hf auth login` used: a public download never opens the keyring,
    which can be slow or ask to be unlocked. Raises StudioError with these codes: hub_offline,
    download_bad_id, download_not_found, download_revision_not_found, download_needs_token (gated repo
    without a token, or a refused token: ask for one), download_gated_access, download_not_a_model,
    download_not_safetensors, download_no_weights, download_remote_code, model_config_unsupported,
    download_disk_full, download_cancelled (a DownloadCancelledError, exit code 130).
    """
    from huggingface_hub import constants
    from huggingface_hub.errors import RepositoryNotFoundError

    repo_id = repo_id.strip()
    if not looks_like_hub_id(repo_id):
        raise StudioError(
            what=f"'{repo_id}' is not a Hugging Face model id.",
            why="A model id has the form owner/name, for example Qwen/Qwen2.5-0.5B-Instruct.",
            actions=["Copy the id from the model's page on huggingface.co.",
                     "Search for it: `studio models --search NAME`."],
            code="download_bad_id",
        )
    endpoint = endpoint or constants.ENDPOINT  # passed to every call: HF_ENDPOINT is read once, at import
    check_hub_reachable(endpoint, min(3.0, timeout_s), DOING)
    auth = HubToken(token.strip(), "app") if token and token.strip() else None
    cache = Path(cache_dir or constants.HF_HUB_CACHE).expanduser()
    started = time.monotonic()
    try:
        try:
            info, config = _metadata(repo_id, revision, auth, endpoint, timeout_s)
        except RepositoryNotFoundError:  # also GatedRepoError: the Hub asks who is asking
            stored = None if auth else find_token()
            if stored is None:
                raise
            auth = stored
            info, config = _metadata(repo_id, revision, auth, endpoint, timeout_s)
    except Exception as exc:
        raise _studio_error(exc, repo_id, revision, auth, cache) from None
    sha = str(info.sha)
    hub_token: str | bool = auth.value if auth else False  # False: never let huggingface_hub pick another
    files = _chosen_files(repo_id, info, config, allow_remote_code)
    missing = {name: size for name, size in files.items() if not _cached(repo_id, name, sha, cache)}
    _check_free_space(repo_id, cache, sum(missing.values()))

    meter = _Meter(total=sum(missing.values()), files_total=len(missing))

    def fetch() -> Path | None:
        import httpx2
        from huggingface_hub import HfApi, hf_hub_download, snapshot_download

        common: dict[str, Any] = {"cache_dir": cache, "token": hub_token, "endpoint": endpoint,
                                  "etag_timeout": timeout_s}
        for attempt in range(1, TRANSFER_ATTEMPTS + 1):
            rest = {name: size for name, size in missing.items()
                    if name != "config.json" and not _cached(repo_id, name, sha, cache)}
            meter.recount(done=sum(missing.values()) - missing.get("config.json", 0) - sum(rest.values()),
                          files_done=len(missing) - ("config.json" in missing) - len(rest))
            try:
                if rest:  # the files already cached are not fetched again, nor counted
                    snapshot_download(repo_id, revision=sha, allow_patterns=[_literal(name) for name in rest],
                                      tqdm_class=meter.tqdm_class(), **common)
                break
            except (httpx2.ReadError, httpx2.WriteError):
                # A connection torn down mid-transfer, for example by huggingface_hub closing its shared client
                # when any request of this program fails to connect: go on from the files finished.
                if attempt == TRANSFER_ATTEMPTS or meter.stop.is_set():
                    raise
        config_path = Path(hf_hub_download(repo_id, "config.json", revision=sha, tqdm_class=meter.tqdm_class(),
                                           **common))  # last
        meter.add(0, file_done="config.json" in missing)
        # Only now does the cache learn which commit `revision` is, so an older complete snapshot stays in use
        # until this one is complete.
        current = HfApi(endpoint=endpoint, token=hub_token).resolve_revision(repo_id, revision=revision,
                                                                             cache_dir=cache)
        return config_path.parent if current.resolved == sha else None

    try:
        path = _watched(fetch, meter, progress, should_cancel, first_bytes_timeout_s)
    except StudioError:
        raise
    except Exception as exc:
        raise _studio_error(exc, repo_id, revision, auth, cache) from None
    if path is None:
        raise StudioError(
            what=f"{repo_id} changed on the Hugging Face Hub during the download.",
            why="A new version was published while the files were being fetched; the version fetched is complete "
                "in the cache, but the model's name now means the new one.",
            actions=["Download it again to get the new version (files that did not change are not fetched again)."],
            code="download_changed",
        )
    return DownloadResult(repo_id=repo_id, revision=sha, path=path, total_bytes=sum(files.values()),
                          downloaded_bytes=meter.done, seconds=time.monotonic() - started,
                          notes=_notes(repo_id, path))


def _metadata(repo_id: str, revision: str | None, auth: HubToken | None, endpoint: str,
              timeout_s: float) -> tuple[ModelInfo, dict[str, Any]]:
    """The revision's files with their sizes, checked, and its config.json."""
    from huggingface_hub import HfApi

    token: str | bool = auth.value if auth else False
    info = HfApi(endpoint=endpoint, token=token).model_info(repo_id, revision=revision, files_metadata=True,
                                                           timeout=timeout_s)
    _check_repo_files(repo_id, info)
    return info, _read_config(repo_id, str(info.sha), token, endpoint, timeout_s)


def _read_config(repo_id: str, sha: str, token: str | bool, endpoint: str | None, timeout_s: float) -> dict[str, Any]:
    """config.json, read without going into the cache, where it would mark the model complete."""
    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    response = get_session().get(hf_hub_url(repo_id, "config.json", revision=sha, endpoint=endpoint),
                                 headers=build_hf_headers(token=token), timeout=timeout_s, follow_redirects=True)
    hf_raise_for_status(response)  # the Hub's own errors: gated, not found...
    try:
        config = json.loads(response.content.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        config = None
    if not isinstance(config, dict):
        raise StudioError(
            what=f"The config.json of {repo_id} is not valid JSON, so Studio did not download the model.",
            why="Without a readable config.json no program can load this model.",
            actions=["Choose another model: `studio models --search NAME`.",
                     "Tell the model's authors on its Hugging Face page."],
            code="download_not_a_model",
        )
    return config


def _chosen_files(repo_id: str, info: ModelInfo, config: dict[str, Any], allow_remote_code: bool) -> dict[str, int]:
    """The files to fetch, with their real sizes; refuses remote code (unless allowed) and a config Studio
    cannot read."""
    from huggingface_hub.utils import filter_repo_objects

    sizes = {sibling.rfilename: int(sibling.size or 0) for sibling in info.siblings or []}
    remote_code = "auto_map" in config
    patterns = ALLOW_PATTERNS + (["*.py"] if remote_code and allow_remote_code else [])
    files = {name: sizes[name] for name in filter_repo_objects(sizes, allow_patterns=patterns,
                                                               ignore_patterns=IGNORE_PATTERNS)}
    if remote_code and not allow_remote_code:
        raise StudioError(
            what=f"{repo_id} needs its own Python code to run, so Studio did not download it.",
            why="Its config.json has an auto_map: loading the model would run code from its repository on this "
                "computer (remote code).",
            actions=["Choose a model that runs with plain Transformers (most Llama, Qwen, Gemma, Mistral and Phi "
                     "models do).",
                     f"If you trust its authors, allow remote code knowingly: `studio models download {repo_id} "
                     "--allow-remote-code` (the app has the same setting)."],
            code="download_remote_code",
        )
    facts_from_config(config, name=repo_id)  # a model Studio cannot read is refused now, not after gigabytes
    return files


def _check_repo_files(repo_id: str, info: ModelInfo) -> None:
    """A Transformers config and safetensors weights, or a refusal before anything is fetched."""
    from huggingface_hub.utils import filter_repo_objects

    names = [sibling.rfilename for sibling in info.siblings or []]
    if "config.json" not in names:
        raise StudioError(
            what=f"{repo_id} is not a Transformers model, so Studio did not download it.",
            why="It has no config.json at its top level; Studio trains models in the Hugging Face Transformers "
                "layout.",
            actions=["Choose a text-generation model: `studio models --search NAME`.",
                     "If this repository has an '-hf' or Transformers version, use that one."],
            code="download_not_a_model",
        )
    wanted = list(filter_repo_objects(names, allow_patterns=ALLOW_PATTERNS, ignore_patterns=IGNORE_PATTERNS))
    if not any(name.endswith(".safetensors") for name in wanted):
        pickles = sorted(name for name in names if name.endswith(PICKLE_WEIGHTS))
        if pickles:
            raise StudioError(
                what=f"{repo_id} has no safetensors weights, and Studio trains from safetensors only.",
                why=f"Its weights are only in PyTorch pickle files ({', '.join(pickles[:3])}), which can run "
                    "code on this computer when they are loaded. Nothing was downloaded.",
                actions=["Look on the Hub for a safetensors version of this model (many have one).",
                         "Choose another model: `studio models --search NAME`."],
                code="download_not_safetensors",
            )
        raise StudioError(
            what=f"{repo_id} has no weights Studio can train from, so nothing was downloaded.",
            why="There are no safetensors weight files at its top level (GGUF files are for running a model, "
                "not for training it).",
            actions=["Choose the original (non-GGUF) version of this model.",
                     "Choose another model: `studio models --search NAME`."],
            code="download_no_weights",
        )


def _literal(name: str) -> str:
    """A file name as a pattern matching only itself (fnmatch treats [, * and ? as wildcards)."""
    return "".join(f"[{char}]" if char in "[]*?" else char for char in name)


def _cached(repo_id: str, name: str, sha: str, cache: Path) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, name, cache_dir=cache, revision=sha), str)


def _free_bytes(path: Path) -> int:
    """Free space on the disk that holds `path` (or its nearest existing parent)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free
    return shutil.disk_usage(Path.cwd()).free


def _check_free_space(repo_id: str, cache: Path, needed: int) -> None:
    free = _free_bytes(cache)
    if needed + HEADROOM_BYTES > free:
        raise _disk_full(repo_id, cache, f"It needs {_size(needed)}, plus {_size(HEADROOM_BYTES)} to spare, and the "
                                         f"disk holding the Hugging Face cache has {_size(free)} free.")


def _disk_full(repo_id: str, cache: Path, why: str) -> StudioError:
    return StudioError(
        what=f"There is not enough free disk space to download {repo_id}.",
        why=why,
        actions=["Free some space on that disk, for example remove models you no longer need: `hf cache rm`.",
                 f"Or move the Hugging Face cache ({cache}) to a larger disk: set HF_HOME to a folder there "
                 "and start Studio again.",
                 "Or choose a smaller model: `studio models --search NAME`."],
        code="download_disk_full",
    )


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 1024**3:.1f} GB" if n_bytes >= 1024**3 else f"{n_bytes / 1024**2:.0f} MB"


def _notes(repo_id: str, path: Path) -> list[str]:
    if read_model_facts(path).has_chat_template:
        return []
    return [f"{repo_id} has no chat template, so Studio would format conversations in a generic way the model "
            "has never seen. For a chat model, use the instruct version of the same family (Llama 3, Qwen "
            "(ChatML), Gemma, Mistral, Phi-3), whose template Studio uses; or train it on plain text (the "
            "domain profile, `--profile domain`)."]


def _studio_error(exc: BaseException, repo_id: str, revision: str | None, auth: HubToken | None,
                  cache: Path) -> StudioError | BaseException:
    """The plain message for what huggingface_hub (or the disk) raised; anything unexpected is kept as is."""
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, StudioError):
        return exc
    page = f"https://huggingface.co/{repo_id}"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return _disk_full(repo_id, cache, f"The disk filled up during the download ({_size(_free_bytes(cache))} "
                                          "free now). The files finished so far are kept for the next try.")
    if isinstance(exc, GatedRepoError):
        if auth is None:
            return _needs_token(repo_id, f"{repo_id} is gated: its authors ask people to sign in and accept "
                                         "their terms before downloading.")
        return StudioError(
            what=f"Your Hugging Face account has not been given access to {repo_id} yet.",
            why=f"The model is gated; the token (from {auth.source}) works, but its account has not accepted the "
                "model's terms, or the authors have not approved it yet.",
            actions=[f"Open {page}, sign in and accept the terms, then download again.",
                     "If you already asked, wait for the authors' approval (you get an e-mail)."],
            code="download_gated_access",
        )
    if isinstance(exc, RevisionNotFoundError):
        return StudioError(
            what=f"{repo_id} has no revision '{revision}'.",
            why="The branch, tag or commit given with --revision does not exist in that repository.",
            actions=[f"Check the name under 'Files and versions' on {page}.",
                     "Leave the revision out to download the main branch."],
            code="download_revision_not_found",
        )
    if isinstance(exc, RepositoryNotFoundError):
        private = ("If it is private, Studio needs a Hugging Face token of an account that can see it: save one "
                   "with `studio hub-login`, set HF_TOKEN, or run `hf auth login`." if auth is None else
                   f"If it is private, the token (from {auth.source}) belongs to an account that cannot see it.")
        return StudioError(
            what=f"Studio could not find the model {repo_id} on the Hugging Face Hub.",
            why="No public repository has that id.",
            actions=["Check the spelling (owner/name, as on the model's page).",
                     "Search for it: `studio models --search NAME`.", private],
            code="download_not_found",
        )
    if isinstance(exc, HfHubHTTPError) and exc.response is not None and exc.response.status_code == 401:
        source = auth.source if auth else "none"
        return _needs_token(repo_id, f"The Hugging Face Hub refused the token (from {source}): it may be "
                                     "mistyped, expired or revoked.")
    if isinstance(exc, HfHubHTTPError) and exc.response is not None and exc.response.status_code >= 500:
        return hub_offline_error(f"The Hugging Face Hub answered with an error ({exc.response.status_code}).",
                                 DOING)
    if isinstance(exc, (OfflineModeIsEnabled, LocalEntryNotFoundError, httpx2.TransportError)):
        return hub_offline_error(hub_network_reason(exc), DOING)
    return exc


def _needs_token(repo_id: str, why: str) -> StudioError:
    return StudioError(
        what=f"Studio needs a Hugging Face token to download {repo_id}.",
        why=why,
        actions=[f"Sign in on https://huggingface.co/{repo_id} and accept its terms if it asks.",
                 "Create a token (read access) at https://huggingface.co/settings/tokens and give it to Studio: "
                 "in the app, or with `studio hub-login` (kept in the system keyring).",
                 "Or set HF_TOKEN, or run `hf auth login`: Studio uses those too."],
        code="download_needs_token",
    )


class _StopRequestedError(Exception):
    """Raised inside huggingface_hub's download threads to make them stop (cancel or stall)."""


class _Meter:
    """Counts bytes and files from huggingface_hub's progress bars, from any of its download threads."""

    def __init__(self, total: int, files_total: int) -> None:
        self.total = total
        self.files_total = files_total
        self.done = 0
        self.files_done = 0
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._samples: deque[tuple[float, int]] = deque([(time.monotonic(), 0)])

    def add(self, n_bytes: int, *, file_done: bool = False) -> None:
        if self.stop.is_set():
            raise _StopRequestedError
        now = time.monotonic()
        with self._lock:
            self.done += n_bytes
            self.files_done += int(file_done)
            self._samples.append((now, self.done))
            while len(self._samples) > 2 and now - self._samples[1][0] > SPEED_WINDOW_S:
                self._samples.popleft()

    def recount(self, *, done: int, files_done: int) -> None:
        """Start again from what is really on disk (a retry fetches a broken file from its start)."""
        with self._lock:
            self.done = done
            self.files_done = files_done
            self._samples = deque([(time.monotonic(), done)])  # speed measured afresh

    def progress(self) -> DownloadProgress:
        now = time.monotonic()
        with self._lock:
            first_t, first_done = self._samples[0]
            done = self.done
            files_done = self.files_done
        elapsed = now - first_t
        speed = (done - first_done) / elapsed if elapsed >= MIN_SPEED_WINDOW_S else 0.0
        eta = max(0.0, self.total - done) / speed if speed > 0 else None
        return DownloadProgress(done_bytes=done, total_bytes=self.total, bytes_per_s=speed, eta_s=eta,
                                files_done=files_done, files_total=self.files_total)

    def tqdm_class(self) -> type:
        """A tqdm class for snapshot_download that feeds this meter instead of drawing anything.

        snapshot_download names its bar of bytes written "huggingface_hub.snapshot_download" and
        hf_hub_download its own "huggingface_hub.http_get" (the public group names for disabling them); the
        files bar (from hf_thread_map) has no byte unit.
        """
        from huggingface_hub.utils import tqdm as hf_tqdm

        meter = self

        class _Bar(hf_tqdm):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                self._counts = ("bytes" if kwargs.get("name") in BYTE_BARS
                                else "files" if kwargs.get("unit", "it") != "B" else None)
                kwargs["disable"] = True  # Studio shows its own progress
                super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]  # tqdm is untyped

            def update(self, n: float | None = 1) -> bool | None:
                if self._counts == "bytes":
                    meter.add(int(n or 0))
                elif self._counts == "files":
                    meter.add(0, file_done=True)
                elif meter.stop.is_set():
                    raise _StopRequestedError
                return None

        return _Bar


def _watched(work: Callable[[], Path | None], meter: _Meter, progress: ProgressCallback | None,
             should_cancel: Callable[[], bool] | None, first_bytes_timeout_s: float) -> Path | None:
    """Run `work` in a thread; report, cancel and watch for a stalled Hub from the caller's thread."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["path"] = work()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    # A daemon thread: a Hub that never answers must not keep the process alive after we give up on it.
    thread = threading.Thread(target=target, name="hub-download", daemon=True)
    started = time.monotonic()
    thread.start()
    try:
        while thread.is_alive():
            thread.join(POLL_S)
            if progress is not None:
                progress(meter.progress())
            if should_cancel is not None and should_cancel():
                raise _cancelled()
            waited = time.monotonic() - started
            if thread.is_alive() and meter.done == 0 and meter.total and waited > first_bytes_timeout_s:
                raise hub_offline_error(f"The Hugging Face Hub sent nothing for {first_bytes_timeout_s:g} seconds.",
                                        DOING)
    except BaseException as exc:
        meter.stop.set()
        thread.join(CANCEL_GRACE_S)  # most often enough for huggingface_hub to delete its partial file
        if isinstance(exc, KeyboardInterrupt):  # Ctrl+C in the terminal is a cancel
            raise _cancelled() from None
        raise
    if progress is not None:
        progress(meter.progress())
    if "error" in outcome:
        raise outcome["error"]
    return cast(Path | None, outcome["path"])


def _cancelled() -> DownloadCancelledError:
    return DownloadCancelledError(
        what="The download was cancelled.",
        why="The files finished so far stay in the Hugging Face cache; Studio does not use the model until every "
            "file is there.",
        actions=["Download it again to continue where it stopped."],
        code="download_cancelled",
        exit_code=ExitCode.STOPPED,
    )
