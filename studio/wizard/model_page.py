"""Step 3: the base model. The built-in model is preselected; local models and a Hugging Face search
(debounced, in the background, with a plain offline message) are offered beside it, each with its size,
license, context length and whether it fits this computer.

A Hub model that is not on this computer is downloaded from here (studio.engine.models.download), in the
background with bytes, speed, time left and Cancel; a gated or private model asks for a token in a dialog,
and a model that brings its own code is refused until the person allows it knowingly. Once downloaded it is
selected as if it had been picked under "On this computer".
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.engine.errors import StudioError
from studio.gui.tasks import TaskRunner, TaskState
from studio.gui.widgets import Badge, Banner, wrapped_label
from studio.wizard.base import WizardPage
from studio.wizard.estimates import duration, memory
from studio.wizard.session import WizardSession
from studio.wizard.token_dialog import TOKENS_URL, TokenDialog

SEARCH_DEBOUNCE_MS = 400
FIT_TEXT = {
    "fits": ("Fits", "ok"),
    "fits_4bit": ("Needs 4-bit", "warn"),
    "does_not_fit": ("Too large", "bad"),
}
REF_ROLE = Qt.ItemDataRole.UserRole
UNKNOWN_FIT = "Studio cannot tell: this model's details are unknown."
LOCAL_GROUPS = ("builtin", "local")
# The time left is said once the speed means something: huggingface_hub reports a large file once per 10 MB,
# so until then the speed is that of a few small files.
ETA_AFTER_S = 3.0
ETA_AFTER_BYTES = 10 * 1024**2
CHOOSE_LOCAL = "Or choose a model under “On this computer”; the built-in model always works offline."
# What to do, said for this page: the engine's own actions name terminal commands, which the app never asks for.
GUI_ACTIONS: dict[str, list[str]] = {
    "hub_offline": ["Check your internet connection, then press Download again.", CHOOSE_LOCAL],
    "download_disk_full": [
        "Free some space on that disk (for example, delete models or files you no longer need), then press "
        "Download again: the files already fetched are kept.",
        "Or choose a smaller model.",
    ],
    "download_needs_token": [
        "Press Download again and paste a token of a Hugging Face account that may download this model.",
        f"Create a token with read access at {TOKENS_URL}.",
        CHOOSE_LOCAL,
    ],
    "download_remote_code": [
        "Choose a model that runs with plain Transformers (most Llama, Qwen, Gemma, Mistral and Phi models do).",
        "If you trust its authors, turn on “Allow this model's own code” above, then press Download again.",
    ],
}


@dataclass(frozen=True)
class ModelRow:
    """One model as the page shows it; built in the background so the GUI thread only draws."""

    ref: str
    name: str
    source: str  # builtin, hf_cache, folder or hub (not on this computer yet)
    size: str
    license: str
    context: str
    fit_status: str
    fit_reason: str


@dataclass(frozen=True)
class Downloaded:
    """A finished download and what is worth saying about it (no chat template, a token not kept)."""

    result: Any  # studio.engine.models.download.DownloadResult
    notes: list[str] = field(default_factory=list)


def _human_params(n: int | None) -> str:
    if not n:
        return "?"
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


def _size(n_bytes: float) -> str:
    return memory(n_bytes / 1024**2)


def _rate(bytes_per_s: float) -> str:
    mb = bytes_per_s / 1024**2
    if mb >= 10:
        return f"{mb:.0f} MB/s"
    return f"{mb:.1f} MB/s" if mb >= 1 else f"{bytes_per_s / 1024:.0f} KB/s"


def download_text(progress: Any, settled: bool = True) -> str:
    """'312 MB of 988 MB · 24 MB/s · about 30 s left' for a DownloadProgress; no speed nor time left until
    `settled` (the first seconds' speed, from a few small files, would promise hours)."""
    done = f"{_size(progress.done_bytes)} of {_size(progress.total_bytes)}"
    if progress.done_bytes >= progress.total_bytes:
        return f"{done} · finishing"
    if not settled or progress.eta_s is None or progress.bytes_per_s <= 0:
        return f"{done} · working out the time left"
    left = f"about {duration(progress.eta_s)} left" if progress.eta_s >= 1 else "almost done"
    return f"{done} · {_rate(progress.bytes_per_s)} · {left}"


def without_commands(text: str) -> str:
    """`text` less the parentheses and sentences that name a terminal command (written `like this`)."""
    text = re.sub(r"\s*\([^()]*`[^()]*\)", "", text)
    return " ".join(sentence for sentence in re.split(r"(?<=[.!?])\s+", text) if "`" not in sentence).strip()


def gui_error(error: object) -> object:
    """A download's StudioError with actions a person can take in the app; anything else as it is."""
    if not isinstance(error, StudioError):
        return error
    actions = GUI_ACTIONS.get(error.code) or [action for action in error.actions if "`" not in action]
    if len(actions) < 2:
        actions = [*actions, "Or choose another model: search above, or pick one under “On this computer”."]
    return StudioError(what=error.what, why=without_commands(error.why), actions=actions, code=error.code)


def _rows(entries: list[Any], hardware: Any) -> list[ModelRow]:
    from studio.engine.hardware import probe
    from studio.engine.models.catalog import fit_verdict

    hardware = hardware or probe()
    rows = []
    for entry in entries:
        verdict = fit_verdict(entry.facts, hardware) if entry.facts is not None else None
        rows.append(
            ModelRow(
                ref=entry.ref,
                name=entry.name,
                source=entry.source,
                size=_human_params(entry.n_params),
                license=entry.license or "unknown",
                context=f"{entry.context_length:,} tokens" if entry.context_length else "?",
                fit_status=verdict.status if verdict else "",
                fit_reason=verdict.reason if verdict else UNKNOWN_FIT,
            )
        )
    return rows


def _list_local(task: TaskState, hardware: Any) -> list[ModelRow]:
    from studio.engine.models.catalog import list_local_models

    task.set_status("Looking for models on this computer")
    return _rows(list_local_models(), hardware)


def _search(task: TaskState, query: str, hardware: Any) -> list[ModelRow]:
    from studio.engine.models.catalog import search_hub

    task.set_status(f"Searching Hugging Face for “{query}”")
    return _rows(search_hub(query, limit=20), hardware)


def _download_size(_task: TaskState, repo_id: str) -> tuple[str, int | None]:
    """The bytes a download of `repo_id` fetches, from the Hub's file metadata; None when it cannot tell.

    Only for the Download button's label: the download itself checks everything again and says what is wrong.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.utils import filter_repo_objects

    from studio.engine.models.download import ALLOW_PATTERNS, IGNORE_PATTERNS

    try:
        info = HfApi(token=False).model_info(repo_id, files_metadata=True, timeout=5.0)
    except Exception:  # offline, private, gone: the label goes without a size
        return repo_id, None
    sizes = {sibling.rfilename: int(sibling.size or 0) for sibling in info.siblings or []}
    wanted = filter_repo_objects(sizes, allow_patterns=ALLOW_PATTERNS, ignore_patterns=IGNORE_PATTERNS)
    return repo_id, sum(sizes[name] for name in wanted) or None


def _download(task: TaskState, repo_id: str, token: str | None, remember: bool, allow_code: bool) -> Downloaded:
    from studio.engine.models.download import download_model
    from studio.engine.models.hub_auth import save_token

    first_report: float | None = None

    def report(progress: Any) -> None:
        nonlocal first_report
        first_report = first_report or time.monotonic()
        enough = progress.done_bytes >= min(ETA_AFTER_BYTES, progress.total_bytes / 10)
        settled = enough and time.monotonic() - first_report >= ETA_AFTER_S
        task.report(download_text(progress, settled), progress.fraction)

    task.set_status("Asking Hugging Face for the files")
    result = download_model(repo_id, token=token, allow_remote_code=allow_code, progress=report,
                            should_cancel=task.cancelled)
    notes = [without_commands(note) for note in result.notes]
    if token and remember:
        try:
            save_token(token)
        except StudioError as exc:
            notes.append(f"The token could not be kept on this computer, so Studio asks for it next time: {exc.what}")
    return Downloaded(result, notes)


class ModelPage(WizardPage):
    title = "Choose a base model"
    intro = (
        "The base model is what your training starts from. The built-in model is small and runs on "
        "any computer; larger models learn more but need more memory and time."
    )

    def __init__(self, session: WizardSession, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.local_runner = TaskRunner(self)
        self.search_runner = TaskRunner(self)
        self.size_runner = TaskRunner(self)
        self.download_runner = TaskRunner(self)
        self.local_rows: list[ModelRow] = []
        self.sizes: dict[str, int | None] = {}  # repo id -> bytes its download fetches
        self.downloading: str | None = None
        self.sizing: str | None = None  # the repo whose size is being looked up
        self.fetched: set[str] = set()  # downloaded in this session
        self.code_needed: set[str] = set()  # refused because they bring their own code
        self.code_allowed: set[str] = set()
        self.token_dialog: TokenDialog | None = None

        search_row = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search Hugging Face (for example: qwen 0.5b instruct)")
        self.search.setAccessibleName("Search Hugging Face for a model")
        self.search.setClearButtonEnabled(True)
        search_row.addWidget(self.search)
        self.body.addLayout(search_row)
        self.search_status = wrapped_label(name="muted")
        self.body.addWidget(self.search_status)

        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Model", "Size", "License", "Context", "On this computer"])
        self.tree.setAccessibleName("Available models")
        self.tree.setMinimumHeight(150)  # it takes the room left, and gives it up to a download or a message
        self.tree.setAlternatingRowColors(True)
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, 5):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(False)
        self.groups = {
            key: QTreeWidgetItem(self.tree, [label])
            for key, label in (
                ("builtin", "Built-in"),
                ("local", "On this computer"),
                ("hub", "Hugging Face"),
            )
        }
        for group in self.groups.values():
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            group.setFirstColumnSpanned(True)
            group.setExpanded(True)
            group.setHidden(True)  # shown once it has models
        self.body.addWidget(self.tree, 1)

        self.details = QGroupBox("Selected model")
        details = QVBoxLayout(self.details)
        badge_row = QHBoxLayout()
        self.name_label = wrapped_label(name="sectionTitle", selectable=True)
        self.badge = Badge()
        badge_row.addWidget(self.name_label, 1)
        badge_row.addWidget(self.badge, 0, Qt.AlignmentFlag.AlignTop)
        details.addLayout(badge_row)
        self.reason = wrapped_label(selectable=True)
        details.addWidget(self.reason)
        self.allow_code = QCheckBox("Allow this model's own code")
        self.allow_code.setAccessibleName("Allow this model's own code to run on this computer")
        self.code_warning = wrapped_label(
            "This model brings Python code of its own, which runs on this computer, with your permissions, "
            "whenever the model is loaded. Allow it only if you trust the model's authors.",
            name="muted",
        )
        details.addWidget(self.allow_code)
        details.addWidget(self.code_warning)
        download_row = QHBoxLayout()
        self.download_button = QPushButton("Download")
        self.download_button.setObjectName("primary")
        download_row.addWidget(self.download_button)
        download_row.addStretch(1)
        details.addLayout(download_row)
        self.body.addWidget(self.details)

        self.download_box = QGroupBox("Download")
        download = QVBoxLayout(self.download_box)
        progress_row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setAccessibleName("Download progress")
        self.download_status = QLabel()  # one short line: a wrapped one would make the page scroll
        self.download_status.setObjectName("muted")
        self.download_status.setAccessibleName("Downloaded so far, speed and time left")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("Cancel the download")
        progress_row.addWidget(self.progress, 2)
        progress_row.addWidget(self.download_status, 3)
        progress_row.addWidget(self.cancel_button)
        download.addLayout(progress_row)
        self.download_box.hide()
        self.body.addWidget(self.download_box)
        self.banner = Banner()
        self.body.addWidget(self.banner)

        self.debounce = QTimer(self)
        self.debounce.setSingleShot(True)
        self.debounce.setInterval(SEARCH_DEBOUNCE_MS)
        self.debounce.timeout.connect(self._run_search)
        self.search.textChanged.connect(lambda _text: self.debounce.start())
        self.search_runner.statusChanged.connect(self.search_status.setText)
        self.search_runner.finished.connect(self._on_search)
        self.search_runner.failed.connect(self._on_search_failed)
        self.local_runner.finished.connect(self._on_local)
        self.local_runner.failed.connect(self.banner.show_error)
        self.local_runner.busyChanged.connect(lambda _busy: self.completeChanged.emit())
        self.size_runner.finished.connect(self._on_size)
        self.download_button.clicked.connect(self._download_selected)
        self.cancel_button.clicked.connect(self.download_runner.cancel)
        self.allow_code.toggled.connect(self._on_allow_code)
        self.download_runner.progressChanged.connect(lambda f: self.progress.setValue(int(f * 1000)))
        self.download_runner.statusChanged.connect(self.download_status.setText)
        self.download_runner.busyChanged.connect(self._on_download_busy)
        self.download_runner.finished.connect(self._on_downloaded)
        self.download_runner.failed.connect(self._on_download_failed)
        self.download_runner.cancelled.connect(self._on_download_cancelled)
        self.tree.currentItemChanged.connect(self._on_current)
        session.hardwareChanged.connect(self._load_local)
        self._loaded = False
        self._show_download_choice(None)
        # Wrapped labels sized by their height for the page's real width: with wrapped_label's default (never
        # below the height at their preferred width) a banner or the own-code warning would make the page scroll.
        for label in self.findChildren(QLabel):
            if label.wordWrap():
                label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

    def enter(self) -> None:
        if not self._loaded:
            self._load_local()
        self.tree.setFocus(Qt.FocusReason.OtherFocusReason)

    def _load_local(self) -> None:
        if not self.isVisible() and not self._loaded:
            return
        self._loaded = True
        hardware = self.session.hardware
        self.local_runner.start(
            lambda task: _list_local(task, hardware), "looking for models on this computer"
        )

    def _run_search(self) -> None:
        query = self.search.text().strip()
        if not query:
            self.search_runner.cancel()
            self._fill("hub", [])
            self.search_status.setText("")
            return
        hardware = self.session.hardware
        self.search_runner.start(lambda task: _search(task, query, hardware), "searching Hugging Face")
        if self.download_runner.busy:  # one background thread: the search waits for it
            self.search_status.setText("Studio searches as soon as the download is done.")

    def _on_local(self, rows: list[ModelRow]) -> None:
        self.local_rows = rows
        viewing = self.selected()
        self._fill("builtin", [r for r in rows if r.source == "builtin"])
        self._fill("local", [r for r in rows if r.source != "builtin"])
        if viewing is not None and viewing.source == "hub" and self._find(viewing.ref, LOCAL_GROUPS) is None:
            return  # the person is looking at a Hub model: leave it selected
        self._select(self.session.state.model_ref)

    def _on_search(self, rows: list[ModelRow]) -> None:
        self._fill("hub", rows)
        self.search_status.setText(
            f"{len(rows)} {'model' if len(rows) == 1 else 'models'} found on Hugging Face. "
            "Pick one to download it to this computer."
            if rows
            else "No text-generation models match this search."
        )

    def _on_search_failed(self, error: object) -> None:
        self._fill("hub", [])
        why = getattr(error, "why", "")
        self.search_status.setText(f"{getattr(error, 'what', error)} {why}".strip())

    def _fill(self, group_key: str, rows: list[ModelRow]) -> None:
        group = self.groups[group_key]
        group.takeChildren()
        for row in rows:
            text, _kind = FIT_TEXT.get(row.fit_status, ("Unknown", "info"))
            item = QTreeWidgetItem(group, [row.name, row.size, row.license, row.context, text])
            item.setData(0, REF_ROLE, row)
            item.setToolTip(0, row.ref)
            item.setToolTip(4, row.fit_reason)
        group.setHidden(not rows)

    def _find(self, ref: str | None, group_keys: tuple[str, ...]) -> QTreeWidgetItem | None:
        from studio.engine.models.builtin import is_builtin

        for key in group_keys:
            group = self.groups[key]
            for i in range(group.childCount()):
                row: ModelRow = group.child(i).data(0, REF_ROLE)
                if row.ref == ref or (is_builtin(ref) and is_builtin(row.ref)):
                    return group.child(i)
        return None

    def _select(self, ref: str | None) -> None:
        item = self._find(ref, (*LOCAL_GROUPS, "hub"))
        if item is not None:
            self.tree.setCurrentItem(item)

    def _on_current(self, item: QTreeWidgetItem | None) -> None:
        row = item.data(0, REF_ROLE) if item is not None else None
        if not isinstance(row, ModelRow):
            return
        if row.source == "hub":
            local = self._find(row.ref, LOCAL_GROUPS)
            if local is not None:  # already on this computer: that row has its real facts
                self.tree.setCurrentItem(local)
                return
        else:  # a Hub model becomes the choice once it is downloaded
            self.session.update(model_ref=row.ref)
        text, kind = FIT_TEXT.get(row.fit_status, ("Fit not known yet", "info"))
        self.name_label.setText(f"{row.name}  ·  {row.size} parameters  ·  license {row.license}")
        self.badge.setText(text)
        self.badge.set_kind(kind)
        self.badge.setAccessibleName(f"Fit on this computer: {text}")
        self.reason.setText(row.fit_reason)
        self._show_download_choice(row)
        self.completeChanged.emit()

    def selected(self) -> ModelRow | None:
        item = self.tree.currentItem()
        row = item.data(0, REF_ROLE) if item is not None else None
        return row if isinstance(row, ModelRow) else None

    def blocker(self) -> str | None:
        row = self.selected()
        if row is None:
            return "Choose a model from the list (the built-in model works on every computer)."
        if row.fit_status == "does_not_fit":
            return f"{row.name} is too large for this computer: {row.fit_reason}"
        if row.source == "hub":
            if self.downloading == row.ref:
                return f"Studio is downloading {row.name}. You can go on once it is on this computer."
            if row.ref in self.fetched and self.local_runner.busy:
                return f"Studio is adding {row.name} to the models on this computer."
            if row.ref in self.code_needed and row.ref not in self.code_allowed:
                return f"{row.name} needs its own code to run: allow it above, or choose another model."
            if self.downloading:
                return f"{row.name} is not on this computer yet. Download it once {self.downloading} is done."
            return f"{row.name} is not on this computer yet. Press Download to get it."
        return None

    # ---- downloading -----------------------------------------------------------------------------

    def _downloadable(self, row: ModelRow | None) -> bool:
        return row is not None and row.source == "hub" and row.fit_status != "does_not_fit"

    def _show_download_choice(self, row: ModelRow | None) -> None:
        """The Download button (with the size once known) and, after a refusal, the own-code switch."""
        hub = self._downloadable(row)
        self.download_button.setVisible(hub)
        code = hub and row is not None and row.ref in self.code_needed
        self.allow_code.setVisible(code)
        self.code_warning.setVisible(code)
        if row is None or not hub:
            return
        self.allow_code.blockSignals(True)
        self.allow_code.setChecked(row.ref in self.code_allowed)
        self.allow_code.blockSignals(False)
        size = self.sizes.get(row.ref)
        self.download_button.setText(f"Download ({_size(size)})" if size else "Download")
        self.download_button.setAccessibleName(f"Download {row.name} to this computer")
        busy = self.download_runner.busy
        self.download_button.setEnabled(not busy and (not code or row.ref in self.code_allowed))
        self.download_button.setToolTip(
            f"One download at a time: wait for {self.downloading} or cancel it." if busy and self.downloading
            else ""
        )
        if row.ref not in self.sizes and not (self.size_runner.busy and self.sizing == row.ref):
            ref = self.sizing = row.ref
            self.size_runner.start(lambda task: _download_size(task, ref), "looking up the model's size")

    def _on_size(self, found: tuple[str, int | None]) -> None:
        ref, size = found
        self.sizes[ref] = size
        row = self.selected()
        if row is not None and row.ref == ref:
            self._show_download_choice(row)

    def _on_allow_code(self, allowed: bool) -> None:
        row = self.selected()
        if row is None:
            return
        if allowed:
            self.code_allowed.add(row.ref)
        else:
            self.code_allowed.discard(row.ref)
        self._show_download_choice(row)

    def _download_selected(self) -> None:
        row = self.selected()
        if self._downloadable(row):
            assert row is not None
            self.download(row.ref)

    def download(self, repo_id: str, token: str | None = None, remember: bool = True) -> None:
        """Fetch `repo_id` into the Hugging Face cache in the background (one download at a time)."""
        if self.download_runner.busy:
            return
        allow_code = repo_id in self.code_allowed
        self.downloading = repo_id
        self.banner.hide()
        self.download_box.setTitle(
            f"Downloading {repo_id} to this computer" + (", with its own code allowed" if allow_code else "")
        )
        self.download_runner.start(
            lambda task: _download(task, repo_id, token, remember, allow_code), f"downloading {repo_id}"
        )

    def _on_download_busy(self, busy: bool) -> None:
        self.download_box.setVisible(busy)
        if busy:
            self.progress.setValue(0)
            self.download_status.setText("Starting the download")
        self._show_download_choice(self.selected())
        self.completeChanged.emit()

    def _on_downloaded(self, done: Downloaded) -> None:
        repo_id = done.result.repo_id
        self.downloading = None
        self.fetched.add(repo_id)
        viewing = self.selected()
        chosen = viewing is not None and viewing.ref == repo_id
        if chosen:
            self.session.update(model_ref=repo_id)
        fetched = done.result.downloaded_bytes
        lines = [
            (f"{_size(fetched)} fetched in {duration(max(1.0, done.result.seconds))}. " if fetched else "")
            + ("It is selected as your base model." if chosen else "Pick it under “On this computer” to use it."),
            *done.notes,
        ]
        if repo_id in self.code_allowed:
            lines.append("Its own code is allowed to run on this computer.")
        self.banner.show_message("ok", f"{repo_id} is on this computer.", "\n".join(lines))
        self._load_local()  # lists it under "On this computer" and selects it there
        self.completeChanged.emit()

    def _on_download_failed(self, error: object) -> None:
        repo_id = self.downloading or ""
        self.downloading = None
        code = getattr(error, "code", "")
        if code == "download_needs_token":
            self._ask_for_token(repo_id, error)
            return
        if code == "download_remote_code":
            self.code_needed.add(repo_id)
            self._show_download_choice(self.selected())
        self.banner.show_error(gui_error(error))
        self.completeChanged.emit()

    def _on_download_cancelled(self) -> None:
        self.downloading = None
        self.banner.show_message(
            "info",
            "Download cancelled",
            "Nothing is lost: the files finished so far stay on this computer, and pressing Download again "
            "continues where it stopped.",
        )
        self.completeChanged.emit()

    def _ask_for_token(self, repo_id: str, error: object) -> None:
        """A window-modal token dialog; Download in it retries, Cancel leaves the reason in the banner."""
        dialog = TokenDialog(repo_id, getattr(error, "why", ""), self)
        dialog.accepted.connect(lambda: self.download(repo_id, dialog.token(), dialog.remember.isChecked()))
        dialog.rejected.connect(lambda: self.banner.show_error(gui_error(error)))
        dialog.finished.connect(lambda _code: self._forget_token_dialog(dialog))
        self.token_dialog = dialog
        dialog.open()

    def _forget_token_dialog(self, dialog: TokenDialog) -> None:
        if self.token_dialog is dialog:
            self.token_dialog = None
        dialog.deleteLater()

    def shutdown(self) -> None:
        self.debounce.stop()
        if self.token_dialog is not None:
            self.token_dialog.reject()
        self.download_runner.shutdown()
        self.size_runner.shutdown()
        self.local_runner.shutdown()
        self.search_runner.shutdown()
