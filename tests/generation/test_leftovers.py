"""A partition run killed between two writes (a real process, SIGKILLed in that exact window by the
``DIFFUSION_ASSETS_CRASH_AT`` hook): the next run leaves every PNG explained and no temp file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from diffusion_assets.files import CRASH_ENV, sha256_file
from diffusion_assets.generation.pngmeta import read_row
from diffusion_assets.generation.writer import WRITER_THREADS_ENV
from diffusion_assets.manifests import generation as gm
from diffusion_assets.manifests.io import partition_path, read_rows
from tests.conftest import write_catalog
from tests.generation.helpers import DATE, run_partition

ROOT = Path(__file__).resolve().parents[2]
CATALOG = """
seed: 5
defaults: {model: sd15, steps: 2, width: 32, height: 32, images_per_prompt: 2}
entries:
  - {id: first, prompt: "a red circle"}
  - {id: second, prompt: "a blue square"}
"""
KILLED_RUN = """
import sys, torch
from pathlib import Path
from tests.generation.helpers import provider, run_partition
torch.set_num_threads(1)
project, catalog = Path(sys.argv[1]), Path(sys.argv[2])
run_partition(project, catalog, provider(project), run_id="killed-run")
"""


def run_killed_at(crash_at: str, project: Path, catalog: Path) -> None:
    """Run the partition in a subprocess that SIGKILLs itself at ``crash_at``. One writer thread, so the
    kill leaves exactly the one file this test names (with two, the other thread's PNG may be done too)."""
    env = {**os.environ, CRASH_ENV: crash_at, WRITER_THREADS_ENV: "1"}
    done = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(project), str(catalog)], env=env, cwd=ROOT, timeout=600
    )
    assert done.returncode == -signal.SIGKILL


def folders(project: Path) -> tuple[Path, Path, Path]:
    keys = {"catalog": "demo", "date": DATE}
    data = project / "data"
    return (
        data / "images" / "demo" / DATE,
        partition_path(data, gm.KIND, keys),
        partition_path(data, gm.KIND + "_retired", keys),
    )


def test_a_png_written_just_before_a_kill_is_adopted_and_temp_files_are_swept(project, shared_provider):
    catalog = write_catalog(project, "demo", CATALOG)
    images, manifest, _ = folders(project)
    run_killed_at("before-rename:*.png", project, catalog)  # a temp PNG, complete, never renamed
    assert [p.name.endswith(".tmp") for p in images.iterdir()] == [True]
    run_killed_at("after-rename:*.png", project, catalog)  # one PNG, no manifest row yet
    (orphan,) = images.glob("*.png")
    written = orphan.stat().st_mtime_ns
    assert not list(images.glob("*.tmp")) and not manifest.exists()

    result = run_partition(project, catalog, shared_provider, run_id="run-2")

    assert (result.generated, result.skipped) == (3, 1)  # adopted, not made again
    row = next(r for r in read_rows(manifest) if r["image_id"] == orphan.stem)
    assert row["sha256"] == sha256_file(orphan) and row["dagster_run_id"] is None
    assert orphan.stat().st_mtime_ns == written
    assert sorted(p.name for p in images.iterdir()) == sorted(Path(r["path"]).name for r in result.rows)


def test_a_png_written_just_before_a_kill_then_edited_away_moves_to_the_retired_manifest(
    project, shared_provider
):
    catalog = write_catalog(project, "demo", CATALOG)
    images, manifest, retired = folders(project)
    run_killed_at("after-rename:*.png", project, catalog)
    (orphan,) = images.glob("*.png")
    embedded = read_row(orphan)
    write_catalog(project, "demo", CATALOG.replace("a red circle", "a red triangle"))  # not wanted now

    result = run_partition(project, catalog, shared_provider, run_id="run-2")

    assert orphan.stem not in {r["image_id"] for r in result.rows}
    (row,) = read_rows(retired)
    assert (row["image_id"], row["prompt"], row["seed"]) == (orphan.stem, "a red circle", embedded["seed"])
    assert row["sha256"] == sha256_file(orphan)
    explained = {r["image_id"] for r in read_rows(manifest)} | {row["image_id"]}
    assert {p.stem for p in images.glob("*.png")} == explained
    assert not list((project / "data").rglob("*.tmp"))
