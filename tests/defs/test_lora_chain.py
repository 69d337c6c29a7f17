"""The chain on the shapes world: rendered images → captions → a versioned LoRA dataset."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import datasets
import pyarrow.parquet as pq
import pytest

from diffusion_assets.datasets.members import split_score
from diffusion_assets.defs.captioning import CaptionerResource, image_captions
from diffusion_assets.defs.datasets import lora_dataset
from diffusion_assets.defs.generation import generated_images
from diffusion_assets.defs.partitions import (
    CATALOG_PARTITIONS_NAME,
    LORA_DATASET_PARTITIONS_NAME,
    generation_key,
)
from diffusion_assets.defs.resources import GpuResource, ProjectResource
from tests.conftest import write_catalog

ROOT = Path(__file__).resolve().parents[2]
DATE = "2026-11-28"
CATALOG = """
seed: 3
defaults: {model: shapes-render, images_per_prompt: 5}
entries:
  - id: outline
    prompt: "a {c} circle on a gray background, in sks outline style"
    variables: {c: [cyan, yellow]}
"""
SPEC = """
sources: [{catalog: outline, dates: all}]
captions: {source: captioner}
trigger: {word: sks, placement: suffix, phrase: in sks outline style}
split: {validation_fraction: 0.2, seed: 0}
resolution: 32
"""


@pytest.fixture
def chain_project(project, monkeypatch):
    monkeypatch.setenv("DIFFUSION_ASSETS_ROOT", str(ROOT))  # models/shapes-render ships in the repo
    (project / "lora_datasets").mkdir()
    monkeypatch.setenv("DIFFUSION_ASSETS_DATASETS", str(project / "lora_datasets"))
    write_catalog(project, "outline", CATALOG)
    (project / "lora_datasets" / "outline_ds.yaml").write_text(SPEC)
    return project


def _materialize(instance, assets, partition, captioner="prompt"):
    result = dg.materialize(
        assets,
        instance=instance,
        partition_key=partition,
        resources={
            "gpu": GpuResource(device="cpu"),
            "project": ProjectResource(),
            "captioner": CaptionerResource(mode=captioner),
        },
    )
    assert result.success
    return result


def test_generation_to_captions_to_dataset(chain_project):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, ["outline"])
        instance.add_dynamic_partitions(LORA_DATASET_PARTITIONS_NAME, ["outline_ds"])
        key = str(generation_key("outline", DATE))
        _materialize(instance, [generated_images], key)
        captions = _materialize(instance, [image_captions], key)
        checks = {c.check_name: c.passed for c in captions.get_asset_check_evaluations()}
        assert checks == {"captions_not_empty": True, "no_repeated_tokens": True, "fits_text_encoder": True}
        built = _materialize(instance, [lora_dataset], "outline_ds")
        assert {c.check_name: c.passed for c in built.get_asset_check_evaluations()} == {
            "captions_have_trigger": True
        }
        meta = built.get_asset_materialization_events()[0].materialization.metadata
        again = _materialize(instance, [lora_dataset], "outline_ds")
        meta_again = again.get_asset_materialization_events()[0].materialization.metadata
    members = pq.read_table(meta["manifest"].value).to_pylist()
    # each image's split follows from its id alone (spec: validation_fraction 0.2, seed 0)
    assert {m["image_id"]: m["split"] for m in members} == {
        m["image_id"]: "validation" if split_score(0, m["image_id"]) < 0.2 else "train" for m in members
    }
    assert meta["images"].value == 10 == meta["train"].value + meta["validation"].value
    assert meta["validation"].value == sum(m["split"] == "validation" for m in members)
    assert meta["created"].value is True and meta_again["created"].value is False
    assert meta["version"].value == meta_again["version"].value
    loaded = datasets.load_dataset("imagefolder", data_dir=meta["folder"].value)
    assert loaded["train"].num_rows == meta["train"].value
    assert all(text.endswith(", in sks outline style") for text in loaded["train"]["text"])
