"""What a run killed between two writes leaves in a generation partition, found and explained.

A run writes each PNG (temp file, then rename), and indexes a batch in the manifest once the whole
batch is written. Killed in between, it leaves temp files (``.<name>.*.tmp``) and PNGs that no
manifest row explains. ``recover_leftovers`` runs at the start of the next run of the partition,
under the partition lock (so no writer is alive), and leaves every PNG explained:

- temp files are removed;
- a PNG whose embedded row (``pngmeta.ROW_CHUNK``) is intact, names this file and matches its
  pixels is *adopted* into the generation manifest when the plan still wants its image id, and
  moved to the ``generation_retired`` manifest with that row when it does not (a catalog edit came
  in between), so its lineage is kept; the four per-execution fields the PNG does not carry are
  unknown (run id null, duration NaN, creation time from the file's mtime);
- any other PNG (torn, unreadable, or not one of ours) is removed; a wanted image is made again in
  its original batch, byte-identical.
"""

from __future__ import annotations

import logging
from collections.abc import Container
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from PIL import Image

from diffusion_assets.files import sha256_file, sweep_temp_files
from diffusion_assets.generation.pngmeta import pixel_sha256, read_row
from diffusion_assets.manifests import generation as gm
from diffusion_assets.manifests.io import partition_path, read_rows, write_table

log = logging.getLogger(__name__)


@dataclass
class Leftovers:
    """What ``recover_leftovers`` found and did."""

    temp_files: list[Path] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.temp_files or self.adopted or self.retired or self.removed)


def embedded_manifest_row(png: Path, data_root: Path) -> dict | None:
    """The manifest row a PNG carries, completed with its file hash; None unless it is intact.

    Intact: the row decodes, names this very file (``path``, ``image_id``), its ``pixel_sha256``
    matches the decoded pixels, and it fits the manifest schema.
    """
    try:
        row = read_row(png)
        with Image.open(png) as image:
            pixels = pixel_sha256(image)
    except (OSError, ValueError, SyntaxError):  # PIL's errors for torn and foreign files
        return None
    if not row or row.get("image_id") != png.stem or row.get("pixel_sha256") != pixels:
        return None
    if row.get("path") != png.relative_to(data_root).as_posix():
        return None
    row = {
        **row,
        "sha256": sha256_file(png),
        "dagster_run_id": None,
        "created_at": datetime.fromtimestamp(png.stat().st_mtime, UTC),
        "duration_s": float("nan"),
        "peak_memory_bytes": None,
    }
    try:
        pa.Table.from_pylist([row], schema=gm.SCHEMA)
    except (pa.ArrowException, TypeError, ValueError):  # written by a version with another schema
        return None
    return row


def recover_leftovers(data_root: Path, catalog: str, date: str, wanted: Container[str]) -> Leftovers:
    """Sweep and explain what a dead run left in one partition (see the module docstring).

    Call it while holding the partition's lock. ``wanted`` holds the image ids the current plan
    makes. Writes the manifests only when it adopts or retires something.
    """
    data_root = Path(data_root)
    keys = {"catalog": catalog, "date": date}
    manifest = partition_path(data_root, gm.KIND, keys)
    retired_path = partition_path(data_root, gm.KIND + "_retired", keys)
    images = data_root / "images" / catalog / date
    found = Leftovers(temp_files=sweep_temp_files(images, manifest.parent, retired_path.parent))
    if not images.is_dir():
        return found
    rows, retired_rows = read_rows(manifest), read_rows(retired_path)
    known = {r["image_id"] for r in rows + retired_rows}
    adopt, retire = [], []
    for png in sorted(images.glob("*.png")):
        if png.stem in known:
            continue
        row = embedded_manifest_row(png, data_root)
        if row is None:
            png.unlink()
            found.removed.append(png)
        else:
            (adopt if row["image_id"] in wanted else retire).append(row)
    # adding before removing anything, as retire_rows does: a row is never in neither manifest
    if retire:
        write_table(retired_path, retired_rows + retire, gm.SCHEMA)
    if adopt:
        write_table(manifest, rows + adopt, gm.SCHEMA)
    found.adopted = [r["image_id"] for r in adopt]
    found.retired = [r["image_id"] for r in retire]
    if found:
        log.warning(
            "partition %s|%s: a dead run's leftovers: %d temp files removed, %d PNGs adopted, "
            "%d moved to the retired manifest (the catalog no longer wants them), %d unreadable removed",
            catalog,
            date,
            len(found.temp_files),
            len(found.adopted),
            len(found.retired),
            len(found.removed),
        )
    return found
