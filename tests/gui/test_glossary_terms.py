"""No technical word on screen goes unexplained: every glossary term a screen shows has a tooltip on the
widget that shows it (or on its label's control, or on the group around it), and every word of a fixed
technical vocabulary that appears in the app's strings has a glossary entry."""

from __future__ import annotations

import re

from PySide6.QtWidgets import QLabel, QWidget

from studio.gui.glossary import buddy_labels, explain_terms, explaining_widget, glossary, shown_text, terms_in
from studio.wizard.state import WizardState
from tests.gui.every_screen import every_screen

# Words a newcomer cannot be expected to know; any of them on screen must be in the glossary.
VOCABULARY = (
    "LoRA", "QLoRA", "rank", "alpha", "dropout", "epoch", "learning rate", "warmup", "batch", "gradient",
    "quantization", "quantized", "GGUF", "safetensors", "token", "tokenizer", "checkpoint", "adapter",
    "base model", "loss", "eval loss", "perplexity", "precision", "bf16", "fp16", "fp32", "max length",
    "chat template", "system prompt", "temperature", "top-p", "Ollama", "llama.cpp", "LM Studio", "merged",
    "VRAM", "GPU", "CUDA", "backend", "Unsloth", "DPO", "KTO", "ORPO", "ROUGE", "F1", "exact match",
    "held-out", "overfitting", "optimizer", "scheduler", "seed", "Modelfile", "Hugging Face", "kWh",
    "carbon intensity", "Q4_K_M", "q8_0", "f16", "smoothing", "anomaly", "preference",
)


def _visible(widget: QWidget, root: QWidget) -> bool:
    return widget.isVisible() and (widget is root or widget.isVisibleTo(root))


def _screens(make_window, qtbot, run):
    window = make_window(state=WizardState())
    window.resize(1280, 800)
    yield from every_screen(window, qtbot, run)


def test_every_technical_word_on_screen_has_a_glossary_entry_and_a_tooltip(make_window, qtbot, tiny_run,
                                                                           builtin_model_dir):
    unexplained: list[str] = []
    texts: list[str] = []
    found: set[str] = set()
    screens = []
    for name, root in _screens(make_window, qtbot, tiny_run):
        screens.append(name)
        labels = buddy_labels(root)
        for widget in [root, *root.findChildren(QWidget)]:
            text = shown_text(widget)
            if not text or not _visible(widget, root):
                continue
            texts.append(text)
            terms = terms_in(text)
            found |= {term.term for term in terms}
            if terms and explaining_widget(widget, labels) is None:
                unexplained.append(f"{name}: {type(widget).__name__} {text[:60]!r} ({terms[0].term})")
    assert len(screens) == 12
    assert unexplained == [], "\n".join(unexplained)
    assert {"LoRA", "epoch", "token", "checkpoint", "adapter", "GGUF", "quantization", "loss"} <= found

    shown = " \n ".join(texts)
    on_screen = [w for w in VOCABULARY if re.search(rf"(?<![\w-]){re.escape(w)}(?:e?s)?(?![\w-])", shown, re.I)]
    assert len(on_screen) > 15  # the walk saw the app's technical words
    missing = [word for word in on_screen if not terms_in(word)]
    assert missing == [], f"on screen but not in resources/help/glossary.yaml: {missing}"


def test_the_glossary_is_well_formed():
    entries = glossary()
    assert len(entries) >= 40
    spellings = [s.lower() for e in entries for s in (e.term, *e.also)]
    assert len(spellings) == len(set(spellings)), "a spelling belongs to two entries"
    for entry in entries:
        assert 40 <= len(entry.text) <= 400, entry.term  # a real explanation, short enough for a tooltip
        assert terms_in(entry.term) == [entry], entry.term


def test_a_word_gets_its_glossary_tooltip_once_and_an_own_tooltip_wins(qtbot):
    root = QWidget()
    qtbot.addWidget(root)
    plain = QLabel("Export as GGUF with 4-bit quantization", root)
    own = QLabel("LoRA rank", root)
    own.setToolTip("Written by hand")
    nothing = QLabel("Your data", root)
    assert explain_terms(root) == 1
    assert "GGUF" in plain.toolTip() and "quantization" in plain.toolTip()
    assert own.toolTip() == "Written by hand" and nothing.toolTip() == ""
    assert explain_terms(root) == 0  # nothing left to explain
    assert [t.term for t in terms_in("a Hugging Face token and 512 tokens")] == ["Hugging Face token", "token"]
