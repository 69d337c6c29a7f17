"""From a dataset to a trained adapter to its evaluation report, and the blocking gates between them."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import torch

from diffusion_assets.defs.captioning import CaptionerResource, image_captions
from diffusion_assets.defs.datasets import lora_dataset
from diffusion_assets.defs.evaluation import EvaluationConfig, evaluation_report
from diffusion_assets.defs.generation import generated_images
from diffusion_assets.defs.partitions import (
    CATALOG_PARTITIONS_NAME,
    LORA_DATASET_PARTITIONS_NAME,
    generation_key,
)
from diffusion_assets.defs.resources import GpuResource, ProjectResource
from diffusion_assets.defs.training import LoraTrainingConfig, lora_adapter
from diffusion_assets.manifests import adapters as am
from diffusion_assets.manifests.io import partition_path, read_table, write_table
from diffusion_assets.training import applies as applies_module
from diffusion_assets.training.metadata import read_adapter_metadata as read_header
from tests.conftest import write_catalog

ROOT = Path(__file__).resolve().parents[2]
CATALOG = """
seed: 5
defaults: {model: shapes-render, images_per_prompt: 4}
entries:
  - id: outline
    prompt: "a {c} {s} on a gray background, in sks outline style"
    variables: {c: [cyan, yellow], s: [circle, square]}
"""
SPEC = """
sources: [{catalog: outline, dates: all}]
captions: {source: captioner}
trigger: {word: sks, placement: suffix, phrase: in sks outline style}
split: {validation_fraction: 0.2, seed: 0}
resolution: 32
evaluation: {min_style_gain: null, min_clip_t_gain: null}
training:
  base_model: sd15
  rank: 4
  alpha: 4
  learning_rate: 1.0e-3
  steps: 12
  batch_size: 4
  checkpoint_every: 6
  validation_every: 0
  validation_prompts: ["a cyan circle on a gray background, in sks outline style"]
"""


@pytest.fixture(scope="module")
def tiny_clip(tiny_mirror) -> str:
    from transformers import CLIPProcessor

    from diffusion_assets.shapes.config import ClipConfig
    from diffusion_assets.shapes.tokenizer import build_tokenizer
    from diffusion_assets.shapes.train_clip import build_clip, image_processor

    folder = tiny_mirror / "test" / "tiny-clip"
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    build_clip(
        ClipConfig(hidden_size=32, intermediate_size=64, heads=2, projection_dim=16), tokenizer
    ).save_pretrained(folder)
    CLIPProcessor(image_processor=image_processor(), tokenizer=tokenizer).save_pretrained(folder)
    return "test/tiny-clip"


@pytest.fixture
def chain(project, monkeypatch):
    monkeypatch.setenv("DIFFUSION_ASSETS_ROOT", str(ROOT))  # models/shapes-render ships in the repo
    (project / "lora_datasets").mkdir()
    monkeypatch.setenv("DIFFUSION_ASSETS_DATASETS", str(project / "lora_datasets"))
    write_catalog(project, "outline", CATALOG)
    (project / "lora_datasets" / "outline_ds.yaml").write_text(SPEC)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, ["outline"])
        instance.add_dynamic_partitions(LORA_DATASET_PARTITIONS_NAME, ["outline_ds"])
        key = str(generation_key("outline", "2026-11-28"))
        for asset in (generated_images, image_captions):
            assert _run(instance, [asset], key).success
        assert _run(instance, [lora_dataset], "outline_ds").success
        yield instance


def _run(instance, assets, partition, run_config=None, raise_on_error=True):
    return dg.materialize(
        assets,
        instance=instance,
        partition_key=partition,
        resources={
            "gpu": GpuResource(device="cpu"),
            "project": ProjectResource(),
            "captioner": CaptionerResource(mode="prompt"),
        },
        run_config=run_config,
        raise_on_error=raise_on_error,
    )


def _config(clip: str) -> dg.RunConfig:
    return dg.RunConfig(
        {
            "evaluation_report": EvaluationConfig(seeds=1, steps=3, clip_model=clip),
            "lora_adapter": LoraTrainingConfig(),
        }
    )


def test_adapter_then_report(chain, tiny_clip, project):
    result = _run(chain, [lora_adapter, evaluation_report], "outline_ds", _config(tiny_clip))
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"lora_applies": True, "beats_baseline": True}
    events = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    adapter = events["lora_adapter"]
    header = read_header(adapter["path"].value)
    assert header["diffusion_assets.dataset"] == "outline_ds"
    assert header["ss_network_dim"] == "4" and header["diffusion_assets.trigger_word"] == "sks"
    report = events["evaluation_report"]
    assert Path(report["report"].value).is_file()
    plan_cells = report["rows"].value
    assert plan_cells % 3 == 0  # one row per (prompt, seed, weight) with weights 0, 0.5, 1


def test_a_noop_adapter_blocks_its_evaluation(chain, tiny_clip, monkeypatch):
    monkeypatch.setattr(applies_module, "lora_applies", lambda *a, **k: (False, {"mean_abs_diff": 0.0}))
    result = _run(
        chain, [lora_adapter, evaluation_report], "outline_ds", _config(tiny_clip), raise_on_error=False
    )
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"lora_applies": False}
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"lora_adapter"}  # the report was never built


def test_model_comparison_report(project, tiny_clip, monkeypatch):
    from diffusion_assets.defs.evaluation import ModelComparisonConfig, model_comparison

    monkeypatch.setenv("DIFFUSION_ASSETS_ROOT", str(ROOT))
    write_catalog(
        project,
        "duo",
        "defaults: {model: sd15}\nentries: [{id: a, prompt: 'a red circle on a gray background'}]",
    )
    config = ModelComparisonConfig(
        models=["sd15", "shapes-render"], catalog="duo", seeds=2, steps=2, clip_model=tiny_clip
    )
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [model_comparison],
            instance=instance,
            resources={"gpu": GpuResource(device="cpu"), "project": ProjectResource()},
            run_config=dg.RunConfig({"model_comparison": config}),
        )
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    import pyarrow.parquet as pq

    rows = pq.read_table(meta["metrics"].value).to_pylist()
    assert sorted((r["model"], r["seed"]) for r in rows) == sorted(
        (m, s) for m in ("sd15", "shapes-render") for s in {r["seed"] for r in rows}
    )
    assert len(rows) == 4 and Path(meta["report"].value).is_file()


def test_an_adapter_of_another_base_is_not_evaluated_on_the_current_one(chain, tiny_clip, project):
    lora_only = dg.RunConfig({"lora_adapter": LoraTrainingConfig()})
    assert _run(chain, [lora_adapter], "outline_ds", lora_only).success
    path = partition_path(project / "data", am.KIND, {"dataset": "outline_ds"})
    rows = read_table(path).to_pylist()
    for row in rows:  # as if the spec's training.base_model changed after this adapter was trained
        row["base_weights_hash"] = "f" * 64
    write_table(path, rows, am.SCHEMA)
    report_only = dg.RunConfig(
        {"evaluation_report": EvaluationConfig(seeds=1, steps=3, clip_model=tiny_clip)}
    )
    result = _run(chain, [evaluation_report], "outline_ds", report_only, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.error.cause.message if failure.step_failure_data.error.cause else ""
    message += failure.step_failure_data.error.message
    assert "was trained on" in message and "weights ffffffffffff" in message
    assert "materialize lora_adapter for the current spec first" in message
