"""A partition run: resumable, idempotent, reproducible, and indexed in its manifest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest
from PIL import Image

from diffusion_assets.catalog.load import CatalogError
from diffusion_assets.files import BusyError, sha256_file
from diffusion_assets.generation.partition import RunInfo, complete_batches, verify_batch
from diffusion_assets.generation.pngmeta import read_row
from diffusion_assets.generation.run import generate_batch, plan_batches
from diffusion_assets.manifests import generation as gm
from diffusion_assets.manifests.io import glob, lock_path, read_table, schema_problems
from diffusion_assets.models.loading import LoadOptions
from diffusion_assets.models.provider import ModelProvider
from tests.conftest import write_catalog
from tests.generation.helpers import provider, run_partition

CATALOG = """
seed: 3
variables: {colour: [red, blue, green]}
defaults: {model: sd15, steps: 3, width: 32, height: 32, images_per_prompt: 2}
entries:
  - id: shape
    prompt: "a {colour} circle"
  - id: other
    prompt: "a square"
    scheduler: euler_a
"""


@pytest.fixture
def catalog(project) -> Path:
    return write_catalog(project, "demo", CATALOG)


def _files(project: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((project / "data" / "images").rglob("*.png"))}


def test_partition_writes_one_row_and_png_per_image(project, catalog, shared_provider):
    result = run_partition(project, catalog, shared_provider)
    assert (result.generated, result.skipped) == (8, 0)
    table = read_table(result.manifest_path)
    assert schema_problems(table, gm.SCHEMA, gm.KEY) == []
    assert table.num_rows == 8
    for row in result.rows:
        assert sha256_file(project / "data" / row["path"]) == row["sha256"]
        # issue 10 item 7: no absolute path in what is recorded and embedded, so clones agree
        assert row["catalog_file"] == "prompts/demo.yaml"
        assert read_row(project / "data" / row["path"])["catalog_file"] == "prompts/demo.yaml"
        assert json.loads(row["load_options"]) == {
            "attention_slicing": False,
            "vae_slicing": False,
            "vae_tiling": False,
            "cpu_offload": "none",
            "compile": False,
        }


def test_pipeline_is_loaded_once_per_partition(project, catalog):
    prov = provider(project)
    run_partition(project, catalog, prov)
    assert prov.loads == 1


def test_rematerializing_skips_existing_images_and_never_duplicates_rows(project, catalog, shared_provider):
    first = run_partition(project, catalog, shared_provider)
    before = _files(project)
    again = run_partition(project, catalog, shared_provider, run_id="run-2")
    assert (again.generated, again.skipped) == (0, 8)
    assert _files(project) == before
    assert [r["image_id"] for r in again.rows] == [r["image_id"] for r in first.rows]
    assert {r["dagster_run_id"] for r in again.rows} == {"run-1"}


def test_regenerated_images_are_byte_identical(project, catalog, shared_provider):
    run_partition(project, catalog, shared_provider)
    before = _files(project)
    for png in (project / "data" / "images").rglob("*.png"):
        png.unlink()
    again = run_partition(project, catalog, shared_provider, run_id="run-2")
    assert again.generated == 8
    assert _files(project) == before


@pytest.mark.parametrize("repair_batch_size", [3, 1])
def test_a_repair_at_another_batch_size_follows_the_recorded_batch_layout(
    project, catalog, repair_batch_size
):
    """Issue 10 item 7: after an out-of-memory run a user retries with a smaller batch_size; the
    repaired image is made with its recorded batch-mates, so its PNG is byte-equal to the first one
    and no batch_id mixes two layouts."""
    first = run_partition(project, catalog, provider(project, batch_size=4))
    victims = [first.rows[1], first.rows[6]]  # one from each batch-signature group
    originals = {r["path"]: (project / "data" / r["path"]).read_bytes() for r in victims}
    for row in victims:
        (project / "data" / row["path"]).unlink()
    again = run_partition(project, catalog, provider(project, batch_size=repair_batch_size), run_id="run-2")
    assert (again.generated, again.skipped) == (len(victims), 8 - len(victims))
    for path, data in originals.items():
        assert (project / "data" / path).read_bytes() == data
    layout = {(r["image_id"], r["batch_id"], r["batch_index"], r["batch_size"]) for r in again.rows}
    assert layout == {(r["image_id"], r["batch_id"], r["batch_index"], r["batch_size"]) for r in first.rows}


def test_interrupted_run_resumes_without_losing_or_duplicating(project, catalog, shared_provider):
    def crash_after_first_batch(done, total):
        raise KeyboardInterrupt("simulated crash")

    with pytest.raises(KeyboardInterrupt):
        run_partition(project, catalog, shared_provider, on_batch=crash_after_first_batch)
    partial = read_table(project / "data/manifests/generation/catalog=demo/date=2026-11-28/part-0.parquet")
    assert partial.num_rows == 4  # the first batch was indexed before the crash, the second not
    resumed = run_partition(project, catalog, shared_provider, run_id="run-2")
    # the second batch's PNGs were being written on the writer pool when the crash came: those that
    # were complete are adopted from their embedded rows, the rest are generated again
    assert resumed.generated + resumed.skipped == 8 and resumed.generated <= 4
    ids = [r["image_id"] for r in resumed.rows]
    assert len(ids) == len(set(ids)) == 8
    assert all(sha256_file(project / "data" / r["path"]) == r["sha256"] for r in resumed.rows)
    assert not list((project / "data").rglob("*.tmp"))


def test_edited_image_is_regenerated(project, catalog, shared_provider):
    first = run_partition(project, catalog, shared_provider)
    victim = project / "data" / first.rows[0]["path"]
    original = victim.read_bytes()
    Image.new("RGB", (32, 32)).save(victim)
    again = run_partition(project, catalog, shared_provider, run_id="run-2")
    assert (again.generated, again.skipped) == (1, 7)
    assert victim.read_bytes() == original


def test_catalog_edit_retires_removed_rows(project, catalog, shared_provider):
    run_partition(project, catalog, shared_provider)
    write_catalog(project, "demo", CATALOG.replace("red, blue, green", "red, blue"))
    result = run_partition(project, catalog, shared_provider, run_id="run-2")
    assert (len(result.rows), result.retired) == (6, 2)
    retired = read_table(
        project / "data/manifests/generation_retired/catalog=demo/date=2026-11-28/part-0.parquet"
    )
    assert {r["prompt"] for r in retired.to_pylist()} == {"a green circle"}


def test_undoing_an_edit_restores_the_retired_rows_without_regenerating(project, catalog, shared_provider):
    first = run_partition(project, catalog, shared_provider)
    write_catalog(project, "demo", CATALOG.replace("red, blue, green", "red, blue"))
    run_partition(project, catalog, shared_provider, run_id="run-2")
    write_catalog(project, "demo", CATALOG)
    again = run_partition(project, catalog, shared_provider, run_id="run-3")
    assert (again.generated, again.retired) == (0, 0)
    assert again.rows == first.rows  # the original rows, run ids included
    retired = read_table(
        project / "data/manifests/generation_retired/catalog=demo/date=2026-11-28/part-0.parquet"
    )
    assert retired.num_rows == 0  # in exactly one of the two manifests


def test_only_whole_batches_are_reverified_after_an_edit(project, catalog, shared_provider):
    run_partition(project, catalog, shared_provider)
    write_catalog(project, "demo", CATALOG.replace("red, blue, green", "red, green"))
    result = run_partition(project, catalog, shared_provider, run_id="run-2")
    red = {r["batch_id"] for r in result.rows if "colour=red" in r["entry_id"]}  # batch-mates were blue
    whole = complete_batches(result.rows)
    assert red and red.isdisjoint(whole)
    assert len(whole) == 2  # green's batch and the square's
    run = RunInfo("run-3", "demo|2026-11-28", "test")
    for batch_id in whole:
        verified = verify_batch(shared_provider, result, batch_id, run, project / "data")
        assert all(v.same_pixels and v.same_bytes for v in verified), verified


def test_the_reproducible_check_compares_file_bytes_and_names_what_differs(project, catalog):
    """Pixels alone are not "byte-identical": regenerated with other
    load options (VAE slicing, recorded in ``load_options``), the check names that field."""
    result = run_partition(project, catalog, provider(project))
    (batch_id, *_) = complete_batches(result.rows)
    sliced = ModelProvider(
        LoadOptions(device="cpu", vae_slicing=True),
        models_dir=Path(os.environ["DIFFUSION_ASSETS_MODELS"]),
        project_root=project,
        batch_size=4,
    )
    run = RunInfo("run-2", "demo|2026-11-28", "test")
    verified = verify_batch(sliced, result, batch_id, run, project / "data")
    assert not any(v.same_bytes for v in verified)
    assert all("load_options" in v.fields for v in verified), verified
    # VAE slicing may move a pixel (then ``pixel_sha256`` is named too); where it does not, the
    # load options are the only difference
    same = [v for v in verified if v.same_pixels]
    assert same and {v.fields for v in same} == {("load_options",)}


def test_a_partition_another_process_is_writing_is_refused_untouched(project, catalog, shared_provider):
    first = run_partition(project, catalog, shared_provider)
    manifest = first.manifest_path.read_bytes()
    (project / "data" / first.rows[0]["path"]).unlink()  # work the second run would do
    holder = subprocess.Popen(  # another process holds the partition's lock
        [
            sys.executable,
            "-c",
            HOLD_LOCK,
            str(lock_path(project / "data", gm.KIND, {"catalog": "demo", "date": "2026-11-28"})),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline() == b"locked\n"
        with pytest.raises(
            BusyError, match=r"partition demo\|2026-11-28 is being written by another process"
        ):
            run_partition(project, catalog, shared_provider, run_id="run-2")
        assert first.manifest_path.read_bytes() == manifest
    finally:
        holder.kill()
        holder.wait()
    assert run_partition(project, catalog, shared_provider, run_id="run-3").generated == 1  # free again


HOLD_LOCK = """
import fcntl, sys, time
handle = open(sys.argv[1], "a+")
fcntl.flock(handle, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""


def test_invalid_catalog_writes_nothing(project, shared_provider):
    bad = write_catalog(project, "bad", "defaults: {model: sd15}\nentries: [{id: a, prompt: x, steps: 0}]")
    with pytest.raises(CatalogError):
        run_partition(project, bad, shared_provider)
    assert not (project / "data").exists()


def test_manifest_is_queryable_with_duckdb_across_partitions(project, catalog, shared_provider):
    run_partition(project, catalog, shared_provider)
    rows = duckdb.sql(
        f"select catalog, cast(date as varchar) d, count(*) n, count(distinct seed) seeds "
        f"from read_parquet('{glob(project / 'data', 'generation')}', hive_partitioning=true) group by all"
    ).fetchall()
    assert rows == [("demo", "2026-11-28", 8, 8)]


def _jobs(project, catalog):
    from diffusion_assets.catalog.expand import expand_catalog
    from diffusion_assets.catalog.load import load_catalog

    return [j for j in expand_catalog(load_catalog(catalog), "2026-11-28") if j.base_entry_id == "shape"]


def test_a_seed_gives_the_same_image_at_any_batch_position(project, catalog, shared_provider):
    jobs = _jobs(project, catalog)[:4]
    model = shared_provider.load(jobs[0].params.preset)
    forward = generate_batch(model, jobs).images
    backward = generate_batch(model, jobs[::-1]).images[::-1]
    for a, b in zip(forward, backward, strict=True):
        assert a.tobytes() == b.tobytes()


def test_a_seed_drifts_at_most_one_level_across_batch_sizes(project, catalog, shared_provider):
    jobs = _jobs(project, catalog)[:4]
    model = shared_provider.load(jobs[0].params.preset)
    batched = generate_batch(model, jobs).images
    single = [generate_batch(model, [job]).images[0] for job in jobs]
    for a, b in zip(batched, single, strict=True):
        diff = np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int))
        assert diff.max() <= 1


def test_batches_group_only_identical_call_parameters(project, catalog):
    jobs = _jobs(project, catalog) + [j for j in _jobs(project, catalog)]
    other = write_catalog(project, "mixed", CATALOG)
    from diffusion_assets.catalog.expand import expand_catalog
    from diffusion_assets.catalog.load import load_catalog

    all_jobs = expand_catalog(load_catalog(other), "2026-11-28")
    batches = plan_batches(all_jobs, 4)
    assert [len(b) for b in batches] == [4, 2, 2]
    assert all(len({j.params.scheduler for j in b}) == 1 for b in batches)
    assert jobs  # the helper expands the shape entry
