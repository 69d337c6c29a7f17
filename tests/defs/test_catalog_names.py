"""File names in prompts/ that cannot be partition keys are reported and skipped, never registered."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from diffusion_assets import dagster_cli
from diffusion_assets.defs.automation import catalog_sensor, nightly_generation
from diffusion_assets.defs.partitions import CATALOG_PARTITIONS_NAME
from diffusion_assets.defs.resources import ProjectResource
from diffusion_assets.paths import scan_catalog_files
from tests.conftest import write_catalog

VALID = "schedule: daily\ndefaults: {model: sd15}\nentries: [{id: a, prompt: x}]\n"
BAD = ["a|b.yaml", "x.yaml", "x.yml"]  # a multi-partition separator; two files naming 'x'


@pytest.mark.parametrize(
    ("names", "usable", "problem"),
    [
        (["animals.yaml", "shapes_v1.2-b.yml"], ["animals.yaml", "shapes_v1.2-b.yml"], None),
        (["a|b.yaml"], [], "'a|b' cannot name a partition"),
        (["a|b.yaml"], [], "rename it to a_b.yaml"),
        (["my cats.yml"], [], "rename it to my_cats.yml"),
        (["-draft.yaml"], [], "rename it to draft.yaml"),
        (["a...b.yaml"], [], "rename it to a.b.yaml"),
        (["x.yaml", "x.yml", "y.yaml"], ["y.yaml"], "x.yaml and {dir}/x.yml both name 'x'"),
        ([".#animals.yaml", "notes.txt"], [], None),
    ],
)
def test_scan_keeps_files_that_can_name_a_partition(tmp_path, names, usable, problem):
    for name in names:
        (tmp_path / name).write_text("entries: []\n")
    scan = scan_catalog_files(tmp_path)
    assert [p.name for p in scan.files] == usable
    if problem is None:
        assert scan.problems == [] and scan.skipped == []
    else:
        assert any(problem.format(dir=tmp_path) in message for message in scan.problems)
        assert all(str(tmp_path) in message for message in scan.problems)  # each names its file


def _write_bad_names(project):
    write_catalog(project, "good", VALID)
    for name in BAD:
        (project / "prompts" / name).write_text(VALID)


def _tick(instance, cursor=None):
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"project": ProjectResource()}
    ) as context:  # its exit closes what the context opened (a logger, an instance from the ref)
        return catalog_sensor(context)


def test_sensor_never_registers_a_bad_name_and_logs_each(project, capsys):
    _write_bad_names(project)
    with dg.instance_for_test() as instance:
        result = _tick(instance)
    logged = capsys.readouterr().err  # the sensor's log
    (add,) = result.dynamic_partitions_requests
    assert list(add.partition_keys) == ["good"]
    assert result.run_requests == []  # a first tick takes stock
    assert "a|b.yaml: 'a|b' cannot name a partition" in logged and "rename it to a_b.yaml" in logged
    assert "x.yaml and" in logged and "x.yml both name 'x'" in logged


def test_sensor_cursor_is_stable_with_two_files_of_one_name(project):
    # x.yaml and x.yml used to overwrite each other's hash in the cursor on every tick
    _write_bad_names(project)
    with dg.instance_for_test() as instance:
        first = _tick(instance)
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, ["good"])
        second = _tick(instance, first.cursor)
        third = _tick(instance, second.cursor)
    assert second.run_requests == [] and third.run_requests == []
    assert first.cursor == second.cursor == third.cursor
    assert all(name in third.skip_reason.skip_message for name in BAD)


def test_schedule_skips_bad_names(project):
    _write_bad_names(project)
    context_time = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, ["good", "x"])
        with dg.build_schedule_context(
            instance=instance, scheduled_execution_time=context_time, resources={"project": ProjectResource()}
        ) as context:
            requests = nightly_generation(context)
    assert [r.partition_key for r in requests] == ["good|2026-11-29"]


def test_sync_partitions_reports_bad_names_and_registers_the_rest(project, capsys):
    _write_bad_names(project)
    with dg.instance_for_test() as instance:
        added = dagster_cli.sync_partitions(instance)
        registered = instance.get_dynamic_partitions(CATALOG_PARTITIONS_NAME)
    assert added == registered == ["good"]
    err = capsys.readouterr().err
    assert "rename it to a_b.yaml" in err and "both name 'x'" in err


def test_sync_partitions_carries_on_when_a_catalog_raises_anything(project, monkeypatch, capsys):
    write_catalog(project, "broken_model", VALID)
    write_catalog(project, "fine", VALID)
    real = dagster_cli.load_catalog

    def load(path):
        if path.stem == "broken_model":
            raise KeyError("model_index.json")
        return real(path)

    monkeypatch.setattr(dagster_cli, "load_catalog", load)
    with dg.instance_for_test() as instance:
        added = dagster_cli.sync_partitions(instance)
    assert added == ["broken_model", "fine"]  # registered with its error recorded, never requested
    assert "broken_model.yaml: KeyError" in capsys.readouterr().err
