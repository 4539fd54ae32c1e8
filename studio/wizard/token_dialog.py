"""The Hugging Face token a gated or private model needs, asked for in the app (never in a terminal).

The model page opens it when a download answers download_needs_token and retries with what is typed; a
token that worked goes to the system keyring (studio.engine.models.hub_auth) unless the person unticks
"Remember on this computer".
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from studio.gui.widgets import wrapped_label

HUB_URL = "https://huggingface.co"
TOKENS_URL = f"{HUB_URL}/settings/tokens"


class TokenDialog(QDialog):
    """Window-modal: `accepted` means `token()` holds something to try."""

    def __init__(self, repo_id: str, reason: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.repo_id = repo_id
        self.setWindowTitle("Hugging Face token")
        self.setMinimumWidth(520)
        layout = QVBoxLayout(self)
        heading = wrapped_label(f"{repo_id} needs a Hugging Face token", name="sectionTitle")
        layout.addWidget(heading)
        self.reason = wrapped_label(reason, selectable=True)
        layout.addWidget(self.reason)
        self.steps = QLabel(
            f"1. Sign in on <a href='{HUB_URL}/{html.escape(repo_id)}'>the model's page</a> and accept its terms "
            "if it asks.<br>"
            f"2. Create a token with read access on <a href='{TOKENS_URL}'>your Hugging Face token page</a>, "
            "then paste it here."
        )
        self.steps.setTextFormat(Qt.TextFormat.RichText)
        self.steps.setWordWrap(True)
        self.steps.setOpenExternalLinks(True)
        self.steps.setAccessibleName("How to get a token")
        layout.addWidget(self.steps)

        self.token_edit = QLineEdit()
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_edit.setPlaceholderText("hf_…")
        self.token_edit.setAccessibleName("Hugging Face token")
        layout.addWidget(self.token_edit)
        self.remember = QCheckBox("Remember on this computer (in the system's password store)")
        self.remember.setChecked(True)
        layout.addWidget(self.remember)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.reject)
        self.download_button = QPushButton("Download")
        self.download_button.setObjectName("primary")
        self.download_button.setAccessibleName(f"Download {repo_id} with this token")
        self.download_button.setDefault(True)
        self.download_button.clicked.connect(self.accept)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.download_button)
        layout.addLayout(buttons)

        self.token_edit.textChanged.connect(lambda text: self.download_button.setEnabled(bool(text.strip())))
        self.download_button.setEnabled(False)
        self.token_edit.setFocus(Qt.FocusReason.OtherFocusReason)

    def token(self) -> str:
        return self.token_edit.text().strip()
