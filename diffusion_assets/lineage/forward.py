"""Forward lineage: from one image (a PNG file, an image id or a sha256) to everything it fed.

The document ``forward_lineage`` returns (``diffusion-assets lineage TARGET --json`` prints it):

    {"direction": "forward",
     "query": {"target": str, "as": "png" | "image_id" | "sha256",
               "matched_by": "image_id" | "sha256" | "pixel_sha256" | null},
     "source": "manifests" | "png",          # png: no manifest row, facts from the PNG's embedded row
     "store": "index" | "scan",
     "notes": [str],
     "image": {image_id, path (as recorded), current_path, moved: bool, retired: bool, width, height,
               sha256, pixel_sha256},
     "integrity": {status: "ok" | "modified" | "missing", checked, file_sha256, recorded_sha256,
                   file_pixel_sha256, recorded_pixel_sha256, change: "pixels" | "metadata" | null, message},
     "catalog": {name, date, file, sha256, current: "unchanged" | "changed" | "missing", partition_key},
     "entry": {entry_id, base_entry_id, sample_index, template_vars: {}, prompt, negative_prompt},
     "seed": {seed, derivation, generator_device, batch_id, batch_index, batch_size},
     "model": {preset, model_id, revision, weights_hash, pipeline_class, dtype,
               refiner: {model_id, weights_hash, switch} | null,
               controlnet: {model_id, weights_hash, scale, preprocess, image_path, image_sha256} | null,
               lora: {path, weights_hash, scale} | null},
     "scheduler": {name, sampler, class, settings: {key config values}, steps, guidance_scale,
                   guidance_kind, true_cfg_scale},
     "run": {dagster_run_id, partition_key, asset_code_version, created_at, device, device_name},
     "captions": [{caption, captioner_mode, captioner_id, captioner_weights_hash, template,
                   dagster_run_id, created_at}],
     "datasets": [{dataset, dataset_version, split, caption, file_name, source_sha256, spec_file}],
     "adapters": [{adapter_id, dataset, dataset_version, path, sha256, base_model_id, base_weights_hash,
                   pipeline_class, trigger_word, rank, alpha, learning_rate, steps, batch_size,
                   resolution, seed, final_loss, dagster_run_id, created_at}],
     "evaluations": [{report_id, adapter_id, dataset, dataset_version, model, n, created_at,
                      weights: [{weight, n, clip_t, clip_i, adherence, style_rate}]}]}

Keys are always present; a section with nothing to show is ``[]`` or ``null``. Fields the PNG's
embedded row leaves out (run id, timestamps) are null with ``source: "png"``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from diffusion_assets import paths
from diffusion_assets.files import sha256_file
from diffusion_assets.lineage import LineageError
from diffusion_assets.lineage import query as q
from diffusion_assets.lineage.png import PngFile, integrity, read_png
from diffusion_assets.lineage.store import Store, manifests_dir

SHA256 = re.compile(r"[0-9a-fA-F]{64}")
SCHEDULER_SETTINGS = (
    "num_train_timesteps",
    "beta_schedule",
    "beta_start",
    "beta_end",
    "prediction_type",
    "timestep_spacing",
    "steps_offset",
    "algorithm_type",
    "solver_order",
    "use_karras_sigmas",
    "use_exponential_sigmas",
    "use_beta_sigmas",
    "final_sigmas_type",
    "rescale_betas_zero_snr",
    "shift",
    "use_dynamic_shifting",
)
"""The scheduler config values that change the noise schedule or the solver (the rest are defaults)."""


def classify(target: str) -> str:
    """``png`` (an existing file), ``sha256`` (64 hex) or ``image_id``; a missing file is an error."""
    if Path(target).is_file():
        return "png"
    if SHA256.fullmatch(target):
        return "sha256"
    if "/" in target or target.lower().endswith(".png"):
        raise LineageError(f"no such file: {target}")
    return "image_id"


def _catalog_state(file: str, recorded: str) -> str:
    path = Path(file)
    path = path if path.is_absolute() else paths.project_root() / path
    if not path.is_file():
        return "missing"
    return "unchanged" if sha256_file(path) == recorded else "changed"


def _json(text: str | None) -> dict:
    return json.loads(text) if text else {}


def describe(row: dict, catalog: str, day: str) -> dict:
    """The generation sections (catalog … run) of a manifest or embedded row."""
    g = row.get
    config = _json(g("scheduler_config"))
    refiner = {
        "model_id": g("refiner_model_id"),
        "weights_hash": g("refiner_weights_hash"),
        "switch": g("refiner_switch"),
    }
    controlnet = {
        "model_id": g("controlnet_model_id"),
        "weights_hash": g("controlnet_weights_hash"),
        "scale": g("controlnet_scale"),
        "preprocess": g("control_preprocess"),
        "image_path": g("control_image_path"),
        "image_sha256": g("control_image_sha256"),
    }
    lora = {"path": g("lora_path"), "weights_hash": g("lora_weights_hash"), "scale": g("lora_scale")}
    return {
        "catalog": {
            "name": catalog,
            "date": day,
            "file": g("catalog_file"),
            "sha256": g("catalog_sha256"),
            "current": _catalog_state(g("catalog_file"), g("catalog_sha256")),
            "partition_key": g("partition_key"),
        },
        "entry": {
            "entry_id": g("entry_id"),
            "base_entry_id": g("base_entry_id"),
            "sample_index": g("sample_index"),
            "template_vars": _json(g("template_vars")),
            "prompt": g("prompt"),
            "negative_prompt": g("negative_prompt"),
        },
        "seed": {
            "seed": g("seed"),
            "derivation": g("seed_derivation"),
            "generator_device": g("generator_device"),
            "batch_id": g("batch_id"),
            "batch_index": g("batch_index"),
            "batch_size": g("batch_size"),
        },
        "model": {
            "preset": g("preset"),
            "model_id": g("model_id"),
            "revision": g("model_revision"),
            "weights_hash": g("model_weights_hash"),
            "pipeline_class": g("pipeline_class"),
            "dtype": g("dtype"),
            "refiner": refiner if refiner["model_id"] else None,
            "controlnet": controlnet if controlnet["model_id"] else None,
            "lora": lora if lora["path"] else None,
        },
        "scheduler": {
            "name": g("scheduler"),
            "sampler": g("sampler"),
            "class": g("scheduler_class"),
            "settings": {k: config[k] for k in SCHEDULER_SETTINGS if config.get(k) is not None},
            "steps": g("steps"),
            "guidance_scale": g("guidance_scale"),
            "guidance_kind": g("guidance_kind"),
            "true_cfg_scale": g("true_cfg_scale"),
        },
        "run": {
            "dagster_run_id": g("dagster_run_id"),
            "partition_key": g("partition_key"),
            "asset_code_version": g("asset_code_version"),
            "created_at": g("created_at"),
            "device": g("device"),
            "device_name": g("device_name"),
        },
    }


def _find(store: Store, how: str, target: str, png: PngFile | None) -> list[dict]:
    """Manifest rows for the target; a PNG is looked up by its embedded id first, so an edited file
    (whose hash matches nothing) still finds the row it must be compared with."""
    if how == "image_id":
        return q.find_images(store, image_id=target)
    if how == "sha256":
        return q.find_images(store, sha256=target.lower())
    hits = q.find_images(store, image_id=png.embedded["image_id"]) if png.embedded else []
    return hits or q.find_images(store, sha256=png.sha256) or q.find_images(store, sha256=png.pixel_sha256)


def _png_only_note(store: Store, image_id: str) -> str:
    if not store.has_manifests:
        return f"source: PNG metadata only (manifests not found: no {manifests_dir(store.data_root)})"
    return f"source: PNG metadata only (image {image_id} is not in the generation manifests)"


def forward_lineage(store: Store, target: str) -> dict:
    """The forward lineage document of an image; raises ``LineageError`` when nothing matches."""
    # 1. what was asked: a PNG file (hash it, read its embedded row), an image id or a sha256
    how = classify(target)
    png = read_png(target) if how == "png" else None
    notes = list(store.notes)
    # 2. the manifest row, else (for a PNG) the row embedded in it
    hits = _find(store, how, target, png)
    if len(hits) > 1:
        others = ", ".join(h["image_id"] for h in hits[1:])
        notes.append(f"{len(hits)} manifest rows match; showing {hits[0]['image_id']} (also: {others})")
    hit = hits[0] if hits else None
    row = q.generation_row(store, hit) if hit else None
    if row is not None:
        source, catalog, day = "manifests", hit["catalog"], hit["date"]
    elif png is not None and png.embedded is not None:
        source, row = "png", png.embedded
        parts = Path(row["path"]).parts  # images/<catalog>/<date>/<id>.png
        catalog, day = parts[-3:-1] if len(parts) >= 3 else (None, None)
        notes.append(_png_only_note(store, row["image_id"]))
    else:
        raise LineageError(f"no image matches {target!r} in {manifests_dir(store.data_root)}")
    # 3. is the file still the one the row describes, and is it where the row says?
    recorded = (store.data_root / row["path"]).resolve()
    current = png.path.resolve() if png else recorded
    file = png or (read_png(recorded) if recorded.is_file() else None)
    check = integrity(row, file, by_manifest=source == "manifests")
    moved = png is not None and current != recorded
    if moved:
        record = "the manifest" if source == "manifests" else "its metadata"
        notes.append(f"moved: the file is at {current}; {record} records {row['path']}")
    # 4. downstream: captions, dataset versions, the adapters trained on them, their reports
    image_id = row["image_id"]
    members = q.memberships(store, image_id)
    adapters = q.adapters_for(store, sorted({(m["dataset"], m["dataset_version"]) for m in members}))
    return {
        "direction": "forward",
        "query": {
            "target": target,
            "as": how,
            "matched_by": hit["matched"] if source == "manifests" else None,
        },
        "source": source,
        "store": store.mode,
        "notes": notes,
        "image": {
            "image_id": image_id,
            "path": row["path"],
            "current_path": str(current) if file else None,
            "moved": moved,
            "retired": bool(hit and hit["retired"]) if source == "manifests" else False,
            "width": row.get("width"),
            "height": row.get("height"),
            "sha256": row.get("sha256"),
            "pixel_sha256": row.get("pixel_sha256"),
        },
        "integrity": check,
        **describe(row, catalog, day),
        "captions": q.captions(store, catalog, day, image_id),
        "datasets": members,
        "adapters": adapters,
        "evaluations": q.evaluation_reports(store, [a["adapter_id"] for a in adapters]),
    }
