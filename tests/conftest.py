"""Shared fixtures: tiny models from configs in an offline mirror, and a throwaway project."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# hub id in the offline mirror → tiny kind built from configs (diffusers' own tests do the same)
MIRROR = {
    "stable-diffusion-v1-5/stable-diffusion-v1-5": "sd15",
    "stabilityai/stable-diffusion-xl-base-1.0": "sdxl-base",
    "stabilityai/stable-diffusion-xl-refiner-1.0": "sdxl-refiner",
    "black-forest-labs/FLUX.1-schnell": "flux-schnell",
    "black-forest-labs/FLUX.1-dev": "flux-dev",
    "diffusers/controlnet-canny-sdxl-1.0": "controlnet-sdxl",
    "diffusers/controlnet-depth-sdxl-1.0": "controlnet-sdxl",
    "Intel/dpt-hybrid-midas": "depth-estimator",
}


@pytest.fixture(scope="session")
def tiny_mirror(tmp_path_factory) -> Path:
    """``<dir>/<hub id>`` folders of tiny random-weight models, laid out like an offline mirror."""
    from diffusion_assets.models.tiny import build_tiny

    root = tmp_path_factory.mktemp("models")
    for hub_id, kind in MIRROR.items():
        build_tiny(kind, root / hub_id)
    return root


@pytest.fixture
def project(tmp_path, tiny_mirror, monkeypatch) -> Path:
    """A project root with empty prompts/ and data/, using the tiny mirror as its models folder."""
    (tmp_path / "prompts").mkdir()
    monkeypatch.setenv("DIFFUSION_ASSETS_ROOT", str(tmp_path))
    monkeypatch.setenv("DIFFUSION_ASSETS_PROMPTS", str(tmp_path / "prompts"))
    monkeypatch.setenv("DIFFUSION_ASSETS_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("DIFFUSION_ASSETS_MODELS", str(tiny_mirror))
    return tmp_path


def write_catalog(project: Path, name: str, text: str) -> Path:
    path = project / "prompts" / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def shared_provider(tiny_mirror, tmp_path_factory):
    """One CPU provider for the whole session, so each tiny model is loaded once across tests."""
    from diffusion_assets.models.loading import LoadOptions
    from diffusion_assets.models.provider import ModelProvider

    return ModelProvider(
        LoadOptions(device="cpu"),
        models_dir=tiny_mirror,
        project_root=tmp_path_factory.mktemp("root"),
        batch_size=4,
    )


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny models run fastest on one thread, and 2-core CI machines stay responsive."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run only where CUDA is available."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
