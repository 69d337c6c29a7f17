"""Hostile files in prompts/ and lora_datasets/ are refused by the catalog sensor, the dataset sensor,
the nightly schedule and `diffusion-assets materialize`, each in a fresh process with bounded memory,
while the valid files beside them carry on."""

from __future__ import annotations

import json
import os
import sys

import dagster as dg
import pytest
import yaml

from diffusion_assets.defs.automation import dataset_spec_sensor
from diffusion_assets.defs.resources import ProjectResource
from tests.conftest import write_catalog
from tests.datasets.helpers import spec_dict
from tests.refusals import KINDS, measured, write_hostile

RSS_BOUND = 500 << 20
"""Peak memory of a whole tick with Dagster loaded (about 200 MB here); the hostile inputs took 600-850 MB
on top before."""

GOOD = "schedule: daily\ndefaults: {model: shapes-render}\nentries: [{id: a, prompt: a red circle on a black background}]\n"

TICK = """
import json, sys
from datetime import UTC, datetime
import dagster as dg
from diffusion_assets.defs.automation import catalog_sensor, nightly_generation
from diffusion_assets.defs.partitions import CATALOG_PARTITIONS_NAME
from diffusion_assets.defs.resources import ProjectResource

resources = {"project": ProjectResource()}
with dg.instance_for_test() as instance:
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        sensor = catalog_sensor(context)
    instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, [k for k in sys.argv[1:]])
    when = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=when, resources=resources) as context:
        schedule = nightly_generation(context)
schedule = [] if isinstance(schedule, dg.SkipReason) else list(schedule)
print("RESULT=" + json.dumps({
    "sensor": [r.partition_key.keys_by_dimension["catalog"] for r in sensor.run_requests],
    "added": [k for a in sensor.dynamic_partitions_requests for k in a.partition_keys],
    "schedule": [r.partition_key.keys_by_dimension["catalog"] for r in schedule],
}))
"""


def test_the_sensor_and_the_schedule_refuse_every_hostile_kind_and_carry_on(project):
    for kind in KINDS:
        write_hostile(kind, project / "prompts")
    write_catalog(project, "good", GOOD)
    names = [p.stem for p in (project / "prompts").iterdir()]
    result = measured([sys.executable, "-c", TICK, *names], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    [line] = [x for x in result.stdout.splitlines() if x.startswith("RESULT=")]
    outcome = json.loads(line.removeprefix("RESULT="))
    assert outcome == {"sensor": ["good"], "added": ["good"], "schedule": ["good"]}
    assert result.max_rss_bytes < RSS_BOUND, f"{result.max_rss_bytes / 2**20:.0f} MB"
    for kind in KINDS:  # each refusal is logged with its file (sensor and schedule)
        assert result.stderr.count(f"{kind.replace('-', '_')}.yaml") >= 2, kind


@pytest.mark.parametrize("kind", ["alias-bomb", "variables-10M", "huge-file"])
def test_materialize_refuses_before_running(project, tmp_path, kind):
    path = write_hostile(kind, project / "prompts")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()
    args = [sys.executable, "-m", "diffusion_assets.cli", "materialize", path.stem, "--date", "2026-11-28"]
    result = measured(args, env=env, timeout=300)
    assert result.returncode != 0
    assert str(path) in result.stderr and f"catalog '{path.stem}' is not a valid file" in result.stderr
    assert result.max_rss_bytes < RSS_BOUND, f"{result.max_rss_bytes / 2**20:.0f} MB"
    assert not (project / "data" / "images").exists()


def test_the_dataset_sensor_refuses_specs_that_name_missing_catalogs_or_match_nothing(project, monkeypatch):
    specs = project / "lora_datasets"
    specs.mkdir()
    monkeypatch.setenv("DIFFUSION_ASSETS_DATASETS", str(specs))
    write_catalog(project, "good", GOOD)
    spec = spec_dict(sources=[{"catalog": "good"}], captions={"source": "prompt"}, trigger={})
    (specs / "fine.yaml").write_text(yaml.safe_dump(spec))
    (specs / "missing.yaml").write_text(yaml.safe_dump({**spec, "sources": [{"catalog": "goood"}]}))
    (specs / "globbed.yaml").write_text(yaml.safe_dump({**spec, "filters": {"entries": ["b*"]}}))
    write_hostile("alias-bomb", specs, "bomb")
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(instance=instance, resources={"project": ProjectResource()}) as context:
            result = dataset_spec_sensor(context)
    assert [r.partition_key for r in result.run_requests] == ["fine"]
    assert [k for a in result.dynamic_partitions_requests for k in a.partition_keys] == ["fine"]
