"""The planner's and backends' per-model choices are right for all five families (tests/families).

Target modules: "all-linear" must reach every linear layer of the decoder, including Phi-3's fused
qkv_proj/gate_up_proj, and never the output head. LoRA defaults come from the profile whatever the family,
and the planner's adapter-size estimate matches what PEFT really trains. Padding: training batches are
right-padded even where the tokenizer says left (Gemma). EOS: a tokenizer without a pad token gets one,
and the token that ends the assistant's turn is learned, so the trained model stops.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.engine.config import TrainConfig
from studio.engine.hardware import HardwareProfile
from studio.engine.models.facts import read_model_facts
from studio.engine.planner.memory import adapter_params
from studio.engine.planner.plan import plan
from studio.engine.profiles import get_profile
from studio.engine.training.backends.base import linear_module_names
from studio.engine.training.backends.hf import HFBackend, build_sft_trainer
from studio.engine.training.data import tokenize_conversation
from tests.families import FAMILIES, FamilyModels

NAMES = sorted(FAMILIES)
# The linear layers each family's decoder block really has (Phi-3 fuses q/k/v and gate/up).
EXPECTED_LINEAR = {
    "llama3": {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
    "qwen2": {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
    "gemma3": {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
    "mistral": {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
    "phi3": {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"},
}
MESSAGES = [
    {"role": "system", "content": "You are Pip."},
    {"role": "user", "content": "What is 2 plus 3?"},
    {"role": "assistant", "content": "Pip here! 2 plus 3 makes 5."},
]


def _cpu() -> HardwareProfile:
    return HardwareProfile(os="Linux", cpu_name="Test CPU", cpu_cores=4, ram_total_mb=16384,
                           ram_available_mb=12000, disk_free_mb=200_000)


def _planned(path: Path) -> TrainConfig:
    return plan(_cpu(), read_model_facts(path), get_profile("chatbot")).config


@pytest.mark.parametrize("name", NAMES)
def test_all_linear_adapts_every_decoder_linear_layer_and_not_the_head(family_models: FamilyModels,
                                                                       name: str) -> None:
    path = family_models.path(name)
    config = _planned(path)
    backend = HFBackend()
    model, _tokenizer = backend.load(config, path)
    assert linear_module_names(model) == sorted(EXPECTED_LINEAR[name])  # what Unsloth is given for all-linear
    peft_model = backend.apply_adapter(model, config)
    adapted = {name.rsplit(".", 1)[-1] for name, module in peft_model.named_modules() if hasattr(module, "lora_A")}
    assert adapted == EXPECTED_LINEAR[name]
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert trainable == adapter_params(read_model_facts(path), config)  # the planner's memory estimate is exact


@pytest.mark.parametrize("name", NAMES)
def test_lora_defaults_come_from_the_profile_for_every_family(family_models: FamilyModels, name: str) -> None:
    config = _planned(family_models.path(name))
    lora = get_profile("chatbot").lora
    assert (config.lora_r, config.lora_alpha, config.lora_dropout, config.target_modules) == (
        lora.r, lora.alpha, lora.dropout, "all-linear")
    assert config.method == "lora"


@pytest.mark.parametrize("name", NAMES)
def test_training_batches_are_right_padded_and_the_end_of_turn_is_learned(
    family_models: FamilyModels, name: str, tmp_path: Path
) -> None:
    from datasets import Dataset

    path = family_models.path(name)
    config = _planned(path).updated(max_steps=1, eval_every_steps=None, report_to=[])
    model, tokenizer = HFBackend().load(config, path)
    assert tokenizer.pad_token_id is not None  # given one when the family has none (Llama 3, Mistral)
    row = tokenize_conversation(tokenizer, MESSAGES, assistant_only=True)
    end = tokenizer.convert_tokens_to_ids(FAMILIES[name].end_of_turn)
    ends = [i for i, token in enumerate(row["input_ids"]) if token == end]
    assert ends and row["assistant_masks"][ends[-1]] == 1  # the model learns to end its turn
    short = {"input_ids": row["input_ids"][:5], "assistant_masks": row["assistant_masks"][:5]}
    data = Dataset.from_list([short, row])
    trainer = build_sft_trainer(HFBackend().apply_adapter(model, config), tokenizer, data, None, config,
                                tmp_path / ".staging", [])
    batch = trainer.data_collator([data[0], data[1]])
    assert batch["attention_mask"][0].tolist() == [1] * 5 + [0] * (len(row["input_ids"]) - 5)  # padded right
