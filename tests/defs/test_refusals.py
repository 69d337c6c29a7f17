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
from pathlib import Path
import dagster as dg
from diffusion_assets.defs.automation import catalog_sensor, nightly_generation
from diffusion_assets.defs.resources import ProjectResource

resources = {"project": ProjectResource()}
with dg.instance_for_test() as instance:
    # 1. the first tick registers every file and requests nothing (a calm first start)
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        first = catalog_sensor(context)
    for request in first.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    # 2. every file changes: the valid one runs, each hostile one is refused again
    for path in Path(sys.argv[1]).iterdir():
        if not path.is_file():
            continue  # /dev/zero behind a symlink: never read, never a partition
        with open(path, "a") as handle:
            handle.write("\\n# edited\\n")
    with dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=resources) as context:
        second = catalog_sensor(context)
    when = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=when, resources=resources) as context:
        schedule = nightly_generation(context)
schedule = [] if isinstance(schedule, dg.SkipReason) else list(schedule)
print("RESULT=" + json.dumps({
    "first": [r.partition_key.keys_by_dimension["catalog"] for r in first.run_requests],
    "added": sorted(k for a in first.dynamic_partitions_requests for k in a.partition_keys),
    "sensor": [r.partition_key.keys_by_dimension["catalog"] for r in second.run_requests],
    "schedule": [r.partition_key.keys_by_dimension["catalog"] for r in schedule],
}))
"""


def test_the_sensor_and_the_schedule_refuse_every_hostile_kind_and_carry_on(project):
    for kind in KINDS:
        write_hostile(kind, project / "prompts")
    write_catalog(project, "good", GOOD)
    names = sorted(p.stem for p in (project / "prompts").iterdir() if p.is_file())
    result = measured([sys.executable, "-c", TICK, str(project / "prompts")], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    [line] = [x for x in result.stdout.splitlines() if x.startswith("RESULT=")]
    outcome = json.loads(line.removeprefix("RESULT="))
    # every well-named file is a partition (invalid ones show their errors on prompt_catalog); only the
    # valid catalog ever runs
    assert outcome == {"first": [], "added": names, "sensor": ["good"], "schedule": ["good"]}
    assert result.max_rss_bytes < RSS_BOUND, f"{result.max_rss_bytes / 2**20:.0f} MB"
    for kind in KINDS:  # each refusal is logged with its file (sensor and schedule)
        assert result.stderr.count(f"{kind.replace('-', '_')}.yaml") >= 3, kind


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
    # the spec sensor launches nothing (lora_dataset follows its sources by automation); every spec is a
    # partition, and each invalid one carries its named error on its lora_dataset_spec observation
    assert result.run_requests == []
    assert sorted(k for a in result.dynamic_partitions_requests for k in a.partition_keys) == [
        "bomb", "fine", "globbed", "missing",
    ]  # fmt: skip
    seen = {e.partition: e.metadata for e in result.asset_events}
    assert seen["fine"]["valid"].value is True
    for name, field in (("missing", "sources.0.catalog"), ("globbed", "filters.entries"), ("bomb", "")):
        assert seen[name]["valid"].value is False, name
        assert f"{name}.yaml" in seen[name]["problems"].value and field in seen[name]["problems"].value, name
