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


def test_the_projects_own_models_follow_the_models_folder(tmp_path):
    """Issue 10 item 10: ``models/shapes-tiny`` is looked up in the models folder
    (``DIFFUSION_ASSETS_MODELS``) before the project root, at load and at validation alike."""
    from diffusion_assets.catalog.model_files import model_folder

    elsewhere, project = tmp_path / "mirror", tmp_path / "project"
    (elsewhere / "shapes-tiny").mkdir(parents=True)
    (project / "models" / "shapes-tiny").mkdir(parents=True)
    found = locate("models/shapes-tiny", models_dir=elsewhere, project_root=project, local=True)
    assert found == elsewhere / "shapes-tiny"
    # not in the models folder: the project root's copy, and both places named when neither has it
    (elsewhere / "shapes-tiny").rmdir()
    assert locate("models/shapes-tiny", models_dir=elsewhere, project_root=project, local=True) == (
        project / "models" / "shapes-tiny"
    )
    (project / "models" / "shapes-tiny").rmdir()
    with pytest.raises(ModelNotAvailableError) as info:
        locate("models/shapes-tiny", models_dir=elsewhere, project_root=project, local=True)
    assert str(elsewhere / "shapes-tiny") in str(info.value) and str(project / "models") in str(info.value)
    (elsewhere / "shapes-tiny").mkdir()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DIFFUSION_ASSETS_MODELS", str(elsewhere))
        env.setenv("DIFFUSION_ASSETS_ROOT", str(project))
        assert model_folder(PRESETS["shapes-tiny"]).folder == elsewhere / "shapes-tiny"


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
