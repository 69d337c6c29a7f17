"""Lineage over a million images: the ``lineage.duckdb`` index against a plain scan of the manifests.

Writes synthetic manifests with the real schemas and every column filled (default: 100 catalogs ×
10 dates × 1,000 images = 1M generation rows, one caption per image, 50 datasets × 2 versions × 2,000
members, 200 adapters, 48 evaluation rows each), builds the index, then times in the same run:

(a) forward lineage of one image (by id, and by file sha256) with the store open ("warm"), and
    once more including opening the store and checking the index is fresh (what one CLI call does);
(b) reverse lineage of one adapter (its 2,000 member images joined to their generation rows).

The baseline is the scan store: the same queries over ``read_parquet(glob, hive_partitioning=true)``
with no index, where an image id (a hash) prunes no partition; and, plainer still, a lone
``read_parquet`` lookup of the generation row. Prints medians and the ratios to the index.

    python benchmarks/lineage_1m.py [--catalogs 100] [--dates 10] [--per-partition 1000] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from diffusion_assets.lineage.forward import forward_lineage
from diffusion_assets.lineage.reverse import reverse_lineage
from diffusion_assets.lineage.store import build_index, index_path, open_store
from diffusion_assets.manifests import adapters as am
from diffusion_assets.manifests import captions as cm
from diffusion_assets.manifests import datasets as dm
from diffusion_assets.manifests import evaluation as em
from diffusion_assets.manifests import generation as gm
from diffusion_assets.manifests.io import glob, partition_path

MODELS = [  # preset, model id, pipeline, scheduler class, dtype
    (
        "sd15",
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "StableDiffusionPipeline",
        "EulerAncestralDiscreteScheduler",
    ),
    (
        "sdxl",
        "stabilityai/stable-diffusion-xl-base-1.0",
        "StableDiffusionXLPipeline",
        "DPMSolverMultistepScheduler",
    ),
    ("flux-schnell", "black-forest-labs/FLUX.1-schnell", "FluxPipeline", "FlowMatchEulerDiscreteScheduler"),
]
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white", "black")
SHAPES = ("circle", "square", "triangle", "star", "hexagon")
SCHEDULER_CONFIG = json.dumps(
    {
        "num_train_timesteps": 1000,
        "beta_schedule": "scaled_linear",
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "prediction_type": "epsilon",
        "timestep_spacing": "leading",
        "steps_offset": 1,
        "trained_betas": None,
        "_class_name": "EulerAncestralDiscreteScheduler",
        "_diffusers_version": "0.36.0",
    },
    sort_keys=True,
)
PACKAGES = json.dumps({"diffusers": "0.36.0", "torch": "2.9.0", "transformers": "4.57.0", "python": "3.12"})
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def column(value, n: int) -> list:
    return [value] * n


def hexes(rng: np.random.Generator, n: int, width: int) -> list[str]:
    text = rng.bytes(n * width // 2).hex()
    return [text[i : i + width] for i in range(0, n * width, width)]


def write(path: Path, columns: dict, schema: pa.Schema) -> None:
    """One manifest file; nullable columns this synthetic world does not fill are null."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(next(iter(columns.values())))
    for f in schema:
        if f.name not in columns and f.nullable:
            columns[f.name] = pa.nulls(n, f.type)
    pq.write_table(pa.table(columns, schema=schema), path, compression="zstd")


