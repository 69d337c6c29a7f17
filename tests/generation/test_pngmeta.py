"""PNG metadata: A1111 ``parameters`` read back by sd-parsers, and the embedded manifest row."""

from __future__ import annotations

import pytest
from sd_parsers import ParserManager

from diffusion_assets.generation.pngmeta import RUN_FIELDS, read_row
from tests.conftest import write_catalog
from tests.generation.helpers import run_partition

CATALOG = """
seed: 11
defaults: {model: sd15, steps: 3, width: 32, height: 32, guidance: 6.5, scheduler: dpmpp_2m_karras}
entries:
  - id: cat
    prompt: "a photo of a cat"
    negative_prompt: "blurry, low quality"
"""


@pytest.fixture
def generated(project, shared_provider):
    return run_partition(project, write_catalog(project, "meta", CATALOG), shared_provider)


def test_sd_parsers_reads_the_a1111_parameters(project, generated):
    row = generated.rows[0]
    info = ParserManager().parse(project / "data" / row["path"])
    sampler = info.samplers[0]
    assert info.generator.name == "AUTOMATIC1111"
    assert [p.value for p in sampler.prompts] == ["a photo of a cat"]
    assert [p.value for p in sampler.negative_prompts] == ["blurry, low quality"]
    assert sampler.name == "DPM++ 2M Karras"
    assert sampler.parameters["seed"] == str(row["seed"])
    assert sampler.parameters["steps"] == "3"
    assert float(sampler.parameters["cfg_scale"]) == 6.5
    assert sampler.model.hash == row["model_weights_hash"][:10]
    assert info.metadata["Size"] == "32x32"


def test_embedded_row_is_the_manifest_row_without_run_fields(project, generated):
    row = generated.rows[0]
    embedded = read_row(project / "data" / row["path"])
    expected = {k: v for k, v in row.items() if k not in RUN_FIELDS and k != "sha256"}
    assert set(embedded) == set(expected)
    assert embedded["seed"] == row["seed"]
    assert embedded["image_id"] == row["image_id"]
    assert embedded["scheduler_class"] == "DPMSolverMultistepScheduler"
    assert '"use_karras_sigmas": true' in embedded["scheduler_config"]
