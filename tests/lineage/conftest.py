"""A small real chain: tiny-sd15 images → captions → a built dataset → an adapter → evaluation rows.

The chain is generated once per module (about a second of tiny-model inference); tests that edit,
move or delete files get their own copy through ``world``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from diffusion_assets.datasets.build import build_dataset
from diffusion_assets.generation.partition import RunInfo, generate_partition
from diffusion_assets.manifests import adapters as am
from diffusion_assets.manifests import evaluation as em
from diffusion_assets.manifests.io import partition_path, write_table
from tests.datasets.helpers import write_captions, write_spec

CATALOG = "lineage_demo"
DATE = "2026-11-28"
DATASET = "style"
CATALOG_TEXT = """
seed: 3
variables: {colour: [red, blue]}
defaults: {model: sd15, steps: 2, width: 32, height: 32, images_per_prompt: 2}
entries:
  - id: shape
    prompt: "a {colour} circle"
"""


@dataclass(frozen=True)
class Chain:
    root: Path
    data: Path
    rows: list[dict]
    """Generation manifest rows, catalog order."""
    version: str
    adapter_id: str
    other_adapter_id: str
    report_id: str

    def png(self, index: int = 0) -> Path:
        return self.data / self.rows[index]["path"]


def adapter_row(adapter_id: str, version: str, **overrides) -> dict:
    row = {
        "adapter_id": adapter_id,
        "path": f"adapters/{DATASET}/{adapter_id}.safetensors",
        "sha256": "a" * 64,
        "dataset_version": version,
        "base_model_id": "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "base_weights_hash": "b" * 64,
        "pipeline_class": "StableDiffusionPipeline",
        "trigger_word": "sks",
        "rank": 4,
        "alpha": 4.0,
        "learning_rate": 1e-3,
        "steps": 10,
        "batch_size": 2,
        "resolution": 32,
        "seed": 0,
        "mixed_precision": "no",
        "gradient_checkpointing": False,
        "min_snr_gamma": None,
        "final_loss": 0.125,
        "train_seconds": 1.5,
        "steps_per_second": 6.7,
        "peak_memory_bytes": 1 << 20,
        "dagster_run_id": "train-run",
        "asset_code_version": "test",
        "created_at": datetime(2026, 11, 29, tzinfo=UTC),
    }
    return row | overrides


def evaluation_rows(report_id: str, adapter_id: str, version: str) -> list[dict]:
    """Two images at weight 0 and two at weight 1, with known scores."""
    out = []
    for i, (weight, clip_t, style) in enumerate(
        [(0.0, 20.0, False), (0.0, 22.0, False), (1.0, 25.0, True), (1.0, 27.0, False)]
    ):
        out.append(
            {
                "row_id": f"{report_id[:10]}{i:010d}",
                "report_id": report_id,
                "adapter_id": adapter_id,
                "dataset_version": version,
                "model": "sd15",
                "prompt": f"a circle, in sks style {i}",
                "prompt_kind": "trigger",
                "seed": i,
                "weight": weight,
                "image_path": f"reports/{report_id}/{i}.png",
                "image_sha256": f"{i}" * 64,
                "clip_t": clip_t,
                "clip_i": 0.5,
                "adherence_all": True,
                "colour_ok": True,
                "shape_ok": True,
                "background_ok": True,
                "style_ok": style,
                "created_at": datetime(2026, 11, 30, tzinfo=UTC),
                "dagster_run_id": "eval-run",
            }
        )
    return out


@pytest.fixture(scope="module")
def chain(tmp_path_factory, shared_provider) -> Chain:
    root = tmp_path_factory.mktemp("chain")
    data = root / "data"
    (root / "prompts").mkdir()
    catalog = root / "prompts" / f"{CATALOG}.yaml"
    catalog.write_text(CATALOG_TEXT)
    # 1. images, through the real partition generator
    result = generate_partition(
        catalog, DATE, data, shared_provider, RunInfo("gen-run-1", f"{CATALOG}|{DATE}", "test")
    )
    # 2. captions, then a real dataset build over them
    write_captions(
        data, {r["image_id"]: f"a circle number {i}" for i, r in enumerate(result.rows)}, CATALOG, DATE
    )
    spec = write_spec(
        root,
        DATASET,
        sources=[{"catalog": CATALOG, "dates": "all"}],
        split={"validation_fraction": 0.25, "seed": 0},
    )
    built = build_dataset(spec, data, run_id="ds-run")
    # 3. an adapter on that version, one on a version that does not exist, and their reports
    adapter_id, other = "adapter0000000000001", "adapter0000000000002"
    write_table(
        partition_path(data, am.KIND, {"dataset": DATASET}),
        [adapter_row(adapter_id, built.version), adapter_row(other, "0000000000000000")],
        am.SCHEMA,
    )
    report_id = "report00000000000001"
    rows = evaluation_rows(report_id, adapter_id, built.version) + evaluation_rows(
        "report00000000000002", other, "0000000000000000"
    )
    write_table(partition_path(data, em.KIND, {"dataset": DATASET}), rows, em.SCHEMA)
    return Chain(root, data, result.rows, built.version, adapter_id, other, report_id)


@pytest.fixture
def world(chain, tmp_path) -> Chain:
    """A private copy of the chain, safe to edit, move or delete."""
    root = tmp_path / "world"
    shutil.copytree(chain.root, root)
    return Chain(
        root,
        root / "data",
        chain.rows,
        chain.version,
        chain.adapter_id,
        chain.other_adapter_id,
        chain.report_id,
    )
