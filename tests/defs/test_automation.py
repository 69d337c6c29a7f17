"""Sensor and schedule policies, evaluated with Dagster's build_*_context helpers.

``_apply`` does with a tick's result what the daemon does: store its events, then add its partitions.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg
import pytest

from diffusion_assets import dagster_cli
from diffusion_assets.defs import automation
from diffusion_assets.defs.automation import catalog_sensor, dataset_spec_sensor, nightly_generation
from diffusion_assets.defs.partitions import CATALOG_PARTITIONS_NAME, LORA_DATASET_PARTITIONS_NAME
from diffusion_assets.defs.resources import ProjectResource
from diffusion_assets.defs.source_files import catalog_valid
from tests.conftest import write_catalog

VALID = "defaults: {model: sd15}\nentries: [{id: a, prompt: x}]\n"
WIDTH_1020 = "defaults: {model: sd15, width: 1020}\nentries: [{id: hero, prompt: x}]\n"


def _tick(instance, cursor=None, sensor=catalog_sensor):
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"project": ProjectResource()}
    ) as context:  # its exit closes what the context opened (a logger, an instance from the ref)
        return sensor(context)


def _apply(instance, result):
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result.cursor


def _started(instance, sensor=catalog_sensor):
    """The cursor after a first tick, applied: the state of any instance that has been running."""
    return _apply(instance, _tick(instance, sensor=sensor))


def _observation(instance, name, asset="prompt_catalog"):
    (record,) = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[name]), limit=1
    ).records
    return record.asset_observation


def test_first_tick_registers_every_file_and_requests_nothing(project):
    write_catalog(project, "animals", VALID)
    write_catalog(project, "broken", WIDTH_1020)
    with dg.instance_for_test() as instance:
        result = _tick(instance)
    assert result.run_requests == []
    (add,) = result.dynamic_partitions_requests
    assert list(add.partition_keys) == ["animals", "broken"]  # invalid too: its errors need a partition
    assert {e.partition: e.metadata["valid"].value for e in result.asset_events} == {
        "animals": True,
        "broken": False,
    }
    assert (
        "first tick" in result.skip_reason.skip_message and "broken.yaml" in result.skip_reason.skip_message
    )


def test_a_catalog_added_after_the_first_tick_becomes_a_partition_and_runs(project):
    with dg.instance_for_test() as instance:
        cursor = _started(instance)
        write_catalog(project, "animals", VALID)
        result = _tick(instance, cursor)
    (add,) = result.dynamic_partitions_requests
    assert (add.partitions_def_name, list(add.partition_keys)) == (CATALOG_PARTITIONS_NAME, ["animals"])
    (request,) = result.run_requests
    assert request.partition_key.startswith("animals|")
    assert request.run_key.startswith(f"{request.partition_key}:")


def test_sensor_requests_again_only_when_the_content_changes(project):
    path = write_catalog(project, "animals", VALID)
    with dg.instance_for_test() as instance:
        cursor = _started(instance)
        unchanged = _tick(instance, cursor)
        path.write_text(VALID.replace("prompt: x", "prompt: y"))
        changed = _tick(instance, unchanged.cursor)
    assert unchanged.run_requests == [] and unchanged.dynamic_partitions_requests == []
    assert len(changed.run_requests) == 1 and changed.dynamic_partitions_requests == []


def test_sensor_requests_a_run_when_an_edit_is_reverted(project):
    # run keys are deduplicated forever, so A→B→A must not reuse A's key
    path = write_catalog(project, "animals", VALID)
    with dg.instance_for_test() as instance:
        cursor = _started(instance)
        path.write_text(VALID.replace("prompt: x", "prompt: y"))
        first = _tick(instance, cursor)
        path.write_text(VALID)
        second = _tick(instance, _apply(instance, first))
        path.write_text(VALID.replace("prompt: x", "prompt: y"))
        third = _tick(instance, _apply(instance, second))
    keys = [r.run_key for tick in (first, second, third) for r in tick.run_requests]
    assert len(keys) == 3 and len(set(keys)) == 3
    assert third.run_requests[0].tags == first.run_requests[0].tags  # the same content hash


def test_sensor_requests_nothing_when_nothing_changed(project):
    write_catalog(project, "animals", VALID)
    with dg.instance_for_test() as instance:
        cursor = _started(instance)
        again = _tick(instance, cursor)
        once_more = _tick(instance, again.cursor)
    for tick in (again, once_more):
        assert tick.run_requests == [] and tick.asset_events == [] and tick.dynamic_partitions_requests == []
        assert tick.cursor == cursor


def test_sensor_reevaluating_a_tick_gives_the_same_requests(project):
    write_catalog(project, "animals", VALID)
    with dg.instance_for_test() as instance:
        cursor = _started(instance)
        (project / "prompts" / "animals.yaml").write_text(VALID.replace("prompt: x", "prompt: y"))
        ticks = [_tick(instance, cursor) for _ in range(2)]
    assert [r.run_key for r in ticks[0].run_requests] == [r.run_key for r in ticks[1].run_requests]
    assert ticks[0].cursor == ticks[1].cursor


def test_a_reset_cursor_takes_stock_again_and_later_days_get_their_own_runs(project, monkeypatch):
    path = write_catalog(project, "animals", VALID)
    with dg.instance_for_test() as instance:
        _started(instance)
        reset = _tick(instance)  # the UI's "reset cursor"
        monkeypatch.setattr(automation, "_today", lambda: "2026-11-28")
        path.write_text(VALID.replace("prompt: x", "prompt: y"))
        first = _tick(instance, _apply(instance, reset))
        monkeypatch.setattr(automation, "_today", lambda: "2026-11-29")
        path.write_text(VALID)
        later = _tick(instance, _apply(instance, first))
    assert reset.run_requests == [] and reset.asset_events == []  # the instance holds these hashes already
    (first,), (later,) = first.run_requests, later.run_requests
    assert (first.partition_key, later.partition_key) == ("animals|2026-11-28", "animals|2026-11-29")


def test_sensor_reads_a_cursor_of_bare_hashes(project):
    # the cursor format before change numbers: {name: sha256}
    write_catalog(project, "animals", VALID)
    with dg.instance_for_test() as instance:
        digest = json.loads(_started(instance))["animals"]["sha256"]
        unchanged = _tick(instance, json.dumps({"animals": digest}))
        (project / "prompts" / "animals.yaml").write_text(VALID.replace("prompt: x", "prompt: y"))
        changed = _tick(instance, json.dumps({"animals": digest}))
    assert unchanged.run_requests == []
    assert len(changed.run_requests) == 1


def test_a_partition_deleted_in_the_ui_is_added_back_without_a_run(project):
    # the cursor still holds the file's hash; the instance is what says the partition is gone
    write_catalog(project, "animals", VALID)
    with dg.instance_for_test() as instance:
        cursor = _started(instance)
        instance.delete_dynamic_partition(CATALOG_PARTITIONS_NAME, "animals")
        result = _tick(instance, cursor)
    (add,) = result.dynamic_partitions_requests
    assert list(add.partition_keys) == ["animals"]
    assert result.run_requests == [] and result.asset_events == []  # its hash is recorded already


def _raise_for(name, exc, real):
    def load(path):
        if path.stem == name:
            raise exc
        return real(path)

    return load


def test_sensor_carries_on_when_a_catalog_raises_anything(project, monkeypatch):
    monkeypatch.setattr(
        automation,
        "load_catalog",
        _raise_for("broken_model", KeyError("model_index"), automation.load_catalog),
    )
    with dg.instance_for_test() as instance:
        cursor = _started(instance)
        write_catalog(project, "broken_model", VALID)
        write_catalog(project, "fine", VALID)
        result = _tick(instance, cursor)
    assert [r.partition_key.keys_by_dimension["catalog"] for r in result.run_requests] == ["fine"]
    assert list(result.dynamic_partitions_requests[0].partition_keys) == ["broken_model", "fine"]
    (broken,) = [e for e in result.asset_events if e.partition == "broken_model"]
    assert "KeyError" in broken.metadata["problems"].value


def test_an_invalid_catalog_shows_its_named_errors_on_its_prompt_catalog_partition(project):
    write_catalog(project, "broken", WIDTH_1020)
    with dg.instance_for_test() as instance:
        _started(instance)
        observation = _observation(instance, "broken")
        assert instance.has_dynamic_partition(CATALOG_PARTITIONS_NAME, "broken")
    assert observation.metadata["valid"].value is False
    problems = observation.metadata["problems"].value
    assert "broken.yaml, entry 'hero' (entries[0]), field 'width': 1020 is not divisible by 8" in problems


def test_every_tick_names_every_invalid_file_also_when_others_run(project, capsys):
    write_catalog(project, "broken", WIDTH_1020)
    (project / "prompts" / "a|b.yaml").write_text(VALID)
    with dg.instance_for_test() as instance:
        cursor = _started(instance)
        capsys.readouterr()
        write_catalog(project, "fine", VALID)
        with_run = _tick(instance, cursor)
        logged_with_run = capsys.readouterr().err
        quiet = _tick(instance, _apply(instance, with_run))
        logged_quiet = capsys.readouterr().err
    assert len(with_run.run_requests) == 1
    for logged in (logged_with_run, logged_quiet):
        assert "2 invalid file(s), never run until edited or renamed: a|b.yaml, broken.yaml" in logged
    assert "broken.yaml" in quiet.skip_reason.skip_message and "a|b.yaml" in quiet.skip_reason.skip_message
    assert quiet.run_requests == [] and quiet.asset_events == []


def test_an_invalid_catalog_never_runs_until_edited_and_partitions_are_never_deleted(project):
    path = write_catalog(project, "broken", "entries: [{id: a}]")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, ["removed_long_ago"])
        cursor = _started(instance)
        path.write_text("entries: [{id: b}]")  # edited, still invalid
        still_broken = _tick(instance, cursor)
        path.write_text(VALID)
        fixed = _tick(instance, _apply(instance, still_broken))
        assert instance.has_dynamic_partition(CATALOG_PARTITIONS_NAME, "removed_long_ago")
    assert still_broken.run_requests == []
    assert [r.partition_key.keys_by_dimension["catalog"] for r in fixed.run_requests] == ["broken"]


def _counting(monkeypatch):
    """Counts partition look-ups on every instance (a schedule context makes its own from the ref)."""
    calls = {"get_dynamic_partitions": 0, "has_dynamic_partition": 0}
    for name in calls:
        real = getattr(dg.DagsterInstance, name)

        def counted(self, *args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(dg.DagsterInstance, name, counted)
    return calls


@pytest.mark.parametrize("first_tick", [True, False])
def test_a_sensor_tick_reads_the_partitions_once_whatever_the_number_of_files(
    project, monkeypatch, first_tick
):
    for i in range(20):
        write_catalog(project, f"c{i:02d}", VALID.replace("prompt: x", f"prompt: x{i}"))
    with dg.instance_for_test() as instance:
        cursor = None if first_tick else _started(instance)
        for i in range(10):  # edited and deleted in the UI: validated, requested, added back
            write_catalog(project, f"c{i:02d}", VALID)
            instance.delete_dynamic_partition(CATALOG_PARTITIONS_NAME, f"c{i + 10:02d}")
        calls = _counting(monkeypatch)
        with dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"project": ProjectResource()}
        ) as context:
            result = catalog_sensor(context)
    assert calls == {"get_dynamic_partitions": 1, "has_dynamic_partition": 0}
    assert len(result.run_requests) == (0 if first_tick else 10)


def test_catalog_valid_check_validates_a_partition_again_in_a_run(project):
    write_catalog(project, "broken", WIDTH_1020)
    write_catalog(project, "fine", VALID)
    defs = dg.Definitions(
        asset_checks=[catalog_valid],
        jobs=[dg.define_asset_job("check", selection=dg.AssetSelection.checks(catalog_valid))],
        resources={"project": ProjectResource()},
    )
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, ["broken", "fine", "gone"])
        job = defs.resolve_job_def("check")
        outcome = {}
        for name in ("broken", "fine", "gone"):  # what the UI launches: the check with a partition tag
            result = job.execute_in_process(instance=instance, tags={"dagster/partition": name})
            (evaluation,) = result.get_asset_check_evaluations()
            outcome[name] = (evaluation.partition, evaluation.passed, evaluation.metadata["problems"].value)
    assert outcome["fine"] == ("fine", True, "none")
    assert outcome["broken"][:2] == ("broken", False) and "1020 is not divisible by 8" in outcome["broken"][2]
    assert outcome["gone"][:2] == ("gone", False) and "no usable file named gone.yaml" in outcome["gone"][2]


def _schedule(instance, when):
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when, resources={"project": ProjectResource()}
    ) as context:  # left open, its instance (made from the ref) resets Dagster's state storage when GC'd
        return nightly_generation(context)


NIGHT = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


def test_schedule_runs_registered_catalogs_that_declare_daily(project):
    write_catalog(project, "nightly", "schedule: daily\n" + VALID)
    write_catalog(project, "adhoc", VALID)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, ["nightly", "adhoc"])
        requests = _schedule(instance, NIGHT)
    assert [(r.partition_key, r.run_key) for r in requests] == [("nightly|2026-11-29", "nightly|2026-11-29")]


def test_schedule_runs_a_catalog_the_sensor_added_back_after_a_ui_deletion(project):
    write_catalog(project, "nightly", "schedule: daily\n" + VALID)
    with dg.instance_for_test() as instance:
        cursor = _started(instance)
        instance.delete_dynamic_partition(CATALOG_PARTITIONS_NAME, "nightly")
        skipped = _schedule(instance, NIGHT)
        _apply(instance, _tick(instance, cursor))
        requests = _schedule(instance, NIGHT)
    assert isinstance(skipped, dg.SkipReason)
    assert [r.partition_key for r in requests] == ["nightly|2026-11-29"]


def test_schedule_reads_the_partitions_once(project, monkeypatch):
    for i in range(10):
        write_catalog(project, f"n{i}", "schedule: daily\n" + VALID)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, [f"n{i}" for i in range(10)])
        calls = _counting(monkeypatch)
        requests = _schedule(instance, NIGHT)
    assert calls == {"get_dynamic_partitions": 1, "has_dynamic_partition": 0}
    assert len(requests) == 10


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
        requests = _schedule(instance, NIGHT)
    assert [r.partition_key for r in requests] == ["nightly|2026-11-29"]


def test_schedule_skips_when_no_catalog_is_scheduled(project):
    write_catalog(project, "adhoc", VALID)
    with dg.instance_for_test() as instance:
        result = _schedule(instance, NIGHT)
    assert isinstance(result, dg.SkipReason)


def test_sync_partitions_registers_and_records_once_reading_the_partitions_once(project, monkeypatch):
    write_catalog(project, "broken", WIDTH_1020)
    write_catalog(project, "fine", VALID)
    with dg.instance_for_test() as instance:
        calls = _counting(monkeypatch)
        added = dagster_cli.sync_partitions(instance)
        assert calls == {"get_dynamic_partitions": 1, "has_dynamic_partition": 0}
        again = dagster_cli.sync_partitions(instance)
        observations = instance.fetch_observations(dg.AssetKey("prompt_catalog"), limit=10).records
        assert _observation(instance, "broken").metadata["valid"].value is False
    assert added == ["broken", "fine"] and again == []
    assert len(observations) == 2  # a second sync records nothing it already holds


SPEC = "sources: [{catalog: c, dates: all}]\ncaptions: {source: prompt}\nresolution: 32\n"


def test_dataset_sensor_registers_specs_records_changes_and_launches_nothing(project, monkeypatch):
    specs = project / "lora_datasets"
    specs.mkdir()
    monkeypatch.setenv("DIFFUSION_ASSETS_DATASETS", str(specs))
    write_catalog(project, "c", VALID)  # a spec's source catalog must exist
    spec = specs / "style.yaml"
    spec.write_text(SPEC)
    (specs / "broken.yaml").write_text("sources: []\nresolution: 30\n")
    with dg.instance_for_test() as instance:
        first = _tick(instance, sensor=dataset_spec_sensor)
        spec.write_text(SPEC.replace("32", "64"))
        second = _tick(instance, _apply(instance, first), sensor=dataset_spec_sensor)
        broken = _observation(instance, "broken", "lora_dataset_spec")
    (add,) = first.dynamic_partitions_requests
    assert (add.partitions_def_name, list(add.partition_keys)) == (
        LORA_DATASET_PARTITIONS_NAME,
        ["broken", "style"],
    )
    assert first.run_requests == [] and second.run_requests == []  # lora_dataset's condition builds it
    assert [e.partition for e in second.asset_events] == ["style"]
    assert broken.metadata["valid"].value is False and "field 'sources'" in broken.metadata["problems"].value
