"""Bytes that one ``generated_images`` materialization adds to the SQLite event log (issue 9 item 5).

Materializes a `shapes-tiny` partition of N images (N = 4, 16, 64) on a fresh SQLite instance in a
temporary DAGSTER_HOME, then reads what the instance stored: the ASSET_MATERIALIZATION rows of the
event log (every shard) and the asset's latest-materialization record. The baseline, measured on the
same images in the same run, is the inline grid the asset stored before (16 thumbnails of 48 px as a
base64 data URI, ~106 KB of metadata for 16 images). Goal: <= 10 KB per materialization.

Run: .venv/bin/python benchmarks/event_log_bytes.py   (CPU, ~1 min)
"""

from __future__ import annotations

import base64
import io
import sqlite3
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CATALOG = """
seed: 3
defaults: {{model: shapes-tiny, steps: 4, width: 32, height: 32, images_per_prompt: {per}}}
entries:
  - id: a
    prompt: "a red circle on a gray background"
  - id: b
    prompt: "a blue square on a white background"
"""


def stored_bytes(home: Path) -> tuple[int, int]:
    """(materialization event bytes summed over every shard, copies of the event stored, bytes of the
    latest-materialization record). SQLite keeps the event in the run's shard and in the index shard."""
    events = copies = latest = 0
    for db in home.rglob("*.db"):
        with sqlite3.connect(db) as con:
            tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
            if "event_logs" in tables:
                size, count = con.execute(
                    "select coalesce(sum(length(event)), 0), count(*) from event_logs "
                    "where dagster_event_type = 'ASSET_MATERIALIZATION'"
                ).fetchone()
                events, copies = events + size, copies + count
            if "asset_keys" in tables:
                latest += con.execute(
                    "select coalesce(sum(length(last_materialization)), 0) from asset_keys"
                ).fetchone()[0]
    return events, copies, latest


def old_inline_grid(paths: list[Path]) -> int:
    """Characters of the inline grid the asset embedded before: 16 thumbnails, 48 px cells."""
    from PIL import Image

    from diffusion_assets.previews import image_grid

    images = [Image.open(p) for p in paths[:16]]
    buffer = io.BytesIO()
    image_grid(images, min(8, len(images)), 48).save(buffer, format="PNG", optimize=True)
    return len(f"![thumbnails](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()})")


def measure(images: int) -> dict:
    import os

    import dagster as dg

    from diffusion_assets.defs.generation import generated_images
    from diffusion_assets.defs.partitions import CATALOG_PARTITIONS_NAME, generation_key
    from diffusion_assets.defs.resources import GpuResource, ProjectResource

    with tempfile.TemporaryDirectory() as tmp:
        project, home = Path(tmp) / "project", Path(tmp) / "home"
        (project / "prompts").mkdir(parents=True)
        home.mkdir()
        (project / "models").symlink_to(ROOT / "models")
        (project / "prompts" / "bench.yaml").write_text(CATALOG.format(per=images // 2))
        os.environ["DIFFUSION_ASSETS_ROOT"] = str(project)
        with dg.DagsterInstance.local_temp(str(home)) as instance:
            instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, ["bench"])
            result = dg.materialize(
                [generated_images],
                instance=instance,
                partition_key=str(generation_key("bench", "2026-12-04")),
                resources={"gpu": GpuResource(device="cpu", batch_size=8), "project": ProjectResource()},
            )
            assert result.success
        events, copies, latest = stored_bytes(home)
        pngs = sorted((project / "data" / "images").rglob("*.png"))
        return {
            "images": images,
            "event": events // copies,
            "copies": copies,
            "latest": latest,
            "old_grid": old_inline_grid(pngs),
        }


def main() -> None:
    print(
        "| images | materialization event (bytes per copy) | copies stored | latest-materialization record (bytes) | old inline grid alone (chars) |"
    )
    print("|---|---|---|---|---|")
    for n in (4, 16, 64):
        r = measure(n)
        print(f"| {r['images']} | {r['event']:,} | {r['copies']} | {r['latest']:,} | {r['old_grid']:,} |")


if __name__ == "__main__":
    main()
