"""lora_applies: passes a trained adapter, catches a no-op one."""

from __future__ import annotations

import torch
from safetensors.torch import load_file, save_file

from diffusion_assets.training.applies import lora_applies
from diffusion_assets.training.metadata import read_adapter_metadata
from tests.training.conftest import PROMPT


def test_trained_adapter_applies(trained, sd15_dir):
    passed, details = lora_applies(sd15_dir, trained.result.weights_path, PROMPT, seed=3, steps=5, size=32)
    assert passed, details
    assert details["zero_equals_base"] and details["mean_abs_diff"] > details["threshold"]


def test_adapter_with_zero_up_weights_is_caught(trained, sd15_dir, tmp_path):
    tensors = load_file(trained.result.weights_path)
    planted = {k: torch.zeros_like(v) if ".lora_up." in k else v for k, v in tensors.items()}
    path = tmp_path / "noop.safetensors"
    save_file(planted, str(path), metadata=read_adapter_metadata(trained.result.weights_path))

    passed, details = lora_applies(sd15_dir, path, PROMPT, seed=3, steps=5, size=32)
    assert not passed
    assert details["zero_equals_base"] and details["mean_abs_diff"] == 0.0
    assert "no-op" in details["reason"]
