"""DuckDB over the Parquet manifests: the relations lineage queries read, scanned or indexed.

Both sources expose the same relations, so every query is written once:

- ``images``: a narrow projection of the ``generation`` and ``generation_retired`` manifests (ids,
  hashes, path, catalog, date, entry, seed, model, run, ``retired``); ``hashes``: (hash, kind,
  image_id) for both the file and the pixel sha256 of every image;
- ``members`` (``dataset_members``), ``adapters`` and ``evaluations``: whole rows, Hive keys as columns.

Full generation rows and captions are not in them: once ``images`` gives an image's catalog and date,
they are read from that one partition's Parquet file (a partition holds one catalog-day, ~1k rows).

**scan** (no index, the default): views over ``read_parquet(glob, hive_partitioning=true,
union_by_name=true)``. Correct and instant for a project's first thousands of images; a point lookup
reads the ``image_id`` column of every generation file, because an id is a hash and prunes nothing.

**index** (``diffusion-assets lineage --index``): ``<data>/lineage.duckdb``, built from the same views
and renamed into place atomically. Layout, chosen with ``benchmarks/lineage_1m.py`` (1M images):

- ``images`` sorted by ``image_id``, and ``hashes`` (file and pixel sha256 → image id, two rows per
  image) sorted by hash: DuckDB's zone maps (per-row-group min/max) then leave one row group of
  ~120k rows to read for a lookup by id or by either hash, ~2 ms;
- ``members`` sorted by (dataset, dataset_version), so a version is one contiguous range, with an ART index
  on ``image_id`` for the forward probe (200k rows: a small index);
- ``adapters`` and ``evaluations`` copied whole (hundreds to tens of thousands of rows).

ART indexes on ``images`` were measured and dropped: on three 20/64-hex columns of random hashes they
grew the file from 231 to 418 MB (the manifests themselves are 175 MB) and slowed the build, to save
about 1 ms of a ~15 ms forward lineage. The index stays narrow for the same reason: prompts, JSON
configs and captions stay in Parquet, read from the image's one partition file. The full
scan it replaces reads the ``image_id`` column of every partition (~0.8 s at 1M images).

The index records a signature of the manifest files it was built from (path, size, mtime); once it
exists, a query whose manifests no longer match that signature rebuilds it first (~15 s at 1M
images), so an index is never silently stale. Without an index, nothing is written.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from diffusion_assets.files import atomic_path
from diffusion_assets.manifests import adapters as am
from diffusion_assets.manifests import datasets as dm
from diffusion_assets.manifests import evaluation as em
from diffusion_assets.manifests import generation as gm
from diffusion_assets.manifests.io import glob

INDEX_FILE = "lineage.duckdb"
INDEX_FORMAT = 1
"""Bump when the index's tables change: an index of another format counts as stale."""

RETIRED_KIND = gm.KIND + "_retired"
INDEXED_KINDS = (gm.KIND, RETIRED_KIND, dm.KIND, am.KIND, em.KIND)
IMAGE_COLUMNS = (
    "image_id",
    "sha256",
    "pixel_sha256",
    "path",
    "catalog",
    "date",
    "entry_id",
    "seed",
    "preset",
    "model_id",
    "model_weights_hash",
    "dagster_run_id",
    "partition_key",
)
_DUCK_TYPES = {
    pa.string(): "VARCHAR",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
}


def manifests_dir(data_root: Path) -> Path:
    return Path(data_root) / "manifests"


def index_path(data_root: Path) -> Path:
    return Path(data_root) / INDEX_FILE


def sql_string(text: str) -> str:
    """A SQL string literal (file paths go into ``read_parquet`` and ``ATTACH``, which take no parameters)."""
    return "'" + text.replace("'", "''") + "'"


def _has_files(data_root: Path, kind: str) -> bool:
    return any((manifests_dir(data_root) / kind).rglob("*.parquet"))


def kind_sql(data_root: Path, kind: str, schema: pa.Schema, hive_keys: tuple[str, ...]) -> str:
    """One manifest kind as SQL with every schema column present, Hive keys as VARCHAR.

    A typed empty relation is unioned by name with the files, so a kind with no files yet is an empty
    relation (not an error) and a column that older files lack reads as NULL.
    """
    typed = [f"CAST(NULL AS {_DUCK_TYPES[f.type]}) AS {f.name}" for f in schema]
    typed += [f"CAST(NULL AS VARCHAR) AS {key}" for key in hive_keys]
    empty = f"SELECT {', '.join(typed)} WHERE false"
    if not _has_files(data_root, kind):
        return empty
    # hive_types_autocast=false: a date-like key (or an all-digit version hash) stays VARCHAR
    files = (
        f"SELECT * FROM read_parquet({sql_string(glob(data_root, kind))}, hive_partitioning=true, "
        "union_by_name=true, hive_types_autocast=false)"
    )
    return f"{empty} UNION ALL BY NAME {files}"


