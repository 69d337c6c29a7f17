"""Generate one (catalog, date) partition: validate, plan, skip what exists, generate, index.

Resumable and idempotent: the manifest is rewritten atomically after every batch, and an image
whose manifest row exists with a matching file sha256 is never generated again. Rows of images
that a catalog edit removed move to the ``generation_retired`` manifest, so lineage is never lost,
and move back (without regenerating) when an edit asks for them again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from diffusion_assets.catalog.expand import ImageJob, expand_catalog
from diffusion_assets.catalog.load import LoadedCatalog, load_catalog
from diffusion_assets.catalog.prompt_tokens import pipeline_token_counts
from diffusion_assets.files import exclusive, sha256_bytes, sha256_file
from diffusion_assets.generation.leftovers import recover_leftovers
from diffusion_assets.generation.pngmeta import embedded_json, pixel_sha256, png_bytes, read_row, write_png
from diffusion_assets.generation.run import BatchResult, generate_batch, plan_batches_following
from diffusion_assets.generation.schedulers import sampler_name, scheduler_config_json
from diffusion_assets.generation.writer import BatchWriter
from diffusion_assets.manifests import generation as gm
from diffusion_assets.manifests.io import lock_path, partition_path, retire_rows, write_table
from diffusion_assets.models.hashing import folder_hash
from diffusion_assets.models.provider import ModelProvider
from diffusion_assets.paths import project_relative
from diffusion_assets.seeds import SEED_DERIVATION_VERSION

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunInfo:
    run_id: str | None
    partition_key: str
    code_version: str


@dataclass
class PartitionResult:
    catalog: LoadedCatalog
    manifest_path: Path
    manifest_sha256: str
    rows: list[dict]
    generated: int = 0
    skipped: int = 0
    retired: int = 0
    jobs: dict[str, ImageJob] = field(default_factory=dict)


def image_path(data_root: Path, catalog: str, date: str, image_id: str) -> Path:
    return Path(data_root) / "images" / catalog / date / f"{image_id}.png"


def _weights(provider: ModelProvider, job: ImageJob) -> dict[str, str | None]:
    refs = provider.refs(job.params.preset)
    hashes = {role: ref.weights_hash for role, ref in refs.items()}
    if job.params.lora_path is not None:
        hashes["lora"] = folder_hash(job.params.lora_path)
    if job.params.control_image is not None:
        hashes["control_image"] = folder_hash(job.params.control_image)
    return hashes


def plan(loaded: LoadedCatalog, date: str, provider: ModelProvider) -> dict[str, ImageJob]:
    """``image_id → job`` for the partition, in catalog order (locates and hashes weights)."""
    jobs = {}
    for job in expand_catalog(loaded, date):
        jobs[job.image_id(_weights(provider, job))] = job
    return jobs


def _valid_existing(rows: list[dict], data_root: Path) -> dict[str, dict]:
    ok = {}
    for row in rows:
        path = Path(data_root) / row["path"]
        if path.is_file() and sha256_file(path) == row["sha256"]:
            ok[row["image_id"]] = row
    return ok


def manifest_row(
    image_id: str,
    job: ImageJob,
    batch: BatchResult,
    index: int,
    provider: ModelProvider,
    run: RunInfo,
    loaded,
) -> dict:
    """Every parameter that shaped the image (file hashes are filled in after writing)."""
    p, preset = job.params, job.params.preset
    model = provider.load(preset)
    refs = model.refs
    ref = refs["base"]
    hashes = _weights(provider, job)
    scheduler = model.pipe.scheduler
    tokens = pipeline_token_counts(model.pipe, preset, job.prompt, job.negative_prompt)
    return {
        "image_id": image_id,
        "path": str(Path("images") / job.catalog_name / job.date / f"{image_id}.png"),
        "width": p.width,
        "height": p.height,
        "prompt": job.prompt,
        "negative_prompt": job.negative_prompt,
        **tokens,
        "template_vars": json.dumps(job.template_vars, sort_keys=True),
        "catalog_file": project_relative(loaded.path),
        "catalog_sha256": loaded.sha256,
        "entry_id": job.entry_id,
        "base_entry_id": job.base_entry_id,
        "sample_index": job.sample_index,
        "seed": job.seed,
        "seed_derivation": SEED_DERIVATION_VERSION,
        "generator_device": "cpu",
        "batch_size": batch.batch_size,
        "batch_index": index,
        "batch_id": "",
        "preset": preset.name,
        "model_id": ref.model_id,
        "model_revision": ref.revision,
        "model_weights_hash": ref.weights_hash,
        "pipeline_class": type(model.pipe).__name__,
        "scheduler": p.scheduler,
        "sampler": sampler_name(scheduler),
        "scheduler_class": type(scheduler).__name__,
        "scheduler_config": scheduler_config_json(scheduler),
        "steps": p.steps,
        "guidance_scale": p.guidance,
        "guidance_kind": preset.guidance_kind,
        "true_cfg_scale": p.true_cfg_scale,
        "refiner_model_id": refs["refiner"].model_id if "refiner" in refs else None,
        "refiner_weights_hash": hashes.get("refiner"),
        "refiner_switch": p.refiner_switch,
        "controlnet_model_id": refs["controlnet"].model_id if "controlnet" in refs else None,
        "controlnet_weights_hash": hashes.get("controlnet"),
        "control_preprocess": preset.control_preprocess,
        "control_image_path": project_relative(p.control_image) if p.control_image else None,
        "control_image_sha256": hashes.get("control_image"),
        "controlnet_scale": p.controlnet_scale,
        "lora_path": project_relative(p.lora_path) if p.lora_path else None,
        "lora_weights_hash": hashes.get("lora"),
        "lora_scale": p.lora_scale,
        "depth_estimator_id": refs["depth_estimator"].model_id if "depth_estimator" in refs else None,
        "depth_estimator_weights_hash": hashes.get("depth_estimator"),
        "dagster_run_id": run.run_id,
        "partition_key": run.partition_key,
        "asset_code_version": run.code_version,
        "dtype": str(model.dtype).removeprefix("torch."),
        "duration_s": batch.seconds / batch.batch_size,
        "peak_memory_bytes": provider.peak_memory_bytes(),
        "created_at": datetime.now(UTC),
        **provider.describe(),
    }


def _write_image(data_root: Path, row: dict, image) -> dict:
    """Hash the pixels, embed the row, write the PNG atomically; the row gets both hashes."""
    row["pixel_sha256"] = pixel_sha256(image)
    row["sha256"] = write_png(Path(data_root) / row["path"], image, row)
    return row


def generate_partition(
    catalog_path: Path,
    date: str,
    data_root: Path,
    provider: ModelProvider,
    run: RunInfo,
    *,
    on_batch: Callable[[int, int], None] | None = None,
) -> PartitionResult:
    """Materialize one partition. Raises ``CatalogError`` before loading or writing anything.

    ``on_batch(done, total)`` is called after each generated batch has been indexed.
    """
    # 1. validate and plan (no model is loaded, nothing is written)
    loaded = load_catalog(catalog_path)
    jobs = plan(loaded, date, provider)
    keys = {"catalog": loaded.name, "date": date}
    manifest = partition_path(data_root, gm.KIND, keys)
    with exclusive(lock_path(data_root, gm.KIND, keys), f"partition {loaded.name}|{date}"):
        recover_leftovers(data_root, loaded.name, date, jobs)  # what a killed run left (leftovers.py)
        # 2. keep finished images (restoring those an earlier edit retired); retire the rest
        kept, retired = retire_rows(
            manifest,
            partition_path(data_root, gm.KIND + "_retired", keys),
            gm.SCHEMA,
            wanted=lambda row: row["image_id"] in jobs,
            key=lambda row: row["image_id"],
        )
        existing = _valid_existing(kept, data_root)
        rows = {image_id: existing[image_id] for image_id in jobs if image_id in existing}
        ids = {id(job): image_id for image_id, job in jobs.items()}
        # 3. a resumed or repaired image is made in exactly the batch it was first made in (the recorded
        #    batch-mates, order and id, whatever batch_size this run has): byte-identical pixels
        batches = plan_batches_following(jobs, kept, provider.batch_size)
        todo = [(bid, b) for bid, b in batches if any(ids[id(j)] not in rows for j in b)]
        settled = 0

        def index(written: list[dict]) -> None:
            # a batch is indexed once all its PNGs are written: an interrupt loses at most the batches
            # in flight, and their complete PNGs are adopted by the next run (leftovers.py)
            nonlocal settled
            rows.update((row["image_id"], row) for row in written)
            write_table(manifest, [rows[i] for i in jobs if i in rows], gm.SCHEMA)
            settled += 1
            if on_batch:
                on_batch(settled, len(todo))

        generated = 0
        # 4. PNGs are encoded and written on a small thread pool while the next batch generates
        with BatchWriter(lambda item: _write_image(data_root, *item), index) as writer:
            for batch_id, batch in todo:
                result = generate_batch(provider.load(batch[0].params.preset), batch)
                items = []
                for index_in_batch, (job, image) in enumerate(zip(batch, result.images, strict=True)):
                    image_id = ids[id(job)]
                    if image_id in rows:
                        continue
                    row = manifest_row(image_id, job, result, index_in_batch, provider, run, loaded)
                    row["batch_id"] = batch_id
                    items.append((row, image))
                generated += len(items)
                writer.submit(items)
        # 5. the final manifest, in catalog order
        ordered = [rows[i] for i in jobs]
        digest = write_table(manifest, ordered, gm.SCHEMA)
    return PartitionResult(loaded, manifest, digest, ordered, generated, len(jobs) - generated, retired, jobs)


def complete_batches(rows: list[dict]) -> list[str]:
    """Batch ids, in catalog order, whose every member is still in ``rows``.

    A catalog edit can retire some of a batch's images; regenerating the rest would be a smaller
    batch, whose pixels may differ by the cross-batch-size drift, so only whole batches are checked.
    """
    sizes: dict[str, int] = {}
    counts: dict[str, int] = {}
    for row in rows:
        sizes[row["batch_id"]] = row["batch_size"]
        counts[row["batch_id"]] = counts.get(row["batch_id"], 0) + 1
    return [batch_id for batch_id, size in sizes.items() if counts[batch_id] == size]


# fields that say which catalog version and code version first made an image, not what made it:
# images a catalog edit kept keep them, so a regeneration for verification takes them from the row
PROVENANCE_FIELDS = ("catalog_sha256", "asset_code_version")


@dataclass(frozen=True)
class Verified:
    """One image regenerated by ``verify_batch``: are its pixels and its file bytes the same, and
    which embedded fields differ when the bytes do not (e.g. ``package_versions`` after an upgrade)."""

    image_id: str
    same_pixels: bool
    same_bytes: bool
    fields: tuple[str, ...] = ()


def verify_batch(
    provider: ModelProvider, result: PartitionResult, batch_id: str, run: RunInfo, data_root: Path
) -> list[Verified]:
    """Regenerate one recorded batch exactly as it was laid out, and encode each image with the row
    this run would record for it (in batch order), ``PROVENANCE_FIELDS`` taken from the recorded row.

    Equal bytes mean the PNG, its A1111 text and its embedded manifest row are the same as the file
    on disk: what ``sha256sum`` of a re-materialization in another clone compares.
    """
    members = sorted((r for r in result.rows if r["batch_id"] == batch_id), key=lambda r: r["batch_index"])
    jobs = [result.jobs[r["image_id"]] for r in members]
    model = provider.load(jobs[0].params.preset)
    again = generate_batch(model, jobs)
    checked = []
    for r, job, image in zip(members, jobs, again.images, strict=True):
        row = manifest_row(r["image_id"], job, again, r["batch_index"], provider, run, result.catalog)
        row.update({key: r[key] for key in PROVENANCE_FIELDS}, batch_id=batch_id)
        row["pixel_sha256"] = pixel_sha256(image)
        same_bytes = sha256_bytes(png_bytes(image, row)) == r["sha256"]
        fields: tuple[str, ...] = ()
        if not same_bytes:  # name what differs in the embedded row (none listed: the pixels' encoding)
            recorded, now = read_row(Path(data_root) / r["path"]) or {}, json.loads(embedded_json(row))
            fields = tuple(sorted(k for k in recorded.keys() | now.keys() if recorded.get(k) != now.get(k)))
        checked.append(Verified(r["image_id"], row["pixel_sha256"] == r["pixel_sha256"], same_bytes, fields))
    return checked
