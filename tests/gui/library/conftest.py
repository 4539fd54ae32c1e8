"""Fixtures for the library views: the real tiny runs of the engine tests, and a run on the built-in model."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.engine.runs.registry import Registry, RunRecord


@pytest.fixture(scope="session")
def builtin_adapter(builtin_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real LoRA adapter for the built-in model (random, untrained weights, so its answers differ from
    the base model's); training one would cost a minute of CI for what the playground test checks."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("builtin-adapter")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(builtin_model_dir)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"],
                                                  init_lora_weights=False))
    peft_model.save_pretrained(folder)
    return folder


@pytest.fixture
def builtin_run(builtin_adapter: Path, studio_home: Path) -> RunRecord:
    """A completed run of the built-in model in this test's library."""
    import shutil

    from studio.engine.config import TrainConfig
    from studio.engine.runs.folders import create_run_dir, final_adapter_dir

    config = TrainConfig.from_dict({"base_model": "builtin", "dataset_path": "pip.jsonl", "profile": "chatbot"})
    run_dir = create_run_dir(config, "run-builtin", root=studio_home / "runs")
    shutil.copytree(builtin_adapter, final_adapter_dir(run_dir))
    registry = Registry()
    registry.create_run("run-builtin", "pip-smol", config, run_dir)
    registry.mark_finished("run-builtin", "completed", 0, metrics={"steps": 1})
    record = registry.get("run-builtin")
    assert record is not None
    return record


@pytest.fixture(autouse=True)
def _plot_menus_ok(request: pytest.FixtureRequest) -> None:
    """The comparison's pyqtgraph plot outlives the page with its hidden popup menus (as in test_app)."""
    request.node.hidden_menus_ok = True


@pytest.fixture
def open_library_page(qtbot):
    """open_library_page(registry) -> a shown LibraryPage whose runs have been read (closed after the test)."""
    from studio.library.library_page import LibraryPage

    def _open(registry: Registry) -> LibraryPage:
        page = LibraryPage(registry)
        qtbot.addWidget(page, before_close_func=lambda p: p.shutdown())
        page.resize(1280, 800)
        with qtbot.waitSignal(page.refreshed, timeout=20000):
            page.show()
        return page

    return _open

