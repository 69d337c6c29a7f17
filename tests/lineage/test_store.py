"""The relations lineage reads: missing manifests are empty, Hive keys are text, the index stays fresh."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime

import pytest

from diffusion_assets.lineage import query as q
from diffusion_assets.lineage.forward import forward_lineage
from diffusion_assets.lineage.store import build_index, index_path, index_state, open_store
from diffusion_assets.manifests import adapters as am
from diffusion_assets.manifests import datasets as dm
from diffusion_assets.manifests.io import partition_path, write_table
from tests.lineage.conftest import DATASET, adapter_row

TABLES = ("images", "members", "adapters", "evaluations")


def counts(store) -> dict[str, int]:
    return {t: store.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in TABLES}


@pytest.mark.parametrize("use_index", [False, True])
def test_no_manifests_at_all_means_empty_relations(tmp_path, use_index):
    if use_index:
        build_index(tmp_path)
    with open_store(tmp_path, use_index=use_index) as store:
        assert counts(store) == dict.fromkeys(TABLES, 0)
        assert q.find_images(store, image_id="x") == []
        assert q.evaluation_reports(store, []) == []


def test_missing_kinds_leave_their_sections_empty(world):
    for kind in ("adapters", "evaluations"):
        shutil.rmtree(world.data / "manifests" / kind)
    with open_store(world.data) as store:
        doc = forward_lineage(store, world.rows[0]["image_id"])
    assert len(doc["datasets"]) == 1
    assert (doc["adapters"], doc["evaluations"]) == ([], [])


@pytest.mark.parametrize("use_index", [False, True])
def test_hive_keys_read_as_text_even_when_they_look_like_dates_or_numbers(world, use_index):
    rows = [
        {
            "image_id": world.rows[0]["image_id"],
            "catalog": "digits",
            "date": "2026-11-28",
            "split": "train",
            "caption": "c",
            "file_name": "train/x.png",
            "source_path": world.rows[0]["path"],
            "source_sha256": world.rows[0]["sha256"],
            "spec_file": "s.yaml",
            "spec_sha256": "0" * 64,
            "dagster_run_id": None,
            "created_at": datetime.now(UTC),
        }
    ]
    write_table(
        partition_path(world.data, dm.KIND, {"dataset": "digits", "dataset_version": "0123456789012345"}),
        rows,
        dm.SCHEMA,
    )
    if use_index:
        build_index(world.data)
    with open_store(world.data, use_index=use_index) as store:
        (hit,) = q.find_images(store, image_id=world.rows[0]["image_id"])
        versions = {
            m["dataset"]: m["dataset_version"] for m in q.memberships(store, world.rows[0]["image_id"])
        }
    assert hit["date"] == "2026-11-28"
    assert versions["digits"] == "0123456789012345"


def test_the_index_is_used_once_built_and_rebuilt_when_a_manifest_changes(world):
    assert index_state(world.data) == "none"
    with open_store(world.data) as store:
        assert store.mode == "scan"
    build_index(world.data)
    assert index_state(world.data) == "fresh"
    with open_store(world.data) as store:
        assert (store.mode, counts(store)["adapters"]) == ("index", 2)
    # a third adapter: the manifest's signature changes, the next query refreshes the index first
    path = partition_path(world.data, am.KIND, {"dataset": DATASET})
    rows = [adapter_row("a1", world.version), adapter_row("a2", "v"), adapter_row("a3", world.version)]
    write_table(path, rows, am.SCHEMA)
    assert index_state(world.data) == "stale"
    with open_store(world.data) as store:
        assert store.mode == "index"
        assert store.notes == [
            f"refreshed {index_path(world.data)}: the manifests changed since it was built"
        ]
        assert counts(store)["adapters"] == 3
    assert index_state(world.data) == "fresh"


def test_a_deleted_manifest_makes_the_index_stale(world):
    build_index(world.data)
    shutil.rmtree(world.data / "manifests" / "evaluations")
    assert index_state(world.data) == "stale"


def test_a_corrupt_index_counts_as_stale_and_is_rebuilt(world):
    build_index(world.data)
    index_path(world.data).write_bytes(b"not a database")
    assert index_state(world.data) == "stale"
    with open_store(world.data) as store:
        assert counts(store)["images"] == 4
    assert not [p for p in os.listdir(world.data) if p.endswith(".tmp")]


def test_a_stale_index_that_cannot_be_rebuilt_is_bypassed_not_used(world, monkeypatch):
    build_index(world.data)
    shutil.rmtree(world.data / "manifests" / "evaluations")

    def read_only(_):
        raise PermissionError("read-only file system")

    monkeypatch.setattr("diffusion_assets.lineage.store.build_index", read_only)
    heard = []
    with open_store(world.data, progress=heard.append) as store:
        assert (store.mode, counts(store)["evaluations"]) == ("scan", 0)
        assert "cannot rebuild it: read-only file system" in store.notes[0]
    assert heard[0].startswith("refreshing ")
