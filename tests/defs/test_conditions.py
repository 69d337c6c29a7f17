"""Declarative automation, evaluated tick by tick with Dagster's evaluate_automation_conditions.

Upstream runs are reported as runless materializations with a data version (Dagster's documented way
to test conditions without running the assets); specs are recorded by the real dataset spec sensor.
"""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData as TargetMaterialization,
)

from diffusion_assets.defs.automation import dataset_spec_sensor
from diffusion_assets.defs.partitions import (
    CATALOG_PARTITIONS_NAME,
    DATA_VERSION_TAG,
    generation_key,
)
from diffusion_assets.defs.resources import ProjectResource
from tests.conftest import write_catalog

DAY = "2026-11-28"
STYLE = "sources: [{catalog: a, dates: all}, {catalog: b, dates: all}]\ncaptions: {source: captioner}\nresolution: 32\n"
WATCHED = ("image_captions", "lora_dataset", "lora_adapter", "evaluation_report")


class World:
    """An instance with the project's definitions, advanced one automation tick at a time."""

    def __init__(self, instance, specs):
        from diffusion_assets.definitions import defs

        self.instance, self.specs, self.defs = instance, specs, defs
        self.cursor = self.spec_cursor = None
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, ["a", "b", "z"])

    def write_spec(self, name: str, text: str) -> None:
        (self.specs / f"{name}.yaml").write_text(text)
        with dg.build_sensor_context(
            instance=self.instance, cursor=self.spec_cursor, resources={"project": ProjectResource()}
        ) as context:
            result = dataset_spec_sensor(context)
        for event in result.asset_events:
            self.instance.report_runless_asset_event(event)
        for request in result.dynamic_partitions_requests:
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        self.spec_cursor = result.cursor

    def report(self, asset: str, partition: str, version: str) -> None:
        self.instance.report_runless_asset_event(
            dg.AssetMaterialization(asset, partition=partition, tags={DATA_VERSION_TAG: version})
        )

    def images(self, catalog: str, version: str, date: str = DAY) -> None:
        self.report("generated_images", str(generation_key(catalog, date)), version)

    def captions(self, catalog: str, version: str, date: str = DAY) -> None:
        self.report("image_captions", str(generation_key(catalog, date)), version)

    def tick(self) -> dict[str, set[str]]:
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.cursor)
        self.cursor = result.cursor
        requested = {key: result.get_requested_partitions(dg.AssetKey(key)) for key in WATCHED}
        return {key: partitions for key, partitions in requested.items() if partitions}


@pytest.fixture
def world(project, monkeypatch):
    specs = project / "lora_datasets"
    specs.mkdir()
    monkeypatch.setenv("DIFFUSION_ASSETS_DATASETS", str(specs))
    for catalog in ("a", "b", "z"):  # specs must name catalogs that exist (datasets.sources)
        write_catalog(project, catalog, "defaults: {model: sd15}\nentries: [{id: x, prompt: a red circle}]")
    with dg.instance_for_test() as instance:  # definitions resolve inside an instance (DEVELOPING.md)
        yield World(instance, specs)


def _captioned(world, *catalogs):
    for catalog in catalogs:
        world.images(catalog, f"{catalog}-1")
        world.captions(catalog, f"{catalog}-1")


def test_a_first_tick_requests_nothing_even_with_work_waiting(world):
    world.write_spec("style", STYLE)
    world.images("a", "a-1")  # images without captions, a spec whose sources are not built
    _captioned(world, "b")
    assert world.tick() == {}
    assert world.tick() == {}


def test_captions_follow_new_images_on_every_date_and_only_new_ones(world):
    world.tick()
    world.images("a", "a-1", date="2026-11-05")  # a backfilled night, not the latest date
    assert world.tick() == {"image_captions": {"a|2026-11-05"}}
    assert world.tick() == {}
    world.images("a", "a-1", date="2026-11-05")  # a re-run that skipped every image: same data version
    assert world.tick() == {}
    world.images("a", "a-2", date="2026-11-05")
    assert world.tick() == {"image_captions": {"a|2026-11-05"}}


def test_a_dataset_is_built_once_all_its_sources_have_captions_never_before(world):
    world.write_spec("style", STYLE)
    world.tick()
    world.images("a", "a-1")
    assert world.tick() == {"image_captions": {"a|2026-11-28"}}
    world.captions("a", "a-1")
    assert world.tick() == {}  # catalog b has no images yet: the build would fail
    world.images("b", "b-1")
    assert world.tick() == {"image_captions": {"b|2026-11-28"}}
    world.captions("b", "b-1")
    assert world.tick() == {"lora_dataset": {"style"}}
    world.report("lora_dataset", "style", "v1")
    assert world.tick() == {}


