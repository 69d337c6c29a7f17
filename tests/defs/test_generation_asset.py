"""The Dagster layer: the asset materializes on a test instance, its checks run, the UI gets metadata."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._serdes import serialize_value
from PIL import Image

from diffusion_assets.defs.generation import generated_images
from diffusion_assets.defs.partitions import CATALOG_PARTITIONS_NAME, generation_key, generation_partitions
from diffusion_assets.defs.resources import GpuResource, ProjectResource
from tests.conftest import write_catalog

DATE = "2026-11-28"
CATALOG = """
seed: 4
defaults: {model: sd15, steps: 2, width: 32, height: 32, images_per_prompt: 3}
entries:
  - id: a
    prompt: "a red circle"
"""
ROOT = Path(__file__).resolve().parents[2]


def resources(project: Path) -> dict:
    return {"gpu": GpuResource(device="cpu", batch_size=2), "project": ProjectResource()}


def materialize(project: Path, instance, catalog: str = "demo", **kw):
    instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, [catalog])
    return dg.materialize(
        [generated_images],
        instance=instance,
        partition_key=str(generation_key(catalog, DATE)),
        resources=resources(project),
        **kw,
    )


def test_definitions_load():
    from diffusion_assets.definitions import defs

    with dg.instance_for_test():  # loading reads the current instance's state storage
        assert defs.resolve_job_def("generate_catalog") is not None
    assert {s.name for s in defs.sensors} == {
        "catalog_sensor",
        "dataset_spec_sensor",
        "automation_condition_sensor",
        "gpu_pool_sensor",
    }
    assert {s.name for s in defs.schedules} == {"nightly_generation"}


def test_materialize_writes_images_manifest_and_passes_checks(project):
    write_catalog(project, "demo", CATALOG)
    with dg.instance_for_test() as instance:
        result = materialize(project, instance)
        assert result.success
        (event,) = result.get_asset_materialization_events()
        meta = event.materialization.metadata
        assert meta["rows"].value == 3 and meta["generated"].value == 3
        assert meta["models_loaded"].value == 1
        assert meta["thumbnails"].value.startswith("![thumbnails](data:image/png;base64,")
        grid = Path(meta["thumbnail_grid"].value)
        assert grid == project / "data" / "previews" / "generation" / "demo" / f"{DATE}.png"
        with Image.open(grid) as image:  # the whole partition, 3 cells of 64 px
            assert image.size == (3 * 64, 64)
        assert Path(meta["manifest"].value).is_file()
        checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
        assert checks == {"manifest_schema": True, "files_match_manifest": True, "reproducible": True}
        assert event.materialization.tags["dagster/data_version"]
        progress = [e.user_message for e in instance.all_logs(result.run_id) if "written" in e.user_message]
        assert progress == ["demo 2026-11-28: batch 1/2 written", "demo 2026-11-28: batch 2/2 written"]


# 16 images of long, different prompts: the old inline grid of 16 thumbnails alone took ~13 KB
LARGE_CATALOG = """
seed: 9
defaults: {model: sd15, steps: 2, width: 32, height: 32, images_per_prompt: 4}
entries:
""" + "".join(
    f'  - id: e{i}\n    prompt: "{colour} shape number {i}, {"with a long tail, " * 3}end"\n'
    for i, colour in enumerate(["red", "green", "blue", "yellow"])
)
METADATA_BUDGET_BYTES = 10 * 1024


def test_a_materialization_stores_at_most_10_kb_of_metadata_in_the_event_log(project):
    """Issue 9 item 5: measured on what the SQLite event log stores, not on the Python objects."""
    write_catalog(project, "demo", LARGE_CATALOG)
    with dg.instance_for_test() as instance:
        assert materialize(project, instance).success
        (record,) = instance.fetch_materializations(dg.AssetKey("generated_images"), limit=10).records
        metadata = record.asset_materialization.metadata
        stored = len(serialize_value(metadata).encode())
        assert metadata["rows"].value == 16
        assert stored <= METADATA_BUDGET_BYTES, {k: len(serialize_value(v)) for k, v in metadata.items()}
        assert Path(metadata["thumbnail_grid"].value).is_file()


def test_rematerializing_a_partition_is_idempotent(project):
    write_catalog(project, "demo", CATALOG)
    with dg.instance_for_test() as instance:
        first = materialize(project, instance).get_asset_materialization_events()[0].materialization
        second = materialize(project, instance).get_asset_materialization_events()[0].materialization
    assert second.metadata["generated"].value == 0 and second.metadata["skipped_existing"].value == 3
    assert first.tags["dagster/data_version"] == second.tags["dagster/data_version"]


def test_invalid_catalog_fails_the_run_with_the_catalog_error(project):
    write_catalog(project, "demo", CATALOG.replace("steps: 2", "steps: -2"))
    with dg.instance_for_test() as instance:
        result = materialize(project, instance, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "demo.yaml, defaults, field 'steps'" in failure.cause.message
    assert not (project / "data").exists()


def test_shipped_instance_config_limits_the_gpu_pool_and_frees_slots():
    config = yaml.safe_load((ROOT / ".dagster_home" / "dagster.yaml").read_text())
    with dg.instance_for_test(overrides=config) as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
    assert generated_images.op.pool == "gpu"


@pytest.mark.parametrize("device", ["cpu"])
def test_gpu_resource_builds_a_provider_for_the_requested_device(project, device):
    provider = GpuResource(device=device, batch_size=3).provider(ProjectResource())
    assert (provider.device, provider.batch_size) == (device, 3)


DATES = ["2026-11-26", "2026-11-27", "2026-11-28"]


def test_a_date_range_runs_as_one_run_that_loads_the_model_once(project):
    """Dagster's backfill policy: a backfill of 3 dates of one catalog becomes one run (range tags,
    as the backfill daemon launches it); each partition gets its own materialization, metadata and
    check results, and the model loads once for the whole run."""
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from diffusion_assets.defs.generation import PARTITIONS_PER_RUN

    write_catalog(project, "demo", CATALOG)
    keys = [str(generation_key("demo", date)) for date in DATES]
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, ["demo"])
        policy = generated_images.backfill_policy
        assert policy is not None and policy.max_partitions_per_run == PARTITIONS_PER_RUN >= len(DATES)
        job = dg.Definitions(
            assets=[generated_images],
            jobs=[dg.define_asset_job("range", [generated_images])],
            resources=resources(project),
        ).resolve_job_def("range")
        result = job.execute_in_process(
            instance=instance,
            tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]},
        )
        assert result.success
        events = {e.partition: e.materialization.metadata for e in result.get_asset_materialization_events()}
        assert sorted(events) == keys
        for key, meta in events.items():
            date = generation_partitions.get_partition_key_from_str(key).keys_by_dimension["date"]
            assert meta["rows"].value == 3 and meta["generated"].value == 3
            assert Path(meta["manifest"].value).parent.name == f"date={date}"  # its own partition's manifest
        # one model load for the whole run: the last partition's metadata says 1 load in total
        assert {meta["models_loaded"].value for meta in events.values()} == {1}
        # every partition has its own result for each of the three checks
        evaluations = sorted(
            (c.partition, c.check_name, c.passed) for c in result.get_asset_check_evaluations()
        )
        assert evaluations == sorted(
            (key, name, True)
            for key in keys
            for name in ("manifest_schema", "files_match_manifest", "reproducible")
        )
        # the instance shows each partition's own check status, as the UI reads it
        check_key = dg.AssetCheckKey(dg.AssetKey("generated_images"), "reproducible")
        records = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=10)
        assert len(records) == len(keys)
