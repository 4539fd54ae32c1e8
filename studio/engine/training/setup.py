"""What a run trains with: the backend, the base model's folder and the run's data, prepared as its config asks.

Shared by every process that must see a run exactly as its worker did: rank 0's recipe, the followers of a
distributed run, `studio train --dry-run`, and the library's scoring and quality checks (same split, same
exclusions, same tokenization). Light to import: torch, transformers and TRL load only inside the calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.engine.config import TrainConfig
from studio.engine.datasets import DatasetOptions, PreparedDataset, prepare_dataset
from studio.engine.errors import ExitCode, StudioError
from studio.engine.hardware import probe
from studio.engine.models.resolve import resolve_model
from studio.engine.runs.folders import trainer_staging_dir
from studio.engine.training.backends.base import TrainingBackend
from studio.engine.training.backends.choice import choose_backend, unsloth_installed
from studio.engine.training.backends.hf import HFBackend, build_trainer
from studio.engine.training.backends.unsloth import UnslothBackend
from studio.engine.training.data import TokenizedSplit, TrainingData, check_objective, preference_split, tokenize_split

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase, Trainer, TrainerCallback


def select_backend(config: TrainConfig) -> tuple[TrainingBackend, str]:
    """The backend object and the reason it was chosen (studio.engine.training.backends.choice decides)."""
    choice = choose_backend(probe(), config.backend, unsloth_installed())
    backend: TrainingBackend = UnslothBackend() if choice.name == "unsloth" else HFBackend()
    return backend, choice.reason


def model_folder(config: TrainConfig) -> Path:
    """The folder the run's base model loads from (the built-in model materialized, a hub id from the cache)."""
    return resolve_model(config.base_model)


def new_trainer(
    backend: TrainingBackend,
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    data: TrainingData,
    settings: TrainConfig,
    run_dir: Path,
    callbacks: list[TrainerCallback],
) -> Trainer:
    """The run's Trainer on `model` (the adapted one), with the backend's settings; the Trainer writes its
    checkpoints into the run's staging folder, where Studio seals them. Every rank builds it the same way."""
    held = data.held_out.data if data.held_out else None
    staging = trainer_staging_dir(run_dir)
    return build_trainer(model, tokenizer, data.train.data, held, backend.trainer_config(settings), staging, callbacks)


def load_training_data(
    config: TrainConfig, model_path: Path, tokenizer: PreTrainedTokenizerBase
) -> tuple[Dataset, Dataset | None]:
    """The tokenized train and held-out datasets as the Trainer takes them (held-out None when there is none)."""
    data = load_training_splits(config, model_path, tokenizer)
    return data.train.data, data.held_out.data if data.held_out else None


def load_training_splits(config: TrainConfig, model_path: Path, tokenizer: PreTrainedTokenizerBase) -> TrainingData:
    """The prepared train/eval splits (studio.engine.datasets), tokenized with assistant-only masks (preference
    data stays conversational: TRL's preference trainers tokenize it themselves), without the examples the
    config excludes. Exclusion comes after preparation (whose cache and split it leaves alone), so
    every other example keeps its split and its row number."""
    if not config.dataset_path:
        raise StudioError(
            what="No training data was given.",
            why="The run's configuration has no dataset_path.",
            actions=["Pass a file: `studio train --dataset FILE`."],
            code="dataset_missing",
            exit_code=ExitCode.DATASET_UNUSABLE,
        )
    prepared = prepare_for_config(config, model_path)
    check_objective(config.objective, prepared.train.column_names)
    exclude = frozenset(config.exclude_examples)
    if config.objective == "sft":
        train = tokenize_split(prepared.train, tokenizer, config.assistant_only_loss, exclude)
        held = tokenize_split(prepared.eval, tokenizer, config.assistant_only_loss, exclude) if prepared.eval else None
    else:
        train, held = _preference_splits(config, prepared, exclude)
    excluded = train.excluded + (held.excluded if held else 0)
    if len(train.data) == 0:
        raise StudioError(
            what="None of the examples can be trained on.",
            why="After formatting, no example has an answer for the model to learn."
            + (f" ({excluded} were excluded by the settings.)" if excluded else ""),
            actions=[
                "Run `studio validate FILE` to see what Studio reads in the file.",
                "Check that the answers are in the column Studio uses for them.",
            ],
            code="dataset_empty",
            exit_code=ExitCode.DATASET_UNUSABLE,
        )
    return TrainingData(train=train, held_out=held if held is not None and len(held.data) else None, excluded=excluded)


def _preference_splits(
    config: TrainConfig, prepared: PreparedDataset, exclude: frozenset[str]
) -> tuple[TokenizedSplit, TokenizedSplit | None]:
    """The prepared pairs as TRL's preference trainers take them; KTO learns from pairs split into one good
    and one bad answer (TRL's own unpair_preference_dataset)."""

    def split(dataset: Dataset) -> TokenizedSplit:
        found = preference_split(dataset, exclude)
        if config.objective != "kto" or "label" in dataset.column_names:
            return found
        from trl.data_utils import unpair_preference_dataset  # TRL is heavy: only a KTO run on pairs needs it

        return TokenizedSplit(
            data=unpair_preference_dataset(found.data),
            rows=[row for row in found.rows for _ in range(2)],
            fingerprints=[fingerprint for fingerprint in found.fingerprints for _ in range(2)],
            excluded=found.excluded,
        )

    return split(prepared.train), split(prepared.eval) if prepared.eval else None


def prepare_for_config(config: TrainConfig, model_path: Path) -> PreparedDataset:
    """The run's dataset prepared (and cached) exactly as its config asks; shared with `studio train --dry-run`."""
    options = DatasetOptions(
        mapping=config.column_mapping,
        tokenizer_path=model_path,
        max_length=config.max_length,
        profile=config.profile,
        eval_fraction=config.eval_fraction,
        seed=config.seed,
    )
    return prepare_dataset(config.dataset_path or "", options)
