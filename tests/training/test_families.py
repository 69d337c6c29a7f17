"""SDXL and Flux: target modules, key format, a short training run that loads cleanly; Min-SNR weights."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDPMScheduler
from safetensors.torch import load_file

from diffusion_assets.training.families import FAMILIES, min_snr_weights
from diffusion_assets.training.lora import train_lora
from diffusion_assets.training.metadata import read_adapter_metadata
from tests.training.conftest import config, lineage

CASES = [
    # tiny kind, key prefix, kohya version, a module only this family adapts, extra config
    # SDXL: kohya's layout (lora_unet_<module, . as _>); Flux: peft keys under transformer.
    ("sdxl-base", "lora_unet_", "sdxl_base_v1-0", "attn2_to_k", {}),
    ("flux-dev", "transformer.", "flux1", "attn.add_q_proj", {"max_sequence_length": 32}),
]


@pytest.mark.parametrize(("kind", "prefix", "version", "module", "extra"), CASES)
def test_family_trains_and_loads_cleanly(
    kind, prefix, version, module, extra, dataset_dir, tmp_path, library_warnings
):
    from diffusers import DiffusionPipeline

    from diffusion_assets.models.tiny import build_tiny

    base = build_tiny(kind, tmp_path / kind)
    cfg = config(
        steps=3, validation_every=3, validation_prompts=("a red circle",), validation_steps=2, **extra
    )
    result = train_lora(dataset_dir, base, tmp_path / "out", cfg, lineage(base_model_id=kind))

    tensors = load_file(result.weights_path)
    assert all(k.startswith(prefix) for k in tensors)
    assert any(f"{module}.lora" in k for k in tensors)
    assert read_adapter_metadata(result.weights_path)["ss_base_model_version"] == version
    assert len(list(result.validation_dirs[0].glob("*.png"))) == 1
    pipe = DiffusionPipeline.from_pretrained(base)
    library_warnings.clear()
    pipe.load_lora_weights(result.weights_path.parent)
    problems = [
        r.getMessage() for r in library_warnings if "No LoRA keys associated to" not in r.getMessage()
    ]
    assert problems == []


@pytest.mark.parametrize(("family", "denoiser"), [("sd", "unet"), ("sdxl", "unet"), ("flux", "transformer")])
def test_every_family_targets_attention_projections(family, denoiser):
    assert FAMILIES[family].denoiser == denoiser
    assert {"to_q", "to_k", "to_v", "to_out.0"} <= set(FAMILIES[family].target_modules)


def _scheduler(prediction_type: str) -> DDPMScheduler:
    # the shapes-tiny recipe: zero terminal SNR (Lin et al. 2023)
    return DDPMScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        prediction_type=prediction_type,
        rescale_betas_zero_snr=True,
    )


@pytest.mark.parametrize(
    ("prediction_type", "t", "expected"),
    [
        ("epsilon", 999, 1.0),  # SNR = 0: min(SNR, g) / SNR -> 1, not 0/0
        ("v_prediction", 999, 0.0),  # min(0, g) / (0 + 1)
        ("epsilon", 0, "gamma/snr"),  # high SNR: clipped to gamma
        ("v_prediction", 0, "gamma/(snr+1)"),
    ],
)
def test_min_snr_weights(prediction_type, t, expected):
    scheduler = _scheduler(prediction_type)
    gamma = 5.0
    weight = float(min_snr_weights(scheduler, torch.tensor([t]), gamma)[0])
    a = float(scheduler.alphas_cumprod[t])
    snr = a / (1 - a)
    if expected == "gamma/snr":
        expected = gamma / snr
    elif expected == "gamma/(snr+1)":
        expected = gamma / (snr + 1)
    assert weight == pytest.approx(expected, rel=1e-4, abs=1e-6)
