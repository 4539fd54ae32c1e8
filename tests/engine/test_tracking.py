"""Experiment tracking: the mapping from settings to the trainer's reporting, and TensorBoard for real."""

from __future__ import annotations

import importlib.util
import os

import pytest

from studio.engine.errors import StudioError
from studio.engine.tracking import TrackingPlan, mlflow_dir, plan_tracking, tensorboard_dir


def everything_installed(_name: str) -> bool:
    return True


def test_off_by_default_reports_nowhere(tmp_path):
    plan = plan_tracking([], tmp_path, "run", environ={})
    assert plan == TrackingPlan(report_to="none", env={})


def test_tensorboard_logs_inside_the_run(tmp_path):
    plan = plan_tracking(["tensorboard"], tmp_path, "run", environ={}, installed=everything_installed)
    assert plan.report_to == ["tensorboard"]
    assert plan.env == {"TENSORBOARD_LOGGING_DIR": str(tmp_path / "logs" / "tensorboard")}


def test_wandb_is_offline_without_an_api_key(tmp_path):
    plan = plan_tracking(["wandb"], tmp_path, "my-run", environ={}, installed=everything_installed)
    assert plan.env["WANDB_MODE"] == "offline"
    assert plan.env["WANDB_DIR"] == str(tmp_path / "logs")
    assert plan.env["WANDB_NAME"] == "my-run"


@pytest.mark.parametrize(("environ", "offline"), [
    ({"WANDB_API_KEY": "k"}, False),
    ({"WANDB_API_KEY": "k", "HF_HUB_OFFLINE": "1"}, True),
    ({"WANDB_API_KEY": "k", "STUDIO_OFFLINE": "1"}, True),
])
def test_wandb_goes_online_only_with_a_key_and_a_network(tmp_path, environ, offline):
    plan = plan_tracking(["wandb"], tmp_path, "r", environ=environ, installed=everything_installed)
    assert (plan.env.get("WANDB_MODE") == "offline") is offline


def test_mlflow_uses_a_file_store_in_the_run(tmp_path):
    plan = plan_tracking(["mlflow"], tmp_path, "r", environ={}, installed=everything_installed)
    assert plan.env["MLFLOW_TRACKING_URI"] == mlflow_dir(tmp_path).resolve().as_uri()
    assert plan.env["MLFLOW_TRACKING_URI"].startswith("file:")


def test_the_users_own_settings_win(tmp_path):
    environ = {"MLFLOW_TRACKING_URI": "http://mlflow.local:5000", "WANDB_MODE": "disabled"}
    plan = plan_tracking(["mlflow", "wandb", "tensorboard"], tmp_path, "r", environ=environ,
                         installed=everything_installed)
    assert plan.report_to == ["tensorboard", "wandb", "mlflow"]
    assert "MLFLOW_TRACKING_URI" not in plan.env
    assert "WANDB_MODE" not in plan.env
    target: dict[str, str] = dict(environ)
    plan.apply(target)
    assert target["MLFLOW_TRACKING_URI"] == "http://mlflow.local:5000"
    assert target["TENSORBOARD_LOGGING_DIR"] == str(tensorboard_dir(tmp_path))


def test_a_selected_tracker_that_is_not_installed_is_a_clear_error(tmp_path):
    with pytest.raises(StudioError) as caught:
        plan_tracking(["tensorboard", "wandb"], tmp_path, "r", environ={}, installed=lambda name: name != "wandb")
    assert caught.value.code == "tracker_missing"
    assert any("pip install wandb" in action for action in caught.value.actions)


def test_the_real_installation_is_checked(tmp_path):
    for name in ("wandb", "mlflow"):
        if importlib.util.find_spec(name) is None:
            with pytest.raises(StudioError, match=name):
                plan_tracking([name], tmp_path, "r", environ={})
        else:
            assert plan_tracking([name], tmp_path, "r", environ={}).report_to == [name]


def test_unknown_tracker_is_refused(tmp_path):
    with pytest.raises(StudioError) as caught:
        plan_tracking(["comet"], tmp_path, "r", environ={})
    assert caught.value.code == "tracker_unknown"


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard is not installed")
def test_tensorboard_receives_the_losses_of_a_real_training(tmp_path, tiny_model_dir, monkeypatch):
    """Two steps of the tiny model through the trainers' standard reporting write TensorBoard event files."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    run_dir = tmp_path / "run"
    plan = plan_tracking(["tensorboard"], run_dir, "tb-run")
    for key, value in plan.env.items():
        monkeypatch.setenv(key, value)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.randint(0, 100, (4, 16)).tolist()
    data = Dataset.from_dict({"input_ids": ids, "labels": ids})
    args = TrainingArguments(output_dir=str(run_dir / "out"), max_steps=2, per_device_train_batch_size=2,
                             logging_steps=1, report_to=plan.report_to, save_strategy="no", disable_tqdm=True,
                             use_cpu=True)
    Trainer(model=model, args=args, train_dataset=data).train()
    events = list(tensorboard_dir(run_dir).rglob("events.out.tfevents.*"))
    assert events, "TensorBoard wrote nothing"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(events[0].parent))
    accumulator.Reload()
    assert len(accumulator.Scalars("train/loss")) == 2


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard is not installed")
def test_the_training_backend_reports_where_the_config_asks(tmp_path, monkeypatch):
    from studio.engine.config import TrainConfig
    from studio.engine.training.backends.hf import sft_config

    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    run_dir = tmp_path / "run-1"
    off = sft_config(TrainConfig(), run_dir / ".staging", has_eval=False, device="cpu")
    on = sft_config(TrainConfig(report_to=["tensorboard"]), run_dir / ".staging", has_eval=False, device="cpu")
    assert off.report_to in ("none", [])
    assert on.report_to == ["tensorboard"]
    assert os.environ["TENSORBOARD_LOGGING_DIR"] == str(tensorboard_dir(run_dir))  # inside the run
