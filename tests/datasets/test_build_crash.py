"""A dataset build killed between its folder rename and its membership manifest (a real process,
SIGKILLed there by the ``DIFFUSION_ASSETS_CRASH_AT`` hook): the next build adopts the folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from diffusion_assets.cli import main
from diffusion_assets.datasets.build import MEMBERS_FILE, build_dataset, dataset_folder
from diffusion_assets.files import CRASH_ENV
from diffusion_assets.manifests import datasets as dm
from diffusion_assets.manifests.io import partition_path, read_rows, read_table
from tests.datasets.helpers import pattern, write_captions, write_partition, write_spec

ROOT = Path(__file__).resolve().parents[2]
KILLED_BUILD = """
import sys
from diffusion_assets.datasets.build import build_dataset
build_dataset(sys.argv[1], sys.argv[2], run_id="killed-build")
"""


def build_killed_at(crash_at: str, spec: Path, data_root: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", KILLED_BUILD, str(spec), str(data_root)],
        env={**os.environ, CRASH_ENV: crash_at},
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == -signal.SIGKILL


def versions(data_root: Path) -> list[str]:
    root = dataset_folder(data_root, "style")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_a_version_folder_renamed_just_before_a_kill_is_adopted_by_the_next_build(tmp_path):
    data_root = tmp_path / "data"
    images = [(f"img{i}", f"prompt {i}", pattern(i)) for i in range(6)]
    write_partition(data_root, images)
    write_captions(data_root, {image_id: f"a pattern {image_id}" for image_id, _, _ in images})
    spec = write_spec(tmp_path)
    folder_glob = f"{dataset_folder(data_root, 'style')}/[0-9a-f]*"
    build_killed_at(f"before-rename:{folder_glob}", spec, data_root)  # a complete temp folder
    assert [p.name.endswith(".tmp") for p in dataset_folder(data_root, "style").iterdir()] == [True]
    build_killed_at(f"after-rename:{folder_glob}", spec, data_root)  # the folder, no manifest
    (crashed,) = versions(data_root)
    manifest = partition_path(data_root, dm.KIND, {"dataset": "style", "dataset_version": crashed})
    assert not manifest.exists()

    # the spec changes before the next build: it makes another version, and adopts the crashed one
    result = build_dataset(write_spec(tmp_path, trigger={"word": "zwx", "placement": "suffix"}), data_root)

    assert result.version != crashed and versions(data_root) == sorted([crashed, result.version])
    rows = read_rows(manifest)
    assert rows == read_rows(dataset_folder(data_root, "style", crashed) / MEMBERS_FILE)
    assert {r["dagster_run_id"] for r in rows} == {"killed-build"} and len(rows) == 6
    assert not [p for p in dataset_folder(data_root, "style").iterdir() if p.name.endswith(".tmp")]
    assert main(["lineage", "--dataset", f"style@{crashed}", "--data", str(data_root), "--json"]) == 0


def test_a_version_built_before_rows_had_their_partition_is_adopted_with_it(tmp_path):
    """A version of the older layout (hive key ``version``, rows without ``catalog`` and ``date``)
    is re-indexed under ``dataset_version`` with both read from ``source_path``; the old partition goes."""
    from diffusion_assets.datasets.build import _with_partition, recover_builds

    old = {"image_id": "x", "source_path": "images/shapes_outline/2026-11-28/x.png"}
    assert _with_partition(old) == {**old, "catalog": "shapes_outline", "date": "2026-11-28"}
    data_root = tmp_path / "data"
    folder = data_root / "datasets" / "style" / "0123456789abcdef"
    folder.mkdir(parents=True)
    row = {
        **old,
        "split": "train",
        "caption": "c",
        "file_name": "train/x.png",
        "source_sha256": "0" * 64,
        "spec_file": "lora_datasets/style.yaml",
        "spec_sha256": "1" * 64,
        "dagster_run_id": None,
        "created_at": datetime.now(UTC),
    }
    pq.write_table(pa.Table.from_pylist([row]), folder / MEMBERS_FILE)
    stale = (
        data_root / "manifests" / dm.KIND / "dataset=style" / "version=0123456789abcdef" / "part-0.parquet"
    )
    stale.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([row]), stale)
    assert recover_builds(data_root, "style") == ["0123456789abcdef"]
    manifest = partition_path(data_root, dm.KIND, {"dataset": "style", "dataset_version": "0123456789abcdef"})
    (adopted,) = read_table(manifest).to_pylist()
    assert (adopted["catalog"], adopted["date"]) == ("shapes_outline", "2026-11-28")
    assert not stale.parent.exists()
