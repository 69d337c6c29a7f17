"""Reverse lineage: an adapter or a dataset traced back to its member images and how they were made."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from diffusion_assets.lineage import LineageError
from diffusion_assets.lineage.forward import forward_lineage
from diffusion_assets.lineage.render import render_reverse
from diffusion_assets.lineage.reverse import parse_dataset, reverse_lineage
from diffusion_assets.lineage.store import open_store
from diffusion_assets.manifests import generation as gm
from diffusion_assets.manifests.io import partition_path, write_table
from tests.lineage.conftest import CATALOG, DATASET, DATE


def back(chain, **kw) -> dict:
    with open_store(chain.data) as store:
        return reverse_lineage(store, **kw)


def test_adapter_traces_back_to_its_dataset_version_images_base_model_and_reports(chain):
    doc = back(chain, adapter_id=chain.adapter_id)
    assert doc["adapter"]["base_model_id"] == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert doc["adapter"]["base_weights_hash"] == "b" * 64
    assert [(d["dataset"], d["dataset_version"], d["images"]) for d in doc["datasets"]] == [
        (DATASET, chain.version, 4)
    ]
    assert sorted(i["image_id"] for i in doc["images"]) == sorted(r["image_id"] for r in chain.rows)
    assert [e["report_id"] for e in doc["evaluations"]] == [chain.report_id]


def test_sources_are_counted_per_catalog_date_model_and_run(chain):
    sources = back(chain, adapter_id=chain.adapter_id)["sources"]
    weights = chain.rows[0]["model_weights_hash"]
    assert sources | {"by_catalog": 0, "by_date": 0, "by_model": 0, "by_run": 0} == {
        "images": 4,
        "with_generation_row": 4,
        "missing": 0,
        "retired": 0,
        "changed_since_build": 0,
        "by_catalog": 0,
        "by_date": 0,
        "by_model": 0,
        "by_run": 0,
    }
    assert sources["by_catalog"] == [{"catalog": CATALOG, "images": 4}]
    assert sources["by_date"] == [{"date": DATE, "images": 4}]
    assert sources["by_model"] == [
        {
            "preset": "sd15",
            "model_id": "stable-diffusion-v1-5/stable-diffusion-v1-5",
            "weights_hash": weights,
            "images": 4,
        }
    ]
    assert sources["by_run"] == [{"dagster_run_id": "gen-run-1", "images": 4}]


@pytest.mark.parametrize("named", ["name", "name@version"])
def test_dataset_traces_back_to_its_images_and_forward_to_its_adapters(chain, named):
    target = DATASET if named == "name" else f"{DATASET}@{chain.version}"
    doc = back(chain, dataset=target)
    assert doc["adapter"] is None
    assert [d["dataset_version"] for d in doc["datasets"]] == [chain.version]
    assert doc["sources"]["images"] == 4
    assert [a["adapter_id"] for a in doc["adapters"]] == [chain.adapter_id]


def test_limit_caps_the_image_list_not_the_counts(chain):
    doc = back(chain, adapter_id=chain.adapter_id, limit=2)
    assert (len(doc["images"]), doc["sources"]["images"], doc["limit"]) == (2, 4, 2)


def test_member_images_regenerated_since_the_build_are_counted_and_noted(world):
    path = partition_path(world.data, gm.KIND, {"catalog": CATALOG, "date": DATE})
    rows = pq.read_table(path).to_pylist()
    rows[0]["sha256"] = "0" * 64
    write_table(path, rows, gm.SCHEMA)
    doc = back(world, adapter_id=world.adapter_id)
    assert doc["sources"]["changed_since_build"] == 1
    assert "1 member images changed since the dataset was built" in doc["notes"]


def test_text_output_summarises_sources_and_lists_images(chain):
    text = render_reverse(back(chain, adapter_id=chain.adapter_id, limit=3))
    assert text.startswith(f"Lineage of adapter {chain.adapter_id}")
    assert f"  by catalog          : {CATALOG} 4" in text
    assert "Images (3 of 4; --limit to change)" in text
    assert "Evaluations (1)" in text


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"adapter_id": "nope"}, "no adapter 'nope'"),
        ({"dataset": "nope"}, "no dataset 'nope'"),
        ({"dataset": "style@0"}, "no dataset 'style@0'"),
    ],
)
def test_unknown_adapters_and_datasets_are_errors(chain, kw, message):
    with pytest.raises(LineageError, match=message):
        back(chain, **kw)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("style", ("style", None)), ("style@abc", ("style", "abc")), ("style@", ("style", None))],
)
def test_dataset_names_may_carry_a_version(text, parsed):
    assert parse_dataset(text) == parsed


def test_retired_images_keep_their_lineage(world):
    """A catalog edit moves rows to ``generation_retired``; they still resolve, flagged as retired."""
    keys = {"catalog": CATALOG, "date": DATE}
    rows = pq.read_table(partition_path(world.data, gm.KIND, keys)).to_pylist()
    write_table(partition_path(world.data, gm.KIND + "_retired", keys), rows[:1], gm.SCHEMA)
    write_table(partition_path(world.data, gm.KIND, keys), rows[1:], gm.SCHEMA)
    with open_store(world.data) as store:
        doc = forward_lineage(store, rows[0]["image_id"])
    assert (doc["source"], doc["image"]["retired"], doc["seed"]["seed"]) == (
        "manifests",
        True,
        rows[0]["seed"],
    )
    assert back(world, adapter_id=world.adapter_id)["sources"]["retired"] == 1