def define_views(con: duckdb.DuckDBPyConnection, data_root: Path) -> None:
    """Create the lineage relations as temporary views over the Parquet manifests."""
    cols = ", ".join(IMAGE_COLUMNS)
    gen = kind_sql(data_root, gm.KIND, gm.SCHEMA, ("catalog", "date"))
    retired = kind_sql(data_root, RETIRED_KIND, gm.SCHEMA, ("catalog", "date"))
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW images AS SELECT {cols}, false AS retired FROM ({gen}) "
        f"UNION ALL SELECT {cols}, true AS retired FROM ({retired})"
    )
    # both hashes of every image, one row each, so one sorted table answers "which image has this sha256"
    con.execute(
        "CREATE OR REPLACE TEMP VIEW hashes AS SELECT sha256 AS hash, 'sha256' AS kind, image_id FROM images "
        "UNION ALL SELECT pixel_sha256, 'pixel_sha256', image_id FROM images"
    )
    con.execute(
        "CREATE OR REPLACE TEMP VIEW members AS " + kind_sql(data_root, dm.KIND, dm.SCHEMA, dm.HIVE_KEYS)
    )
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW adapters AS {kind_sql(data_root, am.KIND, am.SCHEMA, am.HIVE_KEYS)}"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW evaluations AS {kind_sql(data_root, em.KIND, em.SCHEMA, em.HIVE_KEYS)}"
    )


def _walk(folder: Path) -> Iterator[os.DirEntry]:
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(Path(entry.path))
            elif entry.name.endswith(".parquet"):
                yield entry


def signature(data_root: Path) -> str:
    """sha256 of (path, size, mtime) of every indexed manifest file: any write, add or delete changes it."""
    digest = hashlib.sha256(f"format {INDEX_FORMAT}\n".encode())
    for kind in INDEXED_KINDS:
        folder = manifests_dir(data_root) / kind
        if folder.is_dir():
            for entry in sorted(_walk(folder), key=lambda e: e.path):
                stat = entry.stat()
                digest.update(f"{entry.path}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def build_index(data_root: Path) -> Path:
    """Write ``<data>/lineage.duckdb`` from the manifests (atomically: readers see old or new)."""
    data_root = Path(data_root)
    target = index_path(data_root)
    stamp = signature(data_root)
    con = duckdb.connect()
    try:
        define_views(con, data_root)
        with atomic_path(target) as tmp:
            tmp.unlink()  # DuckDB creates its own file; an empty one is not a database
            con.execute(f"ATTACH {sql_string(str(tmp))} AS idx")
            # 1. images sorted by id, hashes sorted by hash: zone maps leave one row group to read
            con.execute("CREATE TABLE idx.images AS SELECT * FROM images ORDER BY image_id")
            con.execute("CREATE TABLE idx.hashes AS SELECT * FROM hashes ORDER BY hash")
            # 2. members contiguous per dataset version; probed by image id going forward
            con.execute(
                "CREATE TABLE idx.members AS SELECT * FROM members ORDER BY dataset, dataset_version, image_id"
            )
            con.execute("CREATE INDEX members_image_id ON idx.members (image_id)")
            con.execute("CREATE TABLE idx.adapters AS SELECT * FROM adapters ORDER BY adapter_id")
            con.execute(
                "CREATE TABLE idx.evaluations AS SELECT * FROM evaluations ORDER BY adapter_id, report_id"
            )
            con.execute("CREATE TABLE idx.meta AS SELECT ? AS signature, ? AS format", [stamp, INDEX_FORMAT])
            con.execute("DETACH idx")
    finally:
        con.close()
    return target


def _open_fresh_index(data_root: Path) -> tuple[str, duckdb.DuckDBPyConnection | None]:
    """(``none`` | ``fresh`` | ``stale``, a read-only connection when fresh)."""
    path = index_path(data_root)
    if not path.is_file():
        return "none", None
    try:
        con = duckdb.connect(str(path), read_only=True)
        stored = con.execute("SELECT signature, format FROM meta").fetchall()
    except duckdb.Error:
        return "stale", None
    if stored and stored[0] == (signature(data_root), INDEX_FORMAT):
        return "fresh", con
    con.close()
    return "stale", None


def index_state(data_root: Path) -> str:
    """``none``, ``fresh`` or ``stale`` (the manifests changed since the index was built)."""
    state, con = _open_fresh_index(data_root)
    if con is not None:
        con.close()
    return state


@dataclass
class Store:
    """An open connection whose ``images``, ``hashes``, ``members``, ``adapters`` and ``evaluations``
    answer the lineage queries."""

    data_root: Path
    con: duckdb.DuckDBPyConnection
    mode: str
    """``index`` or ``scan``."""
    notes: list[str] = field(default_factory=list)

    @property
    def has_manifests(self) -> bool:
        return manifests_dir(self.data_root).is_dir()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_store(
    data_root: Path, *, use_index: bool = True, progress: Callable[[str], None] | None = None
) -> Store:
    """The index when one exists (rebuilt first if the manifests changed), else views over the files.

    ``progress`` hears about a rebuild before it starts (seconds at a million images). A stale index
    that cannot be rebuilt (a read-only data folder) is bypassed with a note, never used.
    """
    data_root = Path(data_root)
    notes = []
    if use_index:
        state, con = _open_fresh_index(data_root)
        if con is not None:
            return Store(data_root, con, "index")
        if state == "stale":
            if progress:
                progress(f"refreshing {index_path(data_root)}: the manifests changed since it was built")
            try:
                build_index(data_root)
            except (OSError, duckdb.Error) as exc:
                notes.append(f"stale index {index_path(data_root)} not used (cannot rebuild it: {exc})")
            else:
                note = f"refreshed {index_path(data_root)}: the manifests changed since it was built"
                con = duckdb.connect(str(index_path(data_root)), read_only=True)
                return Store(data_root, con, "index", [note])
    con = duckdb.connect()
    define_views(con, data_root)
    return Store(data_root, con, "scan", notes)
