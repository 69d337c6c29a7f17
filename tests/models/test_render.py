"""The shapes-render preset: exact renders through the registry, readable by the checker."""

from __future__ import annotations

import pytest
from PIL import Image

from diffusion_assets.shapes.captions import parse_caption
from diffusion_assets.shapes.checker import read_image
from tests.conftest import write_catalog
from tests.generation.helpers import provider, run_partition

ROOT_MODELS = __import__("pathlib").Path(__file__).resolve().parents[2] / "models"


@pytest.fixture
def render_project(project, monkeypatch):
    monkeypatch.setenv("DIFFUSION_ASSETS_ROOT", str(ROOT_MODELS.parent))
    return project


def test_render_preset_draws_what_the_prompt_says(render_project):
    project = render_project
    catalog = write_catalog(
        project,
        "outline",
        """
defaults: {model: shapes-render, images_per_prompt: 3}
entries:
  - id: a
    prompt: "a {c} triangle on a black background, in sks outline style"
    variables: {c: [cyan, yellow]}
""",
    )
    prov = provider(ROOT_MODELS.parent)
    result = run_partition(project, catalog, prov)
    assert result.generated == 6
    for row in result.rows:
        assert read_image(Image.open(project / "data" / row["path"])).attrs == parse_caption(row["prompt"])
    assert row["pipeline_class"] == "ShapesRenderPipeline"
    assert len({r["pixel_sha256"] for r in result.rows}) == 6  # jitter differs per seed


def test_render_preset_rejects_guidance_and_negative_prompts(tmp_path):
    from diffusion_assets.catalog.load import CatalogError, load_catalog

    path = tmp_path / "bad.yaml"
    path.write_text(
        "defaults: {model: shapes-render, guidance: 3}\nentries: [{id: a, prompt: x, negative_prompt: y}]"
    )
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    assert "field 'guidance'" in str(info.value) and "field 'negative_prompt'" in str(info.value)