def test_a_dataset_waits_for_captions_of_regenerated_images(world):
    world.write_spec("style", STYLE)
    _captioned(world, "a", "b")
    world.tick()
    world.images("a", "a-2")
    world.write_spec("style", STYLE + "description: edited\n")  # an edit while a's captions are stale
    assert world.tick() == {"image_captions": {"a|2026-11-28"}}
    world.captions("a", "a-2")
    assert world.tick() == {"lora_dataset": {"style"}}


def test_a_spec_edit_rebuilds_its_dataset(world):
    world.write_spec("style", STYLE)
    _captioned(world, "a", "b")
    world.tick()
    assert world.tick() == {}
    world.write_spec("style", STYLE.replace("resolution: 32", "resolution: 64"))
    assert world.tick() == {"lora_dataset": {"style"}}


def test_a_dataset_ignores_catalogs_it_does_not_read(world):
    world.write_spec("style", STYLE)
    _captioned(world, "a", "b")
    world.tick()
    world.report("lora_dataset", "style", "v1")
    _captioned(world, "z")
    assert "lora_dataset" not in world.tick()


def test_a_dataset_of_listed_dates_waits_for_every_date(world):
    world.write_spec("dated", "sources: [{catalog: a, dates: [2026-11-27, 2026-11-28]}]\n"
                     "captions: {source: captioner}\nresolution: 32\n")  # fmt: skip
    world.tick()
    _captioned(world, "a")
    assert world.tick() == {}
    world.images("a", "a-1", date="2026-11-27")
    world.captions("a", "a-1", date="2026-11-27")
    assert world.tick() == {"lora_dataset": {"dated"}}


def test_a_dataset_captioned_with_prompts_follows_images(world):
    world.write_spec(
        "prompts", "sources: [{catalog: a, dates: all}]\ncaptions: {source: prompt}\nresolution: 32\n"
    )
    world.tick()
    world.images("a", "a-1")
    assert world.tick() == {"image_captions": {"a|2026-11-28"}, "lora_dataset": {"prompts"}}


def test_an_invalid_spec_never_builds(world):
    world.write_spec("broken", STYLE.replace("resolution: 32", "resolution: 30"))
    world.tick()
    _captioned(world, "a", "b")
    assert world.tick() == {}
    assert world.tick() == {}


def test_training_and_evaluation_follow_a_new_dataset_version_only_where_the_spec_opts_in(world):
    world.write_spec("style", STYLE)
    _captioned(world, "a", "b")
    world.tick()
    world.report("lora_dataset", "style", "v1")
    assert world.tick() == {}  # auto_train defaults to false: no GPU run by surprise
    world.write_spec("style", STYLE + "auto_train: true\n")
    assert world.tick() == {
        "lora_dataset": {"style"},
        "lora_adapter": {"style"},
        "evaluation_report": {"style"},
    }
    world.report("lora_dataset", "style", "v1")
    world.report("lora_adapter", "style", "adapter-1")
    world.report("evaluation_report", "style", "report-1")
    assert world.tick() == {}
    world.report("lora_dataset", "style", "v1")  # a rebuild that reused the version
    assert world.tick() == {}
    world.report("lora_dataset", "style", "v2")
    assert world.tick() == {"lora_adapter": {"style"}, "evaluation_report": {"style"}}


def _lora_applies(world, passed: bool) -> None:
    """The adapter's blocking check, evaluated on its latest materialization (as its step does)."""
    key = dg.AssetKey("lora_adapter")
    (adapter,) = world.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=["style"]), limit=1
    ).records
    target = TargetMaterialization(
        storage_id=adapter.storage_id, run_id=adapter.run_id, timestamp=adapter.timestamp
    )
    world.instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=key,
            check_name="lora_applies",
            passed=passed,
            partition="style",
            target_materialization_data=target,
        )
    )


@pytest.mark.parametrize("passed", [True, False])
def test_evaluation_follows_an_adapter_only_after_its_blocking_check_passed(world, passed):
    world.write_spec("style", STYLE + "auto_train: true\n")
    _captioned(world, "a", "b")
    world.report("lora_dataset", "style", "v1")
    world.tick()
    world.report("lora_adapter", "style", "adapter-1")  # trained from the UI, outside automation
    _lora_applies(world, passed)
    assert world.tick() == ({"evaluation_report": {"style"}} if passed else {})


def test_the_automation_sensor_starts_running_calm_and_evaluates_the_conditions_itself(world):
    sensor = world.defs.get_sensor_def("automation_condition_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING

    def tick(cursor):  # what the code server does on each tick (use_user_code_server)
        with dg.build_sensor_context(
            instance=world.instance, cursor=cursor, repository_def=world.defs.get_repository_def()
        ) as context:
            return sensor.evaluate_tick(context)

    world.images("a", "a-1")
    first = tick(None)
    world.images("b", "b-1")
    second = tick(first.cursor)
    assert first.run_requests == []
    assert [str(r.partition_key) for r in second.run_requests] == ["b|2026-11-28"]
    assert second.run_requests[0].asset_selection == [dg.AssetKey("image_captions")]
