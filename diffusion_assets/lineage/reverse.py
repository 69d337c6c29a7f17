"""Reverse lineage: from an adapter or a dataset back to the images, catalogs, models and runs behind it.

The document ``reverse_lineage`` returns (``diffusion-assets lineage --adapter ID --json``, or
``--dataset NAME[@VERSION]``):

    {"direction": "reverse",
     "query": {"target": str, "as": "adapter" | "dataset"},
     "store": "index" | "scan",
     "notes": [str],
     "adapter": {adapter_id, dataset, dataset_version, path, sha256, base_model_id, base_weights_hash,
                 pipeline_class, trigger_word, rank, alpha, learning_rate, steps, batch_size, resolution,
                 seed, final_loss, dagster_run_id, created_at} | null,      # null for a dataset query
     "datasets": [{dataset, dataset_version, images, train, validation, spec_file, spec_sha256, created_at,
                   dagster_run_id}],
     "sources": {images, with_generation_row, missing, retired, changed_since_build,
                 by_catalog: [{catalog, images}], by_date: [{date, images}],
                 by_model: [{preset, model_id, weights_hash, images}], by_run: [{dagster_run_id, images}]},
     "images": [{image_id, split, catalog, date, entry_id, seed, preset, model_id, dagster_run_id, path}],
     "limit": int,                       # "images" holds at most this many (catalog, date, id order)
     "adapters": [...],                  # adapters trained on these versions (forward's adapter rows)
     "evaluations": [...]}               # their reports (forward's evaluation entries)

``sources`` counts distinct member images: ``missing`` have no generation row, ``changed_since_build``
have a generation row whose sha256 is no longer the one the dataset recorded when it was built.
"""

from __future__ import annotations

from collections import Counter

from diffusion_assets.lineage import LineageError
from diffusion_assets.lineage import query as q
from diffusion_assets.lineage.store import Store

IMAGE_FIELDS = (
    "image_id",
    "split",
    "catalog",
    "date",
    "entry_id",
    "seed",
    "preset",
    "model_id",
    "dagster_run_id",
    "path",
)


def _counts(counter: Counter, names: tuple[str, ...]) -> list[dict]:
    ordered = sorted(counter.items(), key=lambda kv: (-kv[1], tuple(str(k) for k in kv[0])))
    return [dict(zip(names, key, strict=True)) | {"images": n} for key, n in ordered]


def summarize_sources(found: list[dict]) -> dict:
    """Counts of distinct member images per catalog, date, model and generation run."""
    known = [r for r in found if r["sha256"] is not None]
    return {
        "images": len(found),
        "with_generation_row": len(known),
        "missing": len(found) - len(known),
        "retired": sum(bool(r["retired"]) for r in known),
        "changed_since_build": sum(r["sha256"] != r["source_sha256"] for r in known),
        "by_catalog": _counts(Counter((r["catalog"],) for r in known), ("catalog",)),
        "by_date": _counts(Counter((r["date"],) for r in known), ("date",)),
        "by_model": _counts(
            Counter((r["preset"], r["model_id"], r["model_weights_hash"]) for r in known),
            ("preset", "model_id", "weights_hash"),
        ),
        "by_run": _counts(Counter((r["dagster_run_id"],) for r in known), ("dagster_run_id",)),
    }


def parse_dataset(target: str) -> tuple[str, str | None]:
    """``NAME`` or ``NAME@VERSION``."""
    name, _, version = target.partition("@")
    return name, version or None


def reverse_lineage(
    store: Store, *, adapter_id: str | None = None, dataset: str | None = None, limit: int = 20
) -> dict:
    """The reverse lineage document of an adapter or a dataset; raises ``LineageError`` if unknown."""
    notes = list(store.notes)
    # 1. the dataset versions in question: the adapter's one, or the dataset's (all, or the one named)
    if adapter_id is not None:
        target, how = adapter_id, "adapter"
        row = q.adapter(store, adapter_id)
        if row is None:
            raise LineageError(f"no adapter {adapter_id!r} in the adapters manifest under {store.data_root}")
        versions = q.dataset_versions(store, row["dataset"], row["dataset_version"])
        if not versions:
            notes.append(f"no membership manifest for {row['dataset']}@{row['dataset_version']}")
        adapters = [row]
    else:
        target, how, row = dataset, "dataset", None
        versions = q.dataset_versions(store, *parse_dataset(dataset))
        if not versions:
            raise LineageError(
                f"no dataset {dataset!r} in the dataset_members manifest under {store.data_root}"
            )
        adapters = q.adapters_for(store, [(v["dataset"], v["dataset_version"]) for v in versions])
    # 2. member images joined to their generation rows, summarised, and the first `limit` listed
    found = q.member_sources(store, [(v["dataset"], v["dataset_version"]) for v in versions])
    sources = summarize_sources(found)
    if sources["missing"]:
        notes.append(f"{sources['missing']} member images have no generation manifest row")
    if sources["changed_since_build"]:
        notes.append(f"{sources['changed_since_build']} member images changed since the dataset was built")
    return {
        "direction": "reverse",
        "query": {"target": target, "as": how},
        "store": store.mode,
        "notes": notes,
        "adapter": row,
        "datasets": versions,
        "sources": sources,
        "images": [{k: r[k] for k in IMAGE_FIELDS} for r in found[:limit]],
        "limit": limit,
        "adapters": adapters,
        "evaluations": q.evaluation_reports(store, [a["adapter_id"] for a in adapters]),
    }
