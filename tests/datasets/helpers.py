"""Fake generation partitions (PNGs + manifest rows) and caption rows, without any model."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from diffusion_assets.files import sha256_file
from diffusion_assets.manifests import captions as cm
from diffusion_assets.manifests import generation as gm
from diffusion_assets.manifests.io import partition_path, write_table

DATE = "2026-11-28"
CATALOG = "outline"


def pattern(seed: int, size: int = 64) -> Image.Image:
    """A distinct blocky image per seed (8×8 random cells): phashes of two seeds differ by ~32 bits."""
    cells = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return Image.fromarray(cells).resize((size, size), Image.Resampling.NEAREST)


def noisy(image: Image.Image, seed: int, amplitude: int = 3) -> Image.Image:
    """The same picture with a little pixel noise: a near-duplicate, different bytes."""
    noise = np.random.default_rng(seed).integers(-amplitude, amplitude + 1, (*image.size[::-1], 3))
    return Image.fromarray(np.clip(np.asarray(image, dtype=int) + noise, 0, 255).astype(np.uint8))


def generation_row(
    image_id: str, path: str, sha: str, prompt: str, entry_id: str, catalog: str, date: str
) -> dict:
    """A plausible generation manifest row (the renderer's values) for one PNG."""
    return {
        "image_id": image_id,
        "path": path,
        "sha256": sha,
        "pixel_sha256": sha,
        "width": 64,
        "height": 64,
        "prompt": prompt,
        "negative_prompt": "",
        "template_vars": "{}",
        "catalog_file": f"prompts/{catalog}.yaml",
        "catalog_sha256": "0" * 64,
        "entry_id": entry_id,
        "base_entry_id": entry_id.split("[")[0],
        "sample_index": 0,
        "seed": 1,
        "seed_derivation": 1,
        "generator_device": "cpu",
        "batch_size": 1,
        "batch_index": 0,
        "batch_id": image_id,
        "preset": "shapes-render",
        "model_id": "models/shapes-render",
        "model_weights_hash": "0" * 64,
        "pipeline_class": "ShapesRenderPipeline",
        "scheduler": "default",
        "sampler": "DDIM",
        "scheduler_class": "DDIMScheduler",
        "scheduler_config": "{}",
        "steps": 1,
        "guidance_scale": 0.0,
        "guidance_kind": "cfg",
        "dagster_run_id": "gen-run",
        "partition_key": f"{catalog}|{date}",
        "asset_code_version": "test",
        "package_versions": "{}",
        "device": "cpu",
        "device_name": "cpu",
        "dtype": "float32",
        "duration_s": 0.01,
        "created_at": datetime.now(UTC),
    }


def write_partition(
    data_root: Path, images: list[tuple[str, str, Image.Image]], catalog: str = CATALOG, date: str = DATE
) -> list[dict]:
    """Write ``(image_id, prompt, image)`` PNGs and their generation manifest; entry id ``e-<image_id>``."""
    rows = []
    for image_id, prompt, image in images:
        rel = f"images/{catalog}/{date}/{image_id}.png"
        (data_root / rel).parent.mkdir(parents=True, exist_ok=True)
        image.save(data_root / rel)
        rows.append(
            generation_row(
                image_id, rel, sha256_file(data_root / rel), prompt, f"e-{image_id}", catalog, date
            )
        )
    write_table(partition_path(data_root, gm.KIND, {"catalog": catalog, "date": date}), rows, gm.SCHEMA)
    return rows


def write_captions(
    data_root: Path, captions: dict[str, str], catalog: str = CATALOG, date: str = DATE
) -> Path:
    """Caption manifest rows for ``{image_id: caption}`` as a tiny captioner would write them."""
    rows = [
        {
            "image_id": image_id,
            "caption": text,
            "captioner_mode": "tiny",
            "captioner_id": "shapes-blip-tiny",
            "captioner_weights_hash": "f" * 64,
            "template": None,
            "captioner_settings": "{}",
            "dagster_run_id": "cap-run",
            "partition_key": f"{catalog}|{date}",
            "asset_code_version": "test",
            "created_at": datetime.now(UTC),
        }
        for image_id, text in captions.items()
    ]
    path = partition_path(data_root, cm.KIND, {"catalog": catalog, "date": date})
    write_table(path, rows, cm.SCHEMA)
    return path


def spec_dict(**overrides) -> dict:
    """A valid spec over ``CATALOG``; keyword arguments replace top-level sections."""
    spec = {
        "description": "test dataset",
        "sources": [{"catalog": CATALOG, "dates": "all"}],
        "filters": {"dedup_max_distance": None},
        "captions": {"source": "captioner"},
        "trigger": {"word": "sks", "placement": "suffix"},
        "split": {"validation_fraction": 0.3, "seed": 0},
        "resolution": 32,
    }
    spec.update(overrides)
    return spec


def write_spec(folder: Path, name: str = "style", **overrides) -> Path:
    path = folder / "lora_datasets" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec_dict(**overrides), sort_keys=False))
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
