"""The lineage joins, one function per arrow of the chain, as SQL over a ``store.Store``.

``image_id → generation row → captions → dataset versions → adapters → evaluation reports``,
and back.
Every function returns plain dicts (timestamps as ISO text) so they go straight into JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

from diffusion_assets.lineage.store import RETIRED_KIND, Store, sql_string
from diffusion_assets.manifests import captions as cm
from diffusion_assets.manifests import generation as gm
from diffusion_assets.manifests.io import partition_path

CAPTION_COLUMNS = ("caption", "captioner_mode", "captioner_id", "captioner_weights_hash", "template")
MEMBER_COLUMNS = ("dataset", "dataset_version", "split", "caption", "file_name", "source_sha256", "spec_file")
ADAPTER_COLUMNS = (
    "adapter_id",
    "dataset",
    "dataset_version",
    "path",
    "sha256",
    "base_model_id",
    "base_weights_hash",
    "pipeline_class",
    "trigger_word",
    "rank",
    "alpha",
    "learning_rate",
    "steps",
    "batch_size",
    "resolution",
    "seed",
    "final_loss",
    "dagster_run_id",
    "created_at",
)


def _plain(value):
    return value.isoformat() if isinstance(value, datetime | date) else value


def rows(store: Store, sql: str, params: Sequence = ()) -> list[dict]:
    """Run ``sql`` and return its rows as dicts."""
    cursor = store.con.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return [{n: _plain(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()]


def _marks(values: Sequence) -> str:
    return ", ".join("?" for _ in values) or "NULL"


def find_images(store: Store, *, image_id: str | None = None, sha256: str | None = None) -> list[dict]:
    """``images`` rows by id, or by file or pixel sha256 (``matched`` says which); live rows first."""
    if image_id is None:
        hits = rows(store, "SELECT image_id, kind FROM hashes WHERE hash = ?", [sha256])
        matched = {h["image_id"]: h["kind"] for h in sorted(hits, key=lambda h: h["kind"] == "sha256")}
    else:
        matched = {image_id: "image_id"}
    found = rows(store, f"SELECT * FROM images WHERE image_id IN ({_marks(matched)})", list(matched))
    found = [r | {"matched": matched[r["image_id"]]} for r in found]
    return sorted(found, key=lambda r: (r["retired"], r["matched"] != "sha256", r["catalog"], r["date"]))


def _partition_rows(
    store: Store, kind: str, catalog: str | None, day: str | None, image_id: str
) -> list[dict]:
    if catalog is None or day is None:
        return []
    path = partition_path(store.data_root, kind, {"catalog": catalog, "date": day})
    if not Path(path).is_file():
        return []
    return rows(store, f"SELECT * FROM read_parquet({sql_string(str(path))}) WHERE image_id = ?", [image_id])


def generation_row(store: Store, hit: dict) -> dict | None:
    """The full generation (or retired) manifest row of an ``images`` hit, read from its one partition."""
    kind = RETIRED_KIND if hit["retired"] else gm.KIND
    found = _partition_rows(store, kind, hit["catalog"], hit["date"], hit["image_id"])
    return found[0] if found else None


def captions(store: Store, catalog: str | None, day: str | None, image_id: str) -> list[dict]:
    """Caption rows of an image: its generation partition's caption manifest, then the captions it
    retired (made before a catalog edit retired the image, or by an earlier captioner)."""
    found = [
        {**r, "retired": kind != cm.KIND}
        for kind in (cm.KIND, cm.KIND + "_retired")
        for r in _partition_rows(store, kind, catalog, day, image_id)
    ]
    return [
        {k: r.get(k) for k in (*CAPTION_COLUMNS, "dagster_run_id", "created_at", "retired")} for r in found
    ]


def memberships(store: Store, image_id: str) -> list[dict]:
    """Every dataset version the image is a member of."""
    cols = ", ".join(MEMBER_COLUMNS)
    return rows(
        store, f"SELECT {cols} FROM members WHERE image_id = ? ORDER BY dataset, dataset_version", [image_id]
    )


def _versions_sql(versions: Sequence[tuple[str, str]], version_column: str) -> tuple[str, list]:
    """``(dataset = ? AND <version> = ?) OR …``: plain comparisons, which the zone maps can use
    (a row-value ``IN`` cannot)."""
    terms = " OR ".join(f"(dataset = ? AND {version_column} = ?)" for _ in versions)
    return f"({terms or 'false'})", [v for pair in versions for v in pair]


def adapters_for(store: Store, versions: Sequence[tuple[str, str]]) -> list[dict]:
    """Adapters trained on any of the (dataset, version) pairs."""
    where, params = _versions_sql(versions, "dataset_version")
    cols = ", ".join(ADAPTER_COLUMNS)
    sql = f"SELECT {cols} FROM adapters WHERE {where} ORDER BY created_at"
    return rows(store, sql, params)


def adapter(store: Store, adapter_id: str) -> dict | None:
    found = rows(
        store, f"SELECT {', '.join(ADAPTER_COLUMNS)} FROM adapters WHERE adapter_id = ?", [adapter_id]
    )
    return found[0] if found else None


def evaluation_reports(store: Store, adapter_ids: Sequence[str]) -> list[dict]:
    """Evaluation reports of the adapters, with per-weight means of the per-image scores."""
    sql = f"""
        SELECT report_id, adapter_id, any_value(dataset) AS dataset,
               any_value(dataset_version) AS dataset_version, any_value(model) AS model, weight,
               count(*) AS n, avg(clip_t) AS clip_t, avg(clip_i) AS clip_i,
               avg(adherence_all::DOUBLE) AS adherence, avg(style_ok::DOUBLE) AS style_rate,
               min(created_at) AS created_at
        FROM evaluations WHERE adapter_id IN ({_marks(adapter_ids)})
        GROUP BY report_id, adapter_id, weight ORDER BY created_at, report_id, weight"""
    reports: dict[str, dict] = {}
    for r in rows(store, sql, adapter_ids):
        keys = ("report_id", "adapter_id", "dataset", "dataset_version", "model")
        report = reports.setdefault(r["report_id"], {k: r[k] for k in keys} | {"n": 0, "weights": []})
        report["n"] += r["n"]
        report["created_at"] = min(report.get("created_at") or r["created_at"], r["created_at"])
        metrics = ("weight", "n", "clip_t", "clip_i", "adherence", "style_rate")
        report["weights"].append({k: r[k] for k in metrics})
    return list(reports.values())


def dataset_versions(store: Store, name: str, version: str | None = None) -> list[dict]:
    """The versions of a dataset (or the one named) with member and split counts."""
    sql = """
        SELECT dataset, dataset_version, count(*) AS images, count(*) FILTER (split = 'train') AS train,
               count(*) FILTER (split = 'validation') AS validation, any_value(spec_file) AS spec_file,
               any_value(spec_sha256) AS spec_sha256, min(created_at) AS created_at,
               any_value(dagster_run_id) AS dagster_run_id
        FROM members WHERE dataset = ? AND (? IS NULL OR dataset_version = ?)
        GROUP BY dataset, dataset_version ORDER BY created_at"""
    return rows(store, sql, [name, version, version])


def member_sources(store: Store, versions: Sequence[tuple[str, str]]) -> list[dict]:
    """One row per distinct member image of the versions, joined to its generation row (NULLs if none)."""
    where, params = _versions_sql(versions, "dataset_version")
    sql = f"""
        WITH m AS (
            SELECT image_id, any_value(split) AS split, any_value(source_sha256) AS source_sha256
            FROM members WHERE {where} GROUP BY image_id)
        SELECT m.image_id, m.split, m.source_sha256, i.sha256, i.path, i.catalog, i.date, i.entry_id,
               i.seed, i.preset, i.model_id, i.model_weights_hash, i.dagster_run_id, i.retired
        FROM m LEFT JOIN images i ON i.image_id = m.image_id
        QUALIFY row_number() OVER (PARTITION BY m.image_id ORDER BY i.retired) = 1
        ORDER BY i.catalog, i.date, m.image_id"""
    return rows(store, sql, params)
