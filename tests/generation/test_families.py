"""Each model family through the same registry path as real weights (tiny models from configs)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from diffusion_assets.generation.control import canny_image
from diffusion_assets.paths import project_relative
from tests.conftest import write_catalog
from tests.generation.helpers import run_partition


def _run(project, shared_provider, text):
    result = run_partition(project, write_catalog(project, "fam", text), shared_provider)
    assert result.generated == len(result.rows) > 0
    return result.rows


def test_sdxl_base_and_refiner_run_in_two_stages(project, shared_provider):
    rows = _run(
        project,
        shared_provider,
        """
defaults: {model: sdxl-base+refiner, steps: 4, width: 32, height: 32, refiner_switch: 0.75}
entries: [{id: a, prompt: "a castle", negative_prompt: "fog"}]
""",
    )
    row = rows[0]
    assert row["pipeline_class"] == "StableDiffusionXLPipeline"
    assert row["refiner_model_id"] == "stabilityai/stable-diffusion-xl-refiner-1.0"
    assert row["refiner_switch"] == 0.75
    assert len(row["refiner_weights_hash"]) == 64
    assert Image.open(project / "data" / row["path"]).size == (32, 32)


def test_refiner_stage_changes_the_image(project, shared_provider):
    base = _run(
        project,
        shared_provider,
        """
seed: 1
defaults: {model: sdxl-base, steps: 4, width: 32, height: 32}
entries: [{id: a, prompt: "a castle"}]
""",
    )[0]
    refined = _run(
        project,
        shared_provider,
        """
seed: 1
defaults: {model: sdxl-base+refiner, steps: 4, width: 32, height: 32}
entries: [{id: a, prompt: "a castle"}]
""",
    )[0]
    assert base["seed"] == refined["seed"]
    assert base["pixel_sha256"] != refined["pixel_sha256"]


@pytest.mark.parametrize(
    ("preset", "extra", "guidance", "kind"),
    [
        ("flux-schnell", "", 0.0, "none"),
        ("flux-dev", "guidance: 3.5", 3.5, "distilled"),
        ("flux-dev", "true_cfg_scale: 2.0\n  negative_prompt: fog", 3.5, "distilled"),
    ],
    ids=["schnell", "dev", "dev-true-cfg"],
)
def test_flux_guidance_semantics(project, shared_provider, preset, extra, guidance, kind):
    rows = _run(
        project,
        shared_provider,
        f"""
defaults:
  model: {preset}
  steps: 2
  width: 32
  height: 32
  {extra}
entries: [{{id: a, prompt: "a lighthouse"}}]
""",
    )
    assert rows[0]["pipeline_class"] == "FluxPipeline"
    assert rows[0]["guidance_scale"] == guidance
    assert rows[0]["guidance_kind"] == kind
    assert rows[0]["scheduler_class"] == "FlowMatchEulerDiscreteScheduler"


def _control_source(project):
    image = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(image).rectangle((16, 16, 48, 48), fill="black")
    path = project / "prompts" / "box.png"
    image.save(path)
    return path


def test_canny_edges_are_the_outline_of_the_source(project):
    edges = np.asarray(canny_image(Image.open(_control_source(project))))[..., 0]
    assert edges[14:19, 30].max() == 255  # the top side of the box
    assert edges[24:40, 24:40].max() == 0 and edges[:8, :8].max() == 0  # inside and far outside


@pytest.mark.parametrize("preset", ["sdxl+controlnet-canny", "sdxl+controlnet-depth"])
def test_controlnet_presets_condition_on_the_catalog_image(project, shared_provider, preset):
    source = _control_source(project)
    rows = _run(
        project,
        shared_provider,
        f"""
defaults: {{model: "{preset}", steps: 2, width: 32, height: 32, controlnet_scale: 0.7}}
entries: [{{id: a, prompt: "a house", control_image: box.png}}]
""",
    )
    row = rows[0]
    assert row["pipeline_class"] == "StableDiffusionXLControlNetPipeline"
    assert row["controlnet_scale"] == 0.7
    assert row["control_preprocess"] == preset.split("-")[-1]
    assert row["control_image_path"] == project_relative(source)  # the same in every clone
    assert len(row["control_image_sha256"]) == 64
    if preset.endswith("depth"):  # the depth model shapes the conditioning image: it is recorded too
        assert row["depth_estimator_id"] and len(row["depth_estimator_weights_hash"]) == 64
    else:
        assert row["depth_estimator_id"] is None and row["depth_estimator_weights_hash"] is None
