"""Staleness through Dagster's own API: editing a catalog or a dataset spec marks what it fed stale."""

from __future__ import annotations

import dagster as dg
from dagster._utils.test.data_versions import get_stale_status_resolver

from diffusion_assets.defs.automation import catalog_sensor
from diffusion_assets.defs.generation import generated_images
from diffusion_assets.defs.partitions import generation_key, prompt_catalog
from diffusion_assets.defs.resources import GpuResource, ProjectResource
from tests.conftest import write_catalog

CATALOG = "defaults: {model: sd15, steps: 2, width: 32, height: 32}\nentries: [{id: a, prompt: a cat}]\n"
KEY = str(generation_key("pets", "2026-11-28"))


def _status(instance):
    source = dg.SourceAsset("prompt_catalog", partitions_def=prompt_catalog.partitions_def)
    return get_stale_status_resolver(instance, [generated_images, source]).get_status(
        generated_images.key, KEY
    )


def test_editing_a_catalog_marks_its_images_stale(project):
    path = write_catalog(project, "pets", CATALOG)
    resources = {"project": ProjectResource(), "gpu": GpuResource(device="cpu")}
    with dg.instance_for_test() as instance:

        def tick(cursor):
            with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
                result = catalog_sensor(context)
            for request in result.dynamic_partitions_requests:
                instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
            for event in result.asset_events:
                instance.report_runless_asset_event(event)
            return result.cursor

        cursor = tick(None)
        assert dg.materialize(
            [generated_images], instance=instance, partition_key=KEY, resources=resources
        ).success
        fresh = _status(instance)
        cursor = tick(cursor)  # nothing changed: still fresh
        assert _status(instance) == fresh
        path.write_text(CATALOG.replace("a cat", "a dog"))
        tick(cursor)
        stale = _status(instance)
    assert fresh.value == "FRESH"
    assert stale.value == "STALE"
