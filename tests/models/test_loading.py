"""Model lookup: the offline mirror, the HF cache, and loud errors that name the fix."""

from __future__ import annotations

import pytest

from diffusion_assets.models.loading import ModelNotAvailableError, locate, resolve_device, resolve_dtype
from diffusion_assets.models.presets import PRESETS, preset_for_folder
from diffusion_assets.models.tiny import build_tiny


def test_missing_model_error_names_id_places_and_command(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(ModelNotAvailableError) as info:
        locate(
            "stabilityai/stable-diffusion-xl-base-1.0", models_dir=tmp_path / "models", project_root=tmp_path
        )
    message = str(info.value)
    assert "'stabilityai/stable-diffusion-xl-base-1.0'" in message
    assert str(tmp_path / "models" / "stabilityai/stable-diffusion-xl-base-1.0") in message
    assert "hf download stabilityai/stable-diffusion-xl-base-1.0" in message
    assert "HF_HUB_OFFLINE=1" in message


def test_mirror_folder_is_found(tmp_path):
    folder = tmp_path / "models" / "org" / "name"
    folder.mkdir(parents=True)
    assert locate("org/name", models_dir=tmp_path / "models", project_root=tmp_path) == folder


def test_missing_local_preset_folder_says_how_to_rebuild(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="does not exist"):
        locate("models/nothing", models_dir=tmp_path, project_root=tmp_path, local=True)


def test_explicit_cuda_on_a_cpu_machine_is_an_error_not_a_fallback():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="no silent CPU fallback"):
        resolve_device("cuda")


@pytest.mark.parametrize(
    ("dtype", "device", "expected"),
    [
        ("auto", "cuda", "bfloat16"),
        ("auto", "cuda:1", "bfloat16"),
        ("auto", "cpu", "float32"),
        ("auto", "mps", "float16"),
        ("float16", "cpu", "float16"),
    ],
)
def test_dtype_resolution(dtype, device, expected):
    assert str(resolve_dtype(dtype, device)) == f"torch.{expected}"


def test_local_folder_is_described_from_its_model_index(tmp_path):
    folder = build_tiny("sd15", tmp_path / "sd15")
    preset = preset_for_folder(folder)
    assert (preset.family, preset.pipeline_class, preset.local) == ("sd", "StableDiffusionPipeline", True)
    assert preset.width == preset.height == 32  # from the tiny UNet's sample_size × VAE scale


@pytest.mark.parametrize(
    "name",
    [
        "sd15",
        "sdxl-base",
        "sdxl-base+refiner",
        "flux-schnell",
        "flux-dev",
        "sdxl+controlnet-canny",
        "sdxl+controlnet-depth",
    ],
)
def test_required_presets_exist_with_hub_ids(name):
    preset = PRESETS[name]
    assert "/" in preset.model_id and not preset.local


def test_preset_defaults_follow_the_model_cards():
    assert (PRESETS["flux-schnell"].steps, PRESETS["flux-schnell"].guidance) == (4, 0.0)
    assert (PRESETS["sdxl-base"].steps, PRESETS["sdxl-base"].width) == (30, 1024)
