"""The generation path on a CUDA device (bf16), with tiny models: skipped on CPU machines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from diffusion_assets.generation.partition import RunInfo, generate_partition
from diffusion_assets.models.loading import LoadOptions
from diffusion_assets.models.provider import ModelProvider
from tests.conftest import write_catalog

pytestmark = pytest.mark.gpu

CATALOG = """
seed: 2
variables: {c: [red, blue, green, cyan]}
defaults: {model: PRESET, steps: 4, width: 64, height: 64, images_per_prompt: 2}
entries: [{id: a, prompt: "a {c} circle"}]
"""


@pytest.mark.parametrize("preset", ["sd15", "sdxl-base+refiner", "flux-schnell", "sdxl+controlnet-canny"])
def test_cuda_bf16_generation_records_device_and_is_reproducible(project, preset):
    if preset == "sdxl+controlnet-canny":
        from PIL import Image

        Image.new("RGB", (64, 64), "white").save(project / "prompts" / "c.png")
        catalog = CATALOG.replace("entries: [{id: a,", "entries: [{id: a, control_image: c.png,")
    else:
        catalog = CATALOG
    provider = ModelProvider(
        LoadOptions(device="cuda", dtype="auto"),
        models_dir=Path(os.environ["DIFFUSION_ASSETS_MODELS"]),
        project_root=project,
        batch_size=4,
    )
    path = write_catalog(project, "gpu", catalog.replace("PRESET", preset))
    first = generate_partition(path, "2026-11-28", project / "data", provider, RunInfo("r1", "k", "t"))
    row = first.rows[0]
    assert row["device"] == "cuda" and row["dtype"] == "bfloat16"
    assert "H200" in row["device_name"] or row["device_name"]
    assert row["peak_memory_bytes"] > 0
    for png in (project / "data" / "images").rglob("*.png"):
        png.unlink()
    again = generate_partition(path, "2026-11-28", project / "data", provider, RunInfo("r2", "k", "t"))
    assert [r["sha256"] for r in again.rows] == [r["sha256"] for r in first.rows]