def generation_columns(rng, catalog: int, day: str, n: int) -> dict:
    """Every column of the generation schema, as a partition writer would fill it."""
    preset, model_id, pipeline, scheduler = MODELS[catalog % len(MODELS)]
    name, idx = f"cat{catalog:03d}", np.arange(n)
    ids = hexes(rng, n, 20)
    colours, shapes = [COLOURS[i % 8] for i in idx], [SHAPES[(i // 8) % 5] for i in idx]
    full = partial(column, n=n)
    return {
        "image_id": ids,
        "path": [f"images/{name}/{day}/{i}.png" for i in ids],
        "sha256": hexes(rng, n, 64),
        "pixel_sha256": hexes(rng, n, 64),
        "width": full(1024),
        "height": full(1024),
        "prompt": [
            f"a {c} {s} on a plain background, number {i}"
            for c, s, i in zip(colours, shapes, idx, strict=True)
        ],
        "negative_prompt": full("blurry, low quality"),
        "template_vars": [
            json.dumps({"colour": c, "shape": s}) for c, s in zip(colours, shapes, strict=True)
        ],
        "catalog_file": full(f"prompts/{name}.yaml"),
        "catalog_sha256": full(f"{catalog:064x}"),
        "entry_id": [
            f"e{i // 4}[colour={c},shape={s}]" for c, s, i in zip(colours, shapes, idx, strict=True)
        ],
        "base_entry_id": [f"e{i // 4}" for i in idx],
        "sample_index": idx % 4,
        "seed": rng.integers(0, 2**62, n),
        "seed_derivation": full(1),
        "generator_device": full("cpu"),
        "batch_size": full(4),
        "batch_index": idx % 4,
        "batch_id": [ids[i - i % 4] for i in idx],
        "preset": full(preset),
        "model_id": full(model_id),
        "model_revision": full("main"),
        "model_weights_hash": full(f"{catalog % len(MODELS):064x}"),
        "pipeline_class": full(pipeline),
        "scheduler": full("euler_a"),
        "sampler": full("Euler a"),
        "scheduler_class": full(scheduler),
        "scheduler_config": full(SCHEDULER_CONFIG),
        "steps": full(30),
        "guidance_scale": full(7.0),
        "guidance_kind": full("cfg"),
        "true_cfg_scale": full(1.0),
        "refiner_model_id": full("stabilityai/stable-diffusion-xl-refiner-1.0"),
        "refiner_weights_hash": full("e" * 64),
        "refiner_switch": full(0.8),
        "controlnet_model_id": full("diffusers/controlnet-canny-sdxl-1.0"),
        "controlnet_weights_hash": full("c" * 64),
        "control_preprocess": full("canny"),
        "control_image_path": full("control/edges.png"),
        "control_image_sha256": full("d" * 64),
        "controlnet_scale": full(0.5),
        "lora_path": full("loras/detail.safetensors"),
        "lora_weights_hash": full("f" * 64),
        "lora_scale": full(0.7),
        "dagster_run_id": full(f"run-{name}-{day}"),
        "partition_key": full(f"{name}|{day}"),
        "asset_code_version": full("1"),
        "package_versions": full(PACKAGES),
        "device": full("cuda"),
        "device_name": full("NVIDIA H200"),
        "dtype": full("bfloat16"),
        "duration_s": rng.random(n),
        "peak_memory_bytes": full(12 << 30),
        "created_at": full(T0),
    }


def caption_columns(ids: list[str], name: str, day: str) -> dict:
    n = len(ids)
    full = partial(column, n=n)
    return {
        "image_id": ids,
        "caption": [f"a drawing of shape {i}" for i in range(n)],
        "captioner_mode": full("model"),
        "captioner_id": full("Salesforce/blip-image-captioning-base"),
        "captioner_weights_hash": full("9" * 64),
        "template": full("{caption}"),
        "captioner_settings": full('{"max_new_tokens": 30}'),
        "dagster_run_id": full(f"cap-{name}-{day}"),
        "partition_key": full(f"{name}|{day}"),
        "asset_code_version": full("1"),
        "created_at": full(T0 + timedelta(days=1)),
    }


def write_manifests(root: Path, args) -> dict:
    """The synthetic manifests; returns ``{image_id: (sha256, path)}`` samples and the adapter ids."""
    rng = np.random.default_rng(0)
    days = [(T0 + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(args.dates)]
    by_catalog: dict[int, list[tuple[str, str, str]]] = {}
    # 1. generation and captions, one partition per catalog-day
    for catalog in range(args.catalogs):
        for day in days:
            cols = generation_columns(rng, catalog, day, args.per_partition)
            keys = {"catalog": f"cat{catalog:03d}", "date": day}
            write(partition_path(root, gm.KIND, keys), cols, gm.SCHEMA)
            write(
                partition_path(root, cm.KIND, keys),
                caption_columns(cols["image_id"], keys["catalog"], day),
                cm.SCHEMA,
            )
            by_catalog.setdefault(catalog, []).extend(
                zip(cols["image_id"], cols["sha256"], cols["path"], strict=True)
            )
    # 2. datasets drawing on two catalogs each; version 2 keeps 3/4 of version 1's images
    adapters, evaluations = [], {}
    for d in range(args.datasets):
        pool = by_catalog[d % args.catalogs] + by_catalog[(d + 1) % args.catalogs]
        first = rng.choice(len(pool), args.members, replace=False)
        second = np.concatenate(
            [first[: args.members * 3 // 4], rng.choice(len(pool), args.members // 4, replace=False)]
        )
        name = f"ds{d:02d}"
        for v, chosen in enumerate((first, np.unique(second))):
            version = f"{d:08d}{v:08d}"
            members = [pool[i] for i in chosen]
            n = len(members)
            cols = {
                "image_id": [m[0] for m in members],
                "split": ["validation" if i % 10 == 0 else "train" for i in range(n)],
                "caption": [f"a drawing of shape {i}, sks" for i in range(n)],
                "file_name": [f"train/{m[0]}.png" for m in members],
                "source_path": [m[2] for m in members],
                "source_sha256": [m[1] for m in members],
                "spec_file": [f"lora_datasets/{name}.yaml"] * n,
                "spec_sha256": ["5" * 64] * n,
                "dagster_run_id": [f"ds-{name}-{v}"] * n,
                "created_at": [T0 + timedelta(days=2)] * n,
            }
            write(partition_path(root, dm.KIND, {"dataset": name, "version": version}), cols, dm.SCHEMA)
            # 3. adapters per version, each with one evaluation report
            for a in range(args.adapters // (args.datasets * 2)):
                adapter_id = f"{d:06d}{v:06d}{a:08d}"
                adapters.append((name, adapter_id, version))
                evaluations.setdefault(name, []).append((adapter_id, version))
    write_adapters(root, adapters)
    write_evaluations(root, evaluations)
    sample = [
        by_catalog[c][i]
        for c, i in zip(
            rng.integers(0, args.catalogs, 50),
            rng.integers(0, args.per_partition * args.dates, 50),
            strict=True,
        )
    ]
    return {"images": sample, "adapters": [a[1] for a in adapters]}


def write_adapters(root: Path, adapters: list[tuple[str, str, str]]) -> None:
    for name in sorted({a[0] for a in adapters}):
        mine = [a for a in adapters if a[0] == name]
        n = len(mine)
        full = partial(column, n=n)
        cols = {
            "adapter_id": [a[1] for a in mine],
            "path": [f"adapters/{name}/{a[1]}.safetensors" for a in mine],
            "sha256": full("7" * 64),
            "dataset_version": [a[2] for a in mine],
            "base_model_id": full(MODELS[0][1]),
            "base_weights_hash": full("0" * 64),
            "pipeline_class": full(MODELS[0][2]),
            "trigger_word": full("sks"),
            "rank": [4 * (i + 1) for i in range(n)],
            "alpha": full(8.0),
            "learning_rate": full(1e-4),
            "steps": full(1000),
            "batch_size": full(8),
            "resolution": full(512),
            "seed": full(0),
            "mixed_precision": full("bf16"),
            "gradient_checkpointing": full(False),
            "min_snr_gamma": full(5.0),
            "final_loss": full(0.08),
            "train_seconds": full(600.0),
            "steps_per_second": full(1.7),
            "peak_memory_bytes": full(20 << 30),
            "dagster_run_id": [f"train-{a[1]}" for a in mine],
            "asset_code_version": full("1"),
            "created_at": full(T0 + timedelta(days=3)),
        }
        write(partition_path(root, am.KIND, {"dataset": name}), cols, am.SCHEMA)


def write_evaluations(root: Path, by_dataset: dict[str, list[tuple[str, str]]]) -> None:
    """48 rows per adapter: weights 0, 0.5, 1 × 8 prompts × 2 seeds."""
    for name, adapters in by_dataset.items():
        rows = [
            (adapter_id, version, w, p, s)
            for adapter_id, version in adapters
            for w in (0.0, 0.5, 1.0)
            for p in range(8)
            for s in range(2)
        ]
        n = len(rows)
        full = partial(column, n=n)
        cols = {
            "row_id": [f"{r[0][:12]}{i:08d}" for i, r in enumerate(rows)],
            "report_id": [f"rep{r[0]}" for r in rows],
            "adapter_id": [r[0] for r in rows],
            "dataset_version": [r[1] for r in rows],
            "model": full("sd15"),
            "prompt": [f"a shape, in sks style {r[3]}" for r in rows],
            "prompt_kind": ["trigger" if r[3] < 4 else "no_trigger" for r in rows],
            "seed": [r[4] for r in rows],
            "weight": [r[2] for r in rows],
            "image_path": [f"reports/{r[0]}/{i}.png" for i, r in enumerate(rows)],
            "image_sha256": full("8" * 64),
            "clip_t": [25.0 + r[2] for r in rows],
            "clip_i": full(0.8),
            "adherence_all": [r[3] % 2 == 0 for r in rows],
            "colour_ok": full(True),
            "shape_ok": full(True),
            "background_ok": full(True),
            "style_ok": [r[2] > 0 for r in rows],
            "created_at": full(T0 + timedelta(days=4)),
            "dagster_run_id": full("eval"),
        }
        write(partition_path(root, em.KIND, {"dataset": name}), cols, em.SCHEMA)


def median_ms(fn, targets: list, repeat: int) -> float:
    times = []
    for target in (targets * repeat)[:repeat]:
        start = time.perf_counter()
        fn(target)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalogs", type=int, default=100)
    parser.add_argument("--dates", type=int, default=10)
    parser.add_argument("--per-partition", type=int, default=1000)
    parser.add_argument("--datasets", type=int, default=50)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--adapters", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=30, help="forward lookups timed per store")
    parser.add_argument("--out", type=Path, help="keep the manifests here (default: a temp folder, deleted)")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="lineage_1m_"))
    try:
        run(root, args)
    finally:
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)


def run(root: Path, args) -> None:
    # 1. manifests and index
    start = time.perf_counter()
    made = write_manifests(root, args)
    n_images = args.catalogs * args.dates * args.per_partition
    print(
        f"manifests: {n_images:,} images in {args.catalogs * args.dates} partitions, captions, "
        f"{args.datasets * 2} dataset versions, {len(made['adapters'])} adapters: "
        f"{folder_mb(root / 'manifests'):.0f} MB written in {time.perf_counter() - start:.1f} s"
    )
    start = time.perf_counter()
    build_index(root)
    print(
        f"index: {index_path(root).stat().st_size / 2**20:.0f} MB "
        f"built in {time.perf_counter() - start:.1f} s"
    )
    ids = [m[0] for m in made["images"]]
    shas = [m[1] for m in made["images"]]
    adapter_ids = made["adapters"][:: max(1, len(made["adapters"]) // 5)][:5]
    results = {}
    # 2. the same queries on both stores, the store held open ("warm"); one untimed warm-up each
    for mode in ("index", "scan"):
        repeat = args.repeat if mode == "index" else max(3, args.repeat // 10)
        with open_store(root, use_index=mode == "index") as store:
            assert store.mode == mode
            forward_lineage(store, ids[-1])
            doc = forward_lineage(store, ids[0])
            assert doc["datasets"] is not None and doc["source"] == "manifests"
            trace = partial(forward_lineage, store)
            results[mode, "forward id"] = median_ms(trace, ids, repeat)
            results[mode, "forward sha256"] = median_ms(trace, shas, repeat)
            reverse_lineage(store, adapter_id=adapter_ids[0])
            doc = reverse_lineage(store, adapter_id=adapter_ids[-1])
            results[mode, "reverse adapter"] = median_ms(
                lambda a, store=store: reverse_lineage(store, adapter_id=a),
                adapter_ids,
                len(adapter_ids) if mode == "index" else 3,
            )

        # what one CLI call pays: open the store (and, for the index, check it is fresh), then trace
        def one_call(target: str, mode: str = mode) -> None:
            with open_store(root, use_index=mode == "index") as store:
                forward_lineage(store, target)

        results[mode, "forward id, incl. open"] = median_ms(one_call, ids, repeat)
    # 3. the plainest possible baseline: one generation row by id, straight from the Parquet glob
    con = duckdb.connect()
    sql = f"SELECT * FROM read_parquet('{glob(root, gm.KIND)}', hive_partitioning=true) WHERE image_id = ?"
    raw = median_ms(lambda t: con.execute(sql, [t]).fetchall(), ids, max(3, args.repeat // 10))
    print(
        f"reverse lineage sample: {doc['sources']['images']} member images, "
        f"{len(doc['sources']['by_catalog'])} catalogs, {len(doc['evaluations'])} report"
    )
    print(f"\n{'median ms':32} {'index':>9} {'scan':>9} {'scan/index':>11}")
    for label in ("forward id", "forward sha256", "forward id, incl. open", "reverse adapter"):
        fast, slow = results["index", label], results["scan", label]
        print(f"{label:32} {fast:9.1f} {slow:9.1f} {slow / fast:10.1f}x")
    fast = results["index", "forward id"]
    print(
        f"\nbaseline: one generation row by id via read_parquet(glob) alone: {raw:.1f} ms, "
        f"{raw / fast:.1f}x the whole forward lineage through the index"
    )


if __name__ == "__main__":
    main()
