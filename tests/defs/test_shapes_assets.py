"""The shapes_world group trains, assembles and registers shapes-tiny (quick recipe: mechanics only)."""

from __future__ import annotations

import json

import dagster as dg

from diffusion_assets.defs.resources import ProjectResource
from diffusion_assets.defs.shapes import (
    ShapesTrainingConfig,
    shapes_clip,
    shapes_tiny,
    shapes_unet,
    shapes_vae,
)
from diffusion_assets.models.presets import PRESETS
from tests.conftest import write_catalog
from tests.generation.helpers import provider, run_partition


def test_quick_recipe_builds_a_loadable_shapes_tiny(project, monkeypatch):
    # the project's own models folder (DIFFUSION_ASSETS_MODELS unset): shapes-tiny is written to the
    # models folder, where `models/shapes-tiny` is looked up first
    monkeypatch.setenv("DIFFUSION_ASSETS_MODELS", str(project / "models"))
    config = ShapesTrainingConfig(recipe="quick", threads=1)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [shapes_vae, shapes_clip, shapes_unet, shapes_tiny],
            instance=instance,
            resources={"project": ProjectResource()},
            run_config=dg.RunConfig(
                {name: config for name in ("shapes_vae", "shapes_clip", "shapes_unet", "shapes_tiny")}
            ),
        )
    assert result.success
    folder = project / "models" / "shapes-tiny"
    assert json.loads((folder / "model_index.json").read_text())["_class_name"] == "StableDiffusionPipeline"
    assert (project / "models" / "shapes-tiny-clip" / "config.json").is_file()
    assert json.loads((folder / "training_config.json").read_text())["unet"]["steps"] == 30
    # the preset loads the freshly trained folder through the registry, like any other model
    catalog = write_catalog(
        project,
        "demo",
        "defaults: {model: shapes-tiny, steps: 2}\nentries: [{id: a, prompt: a red circle on a gray background}]",
    )
    rows = run_partition(project, catalog, provider(project)).rows
    assert rows[0]["preset"] == PRESETS["shapes-tiny"].name and (rows[0]["width"], rows[0]["height"]) == (
        32,
        32,
    )
