"""Read and write Parquet manifests, Hive-partitioned, atomically.

Layout: ``<data root>/manifests/<kind>/<key>=<value>/.../part-0.parquet``. One file per partition,
replaced atomically on every write, so a reader (``pyarrow.dataset`` or DuckDB's
``read_parquet(..., hive_partitioning=true)``) sees the old file or the new one, never half.
Partition keys live only in the directory names; they are not repeated inside the files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from diffusion_assets.files import atomic_path, sha256_file

PART_FILE = "part-0.parquet"


def partition_path(root: Path, kind: str, keys: dict[str, str]) -> Path:
    """The manifest file of one partition, e.g. ``manifests/generation/catalog=x/date=y/part-0.parquet``."""
    path = Path(root) / "manifests" / kind
    for key, value in keys.items():
        if "/" in value or value.startswith("."):
            raise ValueError(f"partition value {value!r} for {key} cannot be a directory name")
        path = path / f"{key}={value}"
    return path / PART_FILE


def lock_path(root: Path, kind: str, keys: dict[str, str]) -> Path:
    """The lock file guarding one manifest partition's writers, e.g.
    ``.locks/generation/catalog=x/date=y.lock``: under the data root but outside ``manifests/``, so
    removing a manifest folder under a running writer does not let a second one take a fresh lock."""
    part = partition_path(root, kind, keys).parent.relative_to(Path(root) / "manifests")
    return Path(root) / ".locks" / part.parent / f"{part.name}.lock"


def write_table(path: Path, rows: list[dict], schema: pa.Schema) -> str:
    """Validate ``rows`` against ``schema`` and write them atomically; return the sha256 of the bytes
    written (hashed before the rename, so another writer's later version is never the one hashed)."""
    table = pa.Table.from_pylist(rows, schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
        digest = sha256_file(tmp)
    return digest


def read_table(path: Path, schema: pa.Schema | None = None) -> pa.Table | None:
    """One partition's manifest, or None if it was never written."""
    if not Path(path).is_file():
        return None
    return pq.read_table(path, schema=schema)


def read_rows(path: Path) -> list[dict]:
    """One partition's manifest rows, or none if it was never written."""
    table = read_table(path)
    return table.to_pylist() if table is not None else []


def retire_rows(
    manifest: Path,
    retired_path: Path,
    schema: pa.Schema,
    wanted: Callable[[dict], bool],
    key: Callable[[dict], object],
) -> tuple[list[dict], int]:
    """Move the rows of ``manifest`` that ``wanted`` rejects to its retired manifest, and retired rows
    it accepts back (``key`` identifies a retired row); return the wanted rows, restored ones
    included, and how many rows were retired.

    Rows are never deleted: every move adds before it removes, so an interrupt between two writes can
    leave a row in both manifests for a moment, never in neither.
    """
    previous, retired = read_rows(manifest), read_rows(retired_path)
    kept = list({key(r): r for r in retired + previous if wanted(r)}.values())  # a row in both: once
    leaving = [r for r in previous if not wanted(r)]
    restored = any(wanted(r) for r in retired)
    if leaving:
        retired = list({key(r): r for r in retired + leaving}.values())
        write_table(retired_path, retired, schema)
    if leaving or restored:
        write_table(manifest, kept, schema)
    if restored:
        write_table(retired_path, [r for r in retired if not wanted(r)], schema)
    return kept, len(leaving)


def dataset(root: Path, kind: str, schema: pa.Schema | None = None) -> ds.Dataset:
    """Every partition of a manifest kind as one dataset, with Hive keys as columns."""
    return ds.dataset(Path(root) / "manifests" / kind, format="parquet", partitioning="hive", schema=schema)


def glob(root: Path, kind: str) -> str:
    """The DuckDB ``read_parquet`` glob of a manifest kind."""
    return str(Path(root) / "manifests" / kind / "**" / "*.parquet")


def schema_problems(table: pa.Table, schema: pa.Schema, key: str) -> list[str]:
    """Differences between a manifest table and its schema, plus duplicate keys."""
    problems = []
    for field in schema:
        if field.name not in table.column_names:
            problems.append(f"missing column {field.name}")
        elif not table.schema.field(field.name).type.equals(field.type):
            problems.append(
                f"column {field.name} is {table.schema.field(field.name).type}, expected {field.type}"
            )
    extra = set(table.column_names) - set(schema.names)
    if extra:
        problems.append(f"unexpected columns {sorted(extra)}")
    if key in table.column_names:
        keys = table.column(key).to_pylist()
        if len(keys) != len(set(keys)):
            problems.append(f"{len(keys) - len(set(keys))} duplicate {key} values")
    return problems
