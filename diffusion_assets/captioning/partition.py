"""Caption one generation partition: read its manifest, caption new images, write the caption manifest.

Idempotent: an image already captioned by the same captioner (id, weights hash and settings) keeps
its caption; the manifest is rewritten atomically after every batch, so an interrupt loses one batch.
Captions the partition no longer holds (their image was retired by a catalog edit, or another
captioner made them) move to the ``captions_retired`` manifest, never deleted: lineage keeps them,
and they move back, without captioning again, when the image or the captioner returns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from diffusion_assets.captioning.captioner import Captioner
from diffusion_assets.files import exclusive
from diffusion_assets.generation.partition import RunInfo
from diffusion_assets.manifests import captions as cm
from diffusion_assets.manifests import generation as gm
from diffusion_assets.manifests.io import lock_path, partition_path, read_table, retire_rows, write_table

RETIRED_KIND = cm.KIND + "_retired"


class GenerationMissingError(RuntimeError):
    """The generation partition to caption has no manifest yet."""


@dataclass
class CaptionResult:
    manifest_path: Path
    manifest_sha256: str
    rows: list[dict]
    captioned: int
    kept: int


_NOT_SETTINGS = {"captioner_path"}
"""Where the weights lie is not part of a caption's identity (their hash is): a moved or cloned
project keeps its captions."""


def _settings(captioner: Captioner) -> str:
    described = captioner.describe()
    return json.dumps(
        {k: v for k, v in described.items() if k not in cm.SCHEMA.names and k not in _NOT_SETTINGS},
        sort_keys=True,
        default=str,
    )


def caption_partition(
    catalog: str, date: str, data_root: Path, captioner: Captioner, run: RunInfo, batch_size: int = 16
) -> CaptionResult:
    """Caption every image of generation partition ``catalog|date`` that lacks this captioner's caption.

    Holds the partition's captions lock for the whole run (``files.exclusive``): a second run of the
    same partition (say, with another captioner) fails at once naming the holder, instead of each
    retiring the other's rows.

    Raises:
        GenerationMissingError: the partition has no generation manifest.
        BusyError: another process is captioning this partition.
    """
    keys = {"catalog": catalog, "date": date}
    with exclusive(
        lock_path(data_root, cm.KIND, keys), f"captions of partition {catalog}|{date}", run.run_id
    ):
        return _caption_partition(keys, data_root, captioner, run, batch_size)


def _caption_partition(
    keys: dict[str, str], data_root: Path, captioner: Captioner, run: RunInfo, batch_size: int
) -> CaptionResult:
    catalog, date = keys["catalog"], keys["date"]
    generation = read_table(partition_path(data_root, gm.KIND, keys))
    if generation is None:
        raise GenerationMissingError(
            f"no generation manifest for {catalog}|{date}: materialize generated_images for that partition first"
        )
    images = generation.to_pylist()
    manifest = partition_path(data_root, cm.KIND, keys)
    described, settings = captioner.describe(), _settings(captioner)
    identity = (described["captioner_id"], described["captioner_weights_hash"], settings)
    wanted = [r["image_id"] for r in images]
    wanted_ids = set(wanted)
    kept, _ = retire_rows(
        manifest,
        partition_path(data_root, RETIRED_KIND, keys),
        cm.SCHEMA,
        wanted=lambda row: row["image_id"] in wanted_ids and _identity(row) == identity,
        key=lambda row: (row["image_id"], *_identity(row)),
    )
    rows = {r["image_id"]: r for r in kept}
    todo = [r for r in images if r["image_id"] not in rows]
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        pixels = (
            None
            if captioner.mode == "prompt"
            else [Image.open(data_root / r["path"]).convert("RGB") for r in batch]
        )
        texts = captioner.caption(pixels or [None] * len(batch), [r["prompt"] for r in batch], fields=batch)
        for source, text in zip(batch, texts, strict=True):
            rows[source["image_id"]] = {
                "image_id": source["image_id"],
                "caption": text,
                "captioner_mode": described["captioner_mode"],
                "captioner_id": described["captioner_id"],
                "captioner_weights_hash": described["captioner_weights_hash"],
                "template": described.get("captioner_template"),
                "captioner_settings": settings,
                "device": None if captioner.device is None else str(captioner.device),
                "dagster_run_id": run.run_id,
                "partition_key": run.partition_key,
                "asset_code_version": run.code_version,
                "created_at": datetime.now(UTC),
            }
        write_table(manifest, [rows[i] for i in wanted if i in rows], cm.SCHEMA)
    ordered = [rows[i] for i in wanted]
    digest = write_table(manifest, ordered, cm.SCHEMA)
    return CaptionResult(manifest, digest, ordered, len(todo), len(wanted) - len(todo))


def _identity(row: dict) -> tuple:
    return row["captioner_id"], row["captioner_weights_hash"], row["captioner_settings"]
