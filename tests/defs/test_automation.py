"""Sensor and schedule policies, evaluated with Dagster's build_*_context helpers."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg

from diffusion_assets.defs import automation
from diffusion_assets.defs.automation import catalog_sensor, nightly_generation
from diffusion_assets.defs.partitions import CATALOG_PARTITIONS_NAME
from diffusion_assets.defs.resources import ProjectResource
from tests.conftest import write_catalog

VALID = "defaults: {model: sd15}\nentries: [{id: a, prompt: x}]\n"


def _tick(instance, cursor=None):
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"project": ProjectResource()}
    ) as context:  # its exit closes what the context opened (a logger, an instance from the ref)
        return catalog_sensor(context)


def test_sensor_adds_new_catalogs_and_requests_a_run(project):
    write_catalog(project, "animals", VALID)
    with dg.instance_for_test() as instance:
        result = _tick(instance)
    (add,) = result.dynamic_partitions_requests
    assert (add.partitions_def_name, list(add.partition_keys)) == (CATALOG_PARTITIONS_NAME, ["animals"])
    (request,) = result.run_requests
    assert request.partition_key.startswith("animals|")
    assert request.run_key.startswith(f"{request.partition_key}:")


def test_sensor_requests_again_only_when_the_content_changes(project):
    path = write_catalog(project, "animals", VALID)
    with dg.instance_for_test() as instance:
        first = _tick(instance)
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, ["animals"])
        unchanged = _tick(instance, first.cursor)
        path.write_text(VALID.replace("prompt: x", "prompt: y"))
        changed = _tick(instance, unchanged.cursor)
    assert unchanged.run_requests == [] and unchanged.dynamic_partitions_requests == []
    assert len(changed.run_requests) == 1 and changed.dynamic_partitions_requests == []
    assert changed.run_requests[0].run_key != first.run_requests[0].run_key


def test_sensor_requests_a_run_when_an_edit_is_reverted(project):
    # run keys are deduplicated forever, so A→B→A must not reuse A's key
    path = write_catalog(project, "animals", VALID)
    with dg.instance_for_test() as instance:
        first = _tick(instance)
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, ["animals"])
        path.write_text(VALID.replace("prompt: x", "prompt: y"))
        second = _tick(instance, first.cursor)
        path.write_text(VALID)
        third = _tick(instance, second.cursor)
    keys = [r.run_key for tick in (first, second, third) for r in tick.run_requests]
    assert len(keys) == 3 and len(set(keys)) == 3
    assert third.run_requests[0].tags == first.run_requests[0].tags  # the same content hash


def test_sensor_requests_nothing_when_nothing_changed(project):
    write_catalog(project, "animals", VALID)
    with dg.instance_for_test() as instance:
        first = _tick(instance)
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, ["animals"])
        again = _tick(instance, first.cursor)
        once_more = _tick(instance, again.cursor)
    for tick in (again, once_more):
        assert tick.run_requests == [] and tick.asset_events == []
        assert tick.cursor == first.cursor


def test_sensor_reevaluating_a_tick_gives_the_same_requests(project):
    write_catalog(project, "animals", VALID)
    with dg.instance_for_test() as instance:
        first = _tick(instance)
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, ["animals"])
        (project / "prompts" / "animals.yaml").write_text(VALID.replace("prompt: x", "prompt: y"))
        ticks = [_tick(instance, first.cursor) for _ in range(2)]
    assert [r.run_key for r in ticks[0].run_requests] == [r.run_key for r in ticks[1].run_requests]
    assert ticks[0].cursor == ticks[1].cursor


def test_sensor_requests_the_same_content_again_on_a_later_day(project, monkeypatch):
    # a reset cursor sees the catalog as new; a later day's partition still gets its run
    write_catalog(project, "animals", VALID)
    with dg.instance_for_test() as instance:
        monkeypatch.setattr(automation, "_today", lambda: "2026-11-28")
        (first,) = _tick(instance).run_requests
        monkeypatch.setattr(automation, "_today", lambda: "2026-11-29")
        (later,) = _tick(instance).run_requests
    assert (first.partition_key, later.partition_key) == ("animals|2026-11-28", "animals|2026-11-29")
    assert first.run_key != later.run_key


def test_sensor_reads_a_cursor_of_bare_hashes(project):
    # the cursor format before change numbers: {name: sha256}
    write_catalog(project, "animals", VALID)
    with dg.instance_for_test() as instance:
        first = _tick(instance)
        digest = json.loads(first.cursor)["animals"]["sha256"]
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, ["animals"])
        unchanged = _tick(instance, json.dumps({"animals": digest}))
        (project / "prompts" / "animals.yaml").write_text(VALID.replace("prompt: x", "prompt: y"))
        changed = _tick(instance, json.dumps({"animals": digest}))
    assert unchanged.run_requests == []
    assert len(changed.run_requests) == 1


def _raise_for(name, exc, real):
    def load(path):
        if path.stem == name:
            raise exc
        return real(path)

    return load


def test_sensor_carries_on_when_a_catalog_raises_anything(project, monkeypatch):
    write_catalog(project, "broken_model", VALID)
    write_catalog(project, "fine", VALID)
    monkeypatch.setattr(
        automation,
        "load_catalog",
        _raise_for("broken_model", KeyError("model_index"), automation.load_catalog),
    )
    with dg.instance_for_test() as instance:
        result = _tick(instance)
    assert [r.partition_key.keys_by_dimension["catalog"] for r in result.run_requests] == ["fine"]
    assert list(result.dynamic_partitions_requests[0].partition_keys) == ["fine"]


def test_sensor_skips_invalid_catalogs_and_never_deletes(project):
    write_catalog(project, "broken", "entries: [{id: a}]")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, ["removed_long_ago"])
        result = _tick(instance)
        assert instance.has_dynamic_partition(CATALOG_PARTITIONS_NAME, "removed_long_ago")
    assert result.run_requests == []
    assert all(type(r).__name__ == "AddDynamicPartitionsRequest" for r in result.dynamic_partitions_requests)
    assert "broken" in result.skip_reason.skip_message


def _schedule(instance, when):
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when, resources={"project": ProjectResource()}
    ) as context:  # left open, its instance (made from the ref) resets Dagster's state storage when GC'd
        return nightly_generation(context)


def test_schedule_runs_registered_catalogs_that_declare_daily(project):
    write_catalog(project, "nightly", "schedule: daily\n" + VALID)
    write_catalog(project, "adhoc", VALID)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, ["nightly", "adhoc"])
        requests = _schedule(instance, datetime(2026, 11, 29, 2, 0, tzinfo=UTC))
    assert [(r.partition_key, r.run_key) for r in requests] == [("nightly|2026-11-29", "nightly|2026-11-29")]


def test_schedule_carries_on_when_a_catalog_raises_anything(project, monkeypatch):
    write_catalog(project, "broken_model", "schedule: daily\n" + VALID)
    write_catalog(project, "nightly", "schedule: daily\n" + VALID)
    monkeypatch.setattr(
        automation,
        "load_catalog",
        _raise_for("broken_model", ValueError("bad config"), automation.load_catalog),
    )
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, ["broken_model", "nightly"])
        requests = _schedule(instance, datetime(2026, 11, 29, 2, 0, tzinfo=UTC))
    assert [r.partition_key for r in requests] == ["nightly|2026-11-29"]


def test_schedule_skips_when_no_catalog_is_scheduled(project):
    write_catalog(project, "adhoc", VALID)
    with dg.instance_for_test() as instance:
        result = _schedule(instance, datetime(2026, 11, 29, 2, 0, tzinfo=UTC))
    assert isinstance(result, dg.SkipReason)


def test_dataset_sensor_adds_specs_and_rebuilds_on_change(project, monkeypatch):
    from diffusion_assets.defs.automation import dataset_spec_sensor
    from diffusion_assets.defs.partitions import LORA_DATASET_PARTITIONS_NAME

    specs = project / "lora_datasets"
    specs.mkdir()
    monkeypatch.setenv("DIFFUSION_ASSETS_DATASETS", str(specs))
    write_catalog(project, "c", VALID)  # a spec's source catalog must exist
    spec = specs / "style.yaml"
    spec.write_text("sources: [{catalog: c, dates: all}]\ncaptions: {source: prompt}\nresolution: 32\n")
    (specs / "broken.yaml").write_text("sources: []\nresolution: 30\n")

    def tick(instance, cursor=None):
        with dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"project": ProjectResource()}
        ) as context:
            return dataset_spec_sensor(context)

    with dg.instance_for_test() as instance:
        first = tick(instance)
        instance.add_dynamic_partitions(LORA_DATASET_PARTITIONS_NAME, ["style"])
        spec.write_text(spec.read_text().replace("32", "64"))
        second = tick(instance, first.cursor)
    assert list(first.dynamic_partitions_requests[0].partition_keys) == ["style"]
    assert [r.partition_key for r in first.run_requests] == ["style"]
    assert [r.partition_key for r in second.run_requests] == ["style"]
    assert second.run_requests[0].run_key != first.run_requests[0].run_key
