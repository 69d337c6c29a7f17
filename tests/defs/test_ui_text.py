"""What the UI shows: descriptions render as written, and a partition's checks are that partition's.

The Dagster UI renders asset, check, job, sensor, schedule and config descriptions as Markdown with
raw HTML allowed, so a bare placeholder such as ``<catalog>`` is parsed as an HTML tag and vanishes
(issue 9). Python-Markdown follows the same CommonMark rule for raw inline HTML, so rendering each
description with it and reading the visible text back shows what a user would lose.
"""

from __future__ import annotations

import html
import re

import dagster as dg
import markdown
import pytest

from diffusion_assets.defs.generation import generated_images
from diffusion_assets.defs.partitions import CATALOG_PARTITIONS_NAME, generation_key
from diffusion_assets.defs.resources import GpuResource, ProjectResource
from tests.conftest import write_catalog

PLACEHOLDER = re.compile(r"<[A-Za-z][A-Za-z0-9_ ]*>")


def _visible_text(text: str) -> str:
    """The text a reader sees once ``text`` is rendered as Markdown (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", markdown.markdown(text)))


def _descriptions() -> list[tuple[str, str]]:
    from diffusion_assets.definitions import defs

    found: list[tuple[str, str]] = []
    with dg.instance_for_test():
        graph = defs.resolve_asset_graph()
        for key in graph.get_all_asset_keys():
            found.append((f"asset {key.to_user_string()}", graph.get(key).description or ""))
        for check_key in graph.asset_check_keys:
            found.append((f"check {check_key.name}", graph.get(check_key).description or ""))
        for job in defs.resolve_all_job_defs():
            found.append((f"job {job.name}", job.description or ""))
    found += [(f"sensor {s.name}", s.description or "") for s in defs.sensors]
    found += [(f"schedule {s.name}", s.description or "") for s in defs.schedules]
    for name, resource in (defs.resources or {}).items():
        for field_name, info in type(resource).model_fields.items():
            found.append((f"resource {name}.{field_name}", info.description or ""))
    return found


def test_there_are_descriptions_to_check():
    described = [(what, text) for what, text in _descriptions() if text]
    assert len(described) > 40


@pytest.mark.parametrize(("what", "text"), [d for d in _descriptions() if PLACEHOLDER.search(d[1])])
def test_placeholders_survive_markdown_rendering(what, text):
    visible = _visible_text(text)
    for placeholder in PLACEHOLDER.findall(text):
        assert placeholder in visible, f"{what}: {placeholder} vanishes in the UI; put it in backticks"


def test_rendering_rule_drops_a_bare_placeholder():
    """The helper really models the failure: a bare tag vanishes, a code span keeps it."""
    assert "<catalog>" not in _visible_text("images under data/<catalog>/")
    assert "<catalog>" in _visible_text("images under `data/<catalog>/`")


def test_every_check_of_a_partitioned_asset_is_partitioned_like_it():
    from diffusion_assets.definitions import defs

    with dg.instance_for_test():
        graph = defs.resolve_asset_graph()
        for check_key in graph.asset_check_keys:
            asset_partitions = graph.get(check_key.asset_key).partitions_def
            assert graph.get(check_key).partitions_def == asset_partitions, check_key.to_user_string()


def test_check_results_are_recorded_for_their_own_partition(project):
    write_catalog(project, "demo", "defaults: {model: sd15, steps: 2, width: 32, height: 32}\n"
                  "entries: [{id: a, prompt: a red circle}]")  # fmt: skip
    key = str(generation_key("demo", "2026-11-28"))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, ["demo"])
        result = dg.materialize(
            [generated_images],
            instance=instance,
            partition_key=key,
            resources={"gpu": GpuResource(device="cpu"), "project": ProjectResource()},
        )
        evaluations = result.get_asset_check_evaluations()
        assert {e.check_name for e in evaluations} == {
            "manifest_schema",
            "files_match_manifest",
            "reproducible",
        }
        assert {e.partition for e in evaluations} == {key}
