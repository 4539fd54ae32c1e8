"""The training configuration: one validated, JSON-serializable object shared by planner, worker, CLI and GUI.

Validation errors are turned into plain language (which field, what is allowed, what to do), because the
people who edit these files are often not the people who wrote them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from studio.engine.errors import StudioError
from studio.engine.models.builtin import BUILTIN_MODEL_ID
from studio.engine.paths import presets_dir

Method = Literal["lora", "qlora", "dora", "rslora", "pissa"]
Objective = Literal["sft", "dpo", "orpo", "kto"]
PREFERENCE_OBJECTIVES = frozenset({"dpo", "orpo", "kto"})
Precision = Literal["fp32", "fp16", "bf16"]
Quantization = Literal["none", "8bit", "4bit"]
Backend = Literal["auto", "hf", "unsloth"]
AnomalyMode = Literal["auto", "ask", "off"]
Scheduler = Literal["cosine", "linear", "constant", "constant_with_warmup"]

CONFIG_SCHEMA_VERSION = 1


class TrainConfig(BaseModel):
    """Everything a training run needs besides the data itself. Field descriptions double as help text."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    schema_version: int = Field(CONFIG_SCHEMA_VERSION, description="Version of this file's layout.")
    base_model: str = Field(BUILTIN_MODEL_ID, description="Model to fine-tune: 'builtin:…', a Hub id or a folder.")
    profile: str = Field("chatbot", description="Use-case profile the defaults were chosen for.")
    dataset_path: str | None = Field(None, description="The training data file.")
    column_mapping: dict[str, str] | None = Field(
        None, description="Which columns hold the prompt, answer and so on, when Studio could not tell."
    )
    method: Method = Field("lora", description="How the model is adapted: lora, qlora, dora, rslora or pissa.")
    objective: Objective = Field(
        "sft",
        description="What the model learns: sft imitates the answers; dpo and orpo learn which of two answers "
        "(chosen, rejected) is better; kto learns from single answers marked good or bad.",
    )
    beta: float = Field(
        0.1,
        gt=0.0,
        le=10.0,
        description="Preference tuning only: how strongly the preferences count. With dpo and kto, higher keeps "
        "the model closer to where it started; with orpo, it weighs the preference against imitating the "
        "chosen answer.",
    )
    lora_r: int = Field(16, ge=1, le=1024, description="Adapter rank: higher learns more, uses more memory.")
    lora_alpha: int = Field(32, ge=1, le=4096, description="Adapter scaling; usually twice the rank.")
    lora_dropout: float = Field(0.05, ge=0.0, le=0.5, description="Dropout inside the adapter.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="Which layers get an adapter."
    )
    precision: Precision = Field("fp32", description="Number format for training.")
    quantization: Quantization = Field("none", description="Base weights compressed to save memory (CUDA only).")
    learning_rate: float = Field(2e-4, gt=0.0, le=1e-2, description="Step size of each update.")
    lr_scheduler: Scheduler = Field("cosine", description="How the learning rate changes over the run.")
    warmup_ratio: float = Field(0.03, ge=0.0, le=0.5, description="Share of steps that ramp the rate up.")
    weight_decay: float = Field(0.0, ge=0.0, le=1.0, description="Pull of weights towards zero.")
    num_epochs: float = Field(3.0, gt=0.0, le=100.0, description="Passes over the training data.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many steps (overrides epochs).")
    micro_batch_size: int = Field(4, ge=1, le=1024, description="Examples processed at once.")
    gradient_accumulation: int = Field(4, ge=1, le=1024, description="Micro-batches per update.")
    max_length: int = Field(512, ge=16, le=262144, description="Longest example in tokens; longer ones are cut.")
    gradient_checkpointing: bool = Field(False, description="Trade speed for memory by recomputing activations.")
    max_grad_norm: float = Field(1.0, gt=0.0, le=1000.0, description="Clip gradients above this size.")
    packing: bool = Field(False, description="Pack several short examples into one row.")
    padding_free: bool = Field(False, description="Batch without padding (needs packing-capable attention).")
    group_by_length: bool = Field(True, description="Batch examples of similar length together.")
    assistant_only_loss: bool = Field(True, description="Learn only from the answers, not the prompts.")
    eval_fraction: float = Field(0.1, ge=0.0, le=0.5, description="Share of the data held out for checking.")
    eval_every_steps: int | None = Field(None, ge=1, description="Steps between checks on held-out data.")
    checkpoint_every_steps: int = Field(200, ge=1, description="Steps between saved checkpoints.")
    keep_best_checkpoints: int = Field(1, ge=0, le=100, description="Best checkpoints (by eval loss) to keep.")
    keep_last_checkpoints: int = Field(2, ge=1, le=100, description="Most recent checkpoints to keep.")
    early_stopping_patience: int | None = Field(None, ge=1, description="Evaluations without improvement.")
    early_stopping_min_delta: float = Field(0.0, ge=0.0, description="Smallest improvement that counts.")
    hardest_top_n: int = Field(
        10,
        ge=0,
        le=1000,
        description="Held-out examples with the highest loss shown after each check on held-out data, to spot "
        "mislabeled or broken rows; 0 turns it off.",
    )
    score_examples: bool = Field(
        True,
        description="After training, measure how well the model fits every example, for the hardest-examples "
        "report.",
    )
    score_examples_limit: int = Field(
        20000,
        ge=1,
        description="At most this many examples of each split are measured for the report (the report says "
        "when some were left out).",
    )
    exclude_examples: list[str] = Field(
        default_factory=list,
        description="Examples left out of training and of the held-out data, by fingerprint (set by "
        "\"exclude from the next version\" in the hardest-examples report).",
    )
    logging_steps: int = Field(1, ge=1, description="Steps between progress reports.")
    seed: int = Field(42, ge=0, description="Random seed, for repeatable runs.")
    backend: Backend = Field("auto", description="Training engine: auto, hf (transformers) or unsloth.")
    anomaly_mode: AnomalyMode = Field("auto", description="What to do when training goes wrong.")
    report_to: list[Literal["tensorboard", "wandb", "mlflow"]] = Field(
        default_factory=list, description="Experiment trackers to report to."
    )
    trust_remote_code: bool = Field(False, description="Run code shipped with a model (only for trusted models).")
    init_adapter: str | None = Field(
        None,
        min_length=1,
        description="A trained adapter folder to start from (continuing a run); its own rank and layers are "
        "kept, the adapter settings above are then ignored.",
    )
    compare_adapter: str | None = Field(
        None,
        min_length=1,
        description="A trained adapter folder for the same base model (usually the version in use now), "
        "measured on this run's held-out examples after training, so both versions are compared on the same "
        "data.",
    )
    num_processes: int = Field(
        1, ge=1, le=4096, description="Training processes (one per GPU) when launched with `accelerate launch`."
    )

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.method == "qlora" and self.quantization == "none":
            object.__setattr__(self, "quantization", "4bit")
        return self

    @property
    def effective_batch_size(self) -> int:
        """Examples per optimizer step, across every data-parallel process."""
        return self.micro_batch_size * self.gradient_accumulation * self.num_processes

    # ---- files -------------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "the configuration") -> TrainConfig:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise config_error(exc, source) from None

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read JSON or YAML; accepts the output of `studio plan --json` (its `config` part) as-is."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise StudioError(
                what=f"Studio could not read the configuration file {path}.",
                why=exc.strerror or str(exc),
                actions=["Check that the file exists and that you may read it.", "Pass another file."],
                code="config_unreadable",
            ) from None
        is_yaml = path.suffix.lower() in {".yaml", ".yml"}
        try:
            data = yaml.safe_load(text) if is_yaml else json.loads(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise StudioError(
                what=f"The configuration file {path} is not valid {'YAML' if is_yaml else 'JSON'}.",
                why=str(exc).splitlines()[0],
                actions=[
                    "Fix the syntax error at the place named above.",
                    "Export a fresh one with `studio plan --json`.",
                ],
                code="config_syntax",
            ) from None
        if isinstance(data, dict) and isinstance(data.get("config"), dict):
            data = data["config"]
        if not isinstance(data, dict):
            raise StudioError(
                what=f"The configuration file {path} does not hold a set of settings.",
                why="Its top level is not a mapping of names to values.",
                actions=["Start from the output of `studio plan --json`."],
                code="config_shape",
            )
        return cls.from_dict(data, source=str(path))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.model_dump(mode="json")
        text = yaml.safe_dump(data, sort_keys=False) if path.suffix.lower() in {".yaml", ".yml"} else (
            json.dumps(data, indent=2) + "\n"
        )
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        return path

    def updated(self, **changes: Any) -> TrainConfig:
        """A validated copy with some fields changed."""
        return TrainConfig.from_dict({**self.model_dump(mode="json"), **changes})

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        return cls.model_json_schema()


def config_error(exc: ValidationError, source: str) -> StudioError:
    """Turn pydantic's report into sentences that name the field, what is allowed and what to do."""
    problems = []
    for err in exc.errors():
        field_name = ".".join(str(part) for part in err["loc"]) or "(top level)"
        given = err.get("input")
        ctx = err.get("ctx") or {}
        kind = err["type"]
        if kind == "extra_forbidden":
            problems.append(f"'{field_name}' is not a setting Studio knows; remove it or check its spelling.")
        elif kind == "literal_error":
            problems.append(f"'{field_name}' is {given!r}; allowed values are {ctx.get('expected')}.")
        elif kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
            bound = next(iter(ctx.values()), "?")
            relation = {"greater_than": "above", "greater_than_equal": "at least",
                        "less_than": "below", "less_than_equal": "at most"}[kind]
            problems.append(f"'{field_name}' is {given!r}; it must be {relation} {bound}.")
        elif kind == "missing":
            problems.append(f"'{field_name}' is missing; add it.")
        else:
            problems.append(f"'{field_name}' is {given!r}: {err['msg'].lower()}.")
    return StudioError(
        what=f"Some settings in {source} are not valid.",
        why=" ".join(problems),
        actions=[
            "Change the values named above and try again.",
            "Let Studio choose: run `studio plan --json` and start from its config.",
        ],
        code="config_invalid",
    )


# ---- presets ---------------------------------------------------------------------------------------

def save_preset(name: str, config: TrainConfig) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_ " else "_" for ch in name).strip() or "preset"
    return config.save(presets_dir() / f"{safe}.json")


def list_presets() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob("*.json"))


def load_preset(name: str) -> TrainConfig:
    path = presets_dir() / f"{name}.json"
    if not path.exists():
        raise StudioError(
            what=f"There is no preset called '{name}'.",
            why=f"Studio looked for {path}.",
            actions=[f"Pick one of: {', '.join(list_presets()) or '(none saved yet)'}.", "Import a preset file."],
            code="preset_missing",
        )
    return TrainConfig.load(path)


def import_preset(path: str | Path, name: str | None = None) -> Path:
    config = TrainConfig.load(path)
    return save_preset(name or Path(path).stem, config)


def export_preset(name: str, destination: str | Path) -> Path:
    return load_preset(name).save(destination)
