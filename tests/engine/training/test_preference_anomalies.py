"""A real DPO run of the tiny model with a learning rate far too low to learn anything: the reward-accuracy
rule sees the model fail to tell the chosen answers from the rejected ones, advises the first time, and stops
the run when the next window is no better. Built the way the worker builds its Trainer (Studio's backend,
data loading and TRL's DPOTrainer), with the anomaly callback the worker uses; only the windows are shortened
so that the rule can fire within a few steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.engine.anomalies import AnomalyMonitor, Thresholds
from studio.engine.anomalies.callback import AnomalyCallback
from studio.engine.events import Anomaly, Event, Recovery
from studio.engine.training.setup import load_training_splits, model_folder, new_trainer, select_backend
from tests.engine.training.test_preference import config_for, write_pairs

SHORT = Thresholds(accuracy_warmup_steps=2, accuracy_window=3, cooldown_steps=3, pref_smooth_window=3)
MAX_STEPS = 10


def train_dpo(tmp_path: Path, model_dir: Path, learning_rate: float) -> tuple[AnomalyCallback, list[Event], int]:
    settings = config_for(model_dir, write_pairs(tmp_path / "pairs.jsonl"), "dpo", learning_rate=learning_rate,
                          max_steps=MAX_STEPS, checkpoint_every_steps=1000, logging_steps=1)
    backend, _ = select_backend(settings)
    path = model_folder(settings)
    model, tokenizer = backend.load(settings, path)
    data = load_training_splits(settings, path, tokenizer)
    model = backend.apply_adapter(model, settings)
    events: list[Event] = []
    monitor = AnomalyMonitor(SHORT, objective="dpo", beta=settings.beta)  # as the recipe builds it
    callback = AnomalyCallback(monitor, events.append, "auto", run_id="dpo-too-slow")
    trainer = new_trainer(backend, model, tokenizer, data, settings, tmp_path / "run", [callback])
    trainer.train()
    return callback, events, trainer.state.global_step


@pytest.mark.slow
def test_a_dpo_run_that_cannot_learn_is_reported_then_stopped(tmp_path: Path, tiny_model_dir: Path) -> None:
    callback, events, last_step = train_dpo(tmp_path, tiny_model_dir, learning_rate=1e-7)

    anomalies = [e for e in events if isinstance(e, Anomaly)]
    assert [a.anomaly for a in anomalies] == ["accuracy_at_chance", "accuracy_at_chance"], anomalies
    first, second = anomalies
    assert first.evidence["flat"] is True and first.evidence["mean_abs_margin"] < SHORT.accuracy_flat_margin
    assert "not learning which answer is better" in first.message
    assert first.actions == [] and first.extra["checkpoint_now"] is True  # advice first, the model is sound
    assert any("learning rate" in hint for hint in first.extra["advice"])
    assert second.actions == ["stop_training"]
    [stop] = callback.take_recovery()  # the worker's part: it ends the run and keeps the best checkpoint
    assert stop.kind == "stop_training" and "coin flip" in stop.message
    assert last_step == second.step < MAX_STEPS  # the Trainer's loop ended at once
    assert not [e for e in events if isinstance(e, Recovery)]  # nothing claimed before the worker acts
