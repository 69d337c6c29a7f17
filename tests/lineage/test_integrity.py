"""A PNG is matched to its record only while it is unchanged; edits are reported, moves are followed."""

from __future__ import annotations

import shutil

import pytest

from diffusion_assets.files import sha256_file
from diffusion_assets.lineage.forward import forward_lineage
from diffusion_assets.lineage.render import render_forward
from diffusion_assets.lineage.store import open_store
from tests.lineage.edits import edit_metadata, edit_pixels, move, strip_metadata


def trace(chain, target) -> dict:
    with open_store(chain.data) as store:
        return forward_lineage(store, str(target))


@pytest.mark.parametrize(
    ("edit", "change", "detail"),
    [
        (edit_pixels, "pixels", "pixels changed"),
        (edit_metadata, "metadata", "metadata-only change: pixels identical"),
        (strip_metadata, "metadata", "metadata-only change: pixels identical"),
    ],
)
def test_an_edited_png_is_reported_as_modified_never_matched(world, edit, change, detail):
    png, row = world.png(0), world.rows[0]
    edit(png)
    doc = trace(world, png)
    assert doc["image"]["image_id"] == row["image_id"]
    assert doc["integrity"]["status"] == "modified"
    assert doc["integrity"]["change"] == change
    expected = (
        f"MODIFIED after generation: sha256 {sha256_file(png)}, manifest says {row['sha256']} ({detail})"
    )
    assert doc["integrity"]["message"] == expected
    assert f"!! {expected}" in render_forward(doc)


def test_an_image_id_audits_the_file_at_its_recorded_path(world):
    edit_pixels(world.png(1))
    assert trace(world, world.rows[1]["image_id"])["integrity"]["change"] == "pixels"
    world.png(1).unlink()
    doc = trace(world, world.rows[1]["image_id"])
    assert doc["integrity"]["status"] == "missing"
    assert doc["image"]["current_path"] is None


def test_a_moved_png_still_resolves_and_both_paths_are_shown(world, tmp_path):
    moved = move(world.png(2), tmp_path / "elsewhere")
    doc = trace(world, moved)
    assert doc["image"]["image_id"] == world.rows[2]["image_id"]
    assert doc["integrity"]["status"] == "ok"
    assert (doc["image"]["moved"], doc["image"]["current_path"]) == (True, str(moved.resolve()))
    assert (
        f"moved: the file is at {moved.resolve()}; the manifest records {world.rows[2]['path']}"
        in doc["notes"]
    )
    assert f"current file  : {moved.resolve()}" in render_forward(doc)


def test_without_manifests_the_png_metadata_is_the_record(world, tmp_path):
    shutil.move(world.data / "manifests", tmp_path / "manifests-elsewhere")
    row = world.rows[0]
    doc = trace(world, world.png(0))
    assert doc["source"] == "png"
    assert doc["notes"][0].startswith("source: PNG metadata only (manifests not found")
    assert (doc["entry"]["entry_id"], doc["seed"]["seed"]) == (row["entry_id"], row["seed"])
    assert doc["model"]["weights_hash"] == row["model_weights_hash"]
    assert doc["scheduler"]["class"] == row["scheduler_class"]
    assert doc["run"]["dagster_run_id"] is None  # a run field: kept out of the PNG on purpose
    assert doc["integrity"]["status"] == "ok" and doc["integrity"]["checked"] == "pixel sha256"
    assert (doc["captions"], doc["datasets"], doc["adapters"], doc["evaluations"]) == ([], [], [], [])
    text = render_forward(doc)
    assert "(source: PNG metadata only;" in text and "dagster run   : (not recorded in the PNG)" in text


def test_an_image_missing_from_existing_manifests_falls_back_to_its_png(world, tmp_path):
    shutil.rmtree(world.data / "manifests" / "generation")
    doc = trace(world, world.png(0))
    assert doc["source"] == "png"
    assert "is not in the generation manifests" in doc["notes"][0]
    # the rest of the chain is still joined from the manifests that exist
    assert [d["dataset_version"] for d in doc["datasets"]] == [world.version]


def test_with_png_metadata_only_edited_pixels_are_still_caught(world, tmp_path):
    shutil.move(world.data / "manifests", tmp_path / "manifests-elsewhere")
    edit_pixels(world.png(0))
    doc = trace(world, world.png(0))
    assert (doc["integrity"]["status"], doc["integrity"]["change"]) == ("modified", "pixels")
    assert doc["integrity"]["message"].startswith("MODIFIED after generation: pixel sha256")
