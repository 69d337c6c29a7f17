"""Forward lineage: one image, named by file, id or hash, traced to captions, datasets, adapters, reports."""

from __future__ import annotations

import pytest

from diffusion_assets.lineage import LineageError
from diffusion_assets.lineage.forward import forward_lineage
from diffusion_assets.lineage.render import render_forward
from diffusion_assets.lineage.store import build_index, open_store
from tests.lineage.conftest import CATALOG, DATASET, DATE


def trace(chain, target, use_index: bool = False) -> dict:
    with open_store(chain.data, use_index=use_index) as store:
        return forward_lineage(store, target)


@pytest.mark.parametrize(
    ("name", "target", "matched_by"),
    [
        ("png path", lambda c: str(c.png(1)), "image_id"),
        ("image id", lambda c: c.rows[1]["image_id"], "image_id"),
        ("file sha256", lambda c: c.rows[1]["sha256"], "sha256"),
        ("file sha256, upper case", lambda c: c.rows[1]["sha256"].upper(), "sha256"),
        ("pixel sha256", lambda c: c.rows[1]["pixel_sha256"], "pixel_sha256"),
    ],
)
def test_every_way_of_naming_an_image_finds_it(chain, name, target, matched_by):
    doc = trace(chain, target(chain))
    assert doc["image"]["image_id"] == chain.rows[1]["image_id"]
    assert doc["query"]["matched_by"] == matched_by
    assert doc["source"] == "manifests"
    assert doc["integrity"]["status"] == "ok"


def test_generation_sections_hold_catalog_entry_seed_model_scheduler_and_run(chain):
    row = chain.rows[2]
    doc = trace(chain, str(chain.png(2)))
    assert doc["catalog"] | {"current": None} == {
        "name": CATALOG,
        "date": DATE,
        "file": row["catalog_file"],
        "sha256": row["catalog_sha256"],
        "current": None,
        "partition_key": f"{CATALOG}|{DATE}",
    }
    assert doc["catalog"]["current"] == "unchanged"
    assert doc["entry"]["entry_id"] == row["entry_id"] == "shape[colour=blue]"
    assert doc["entry"]["template_vars"] == {"colour": "blue"}
    assert doc["seed"]["seed"] == row["seed"]
    assert doc["model"] | {"refiner": 0} == {
        "preset": "sd15",
        "model_id": row["model_id"],
        "revision": row["model_revision"],
        "weights_hash": row["model_weights_hash"],
        "pipeline_class": "StableDiffusionPipeline",
        "dtype": "float32",
        "refiner": 0,
        "controlnet": None,
        "lora": None,
    }
    assert doc["scheduler"]["class"] == row["scheduler_class"]
    assert doc["scheduler"]["settings"]["num_train_timesteps"] == 1000
    assert doc["run"]["dagster_run_id"] == "gen-run-1"
    assert doc["run"]["partition_key"] == f"{CATALOG}|{DATE}"


def test_downstream_sections_follow_the_image_into_datasets_adapters_and_reports(chain):
    doc = trace(chain, chain.rows[0]["image_id"])
    assert [(c["caption"], c["captioner_id"]) for c in doc["captions"]] == [
        ("a circle number 0", "shapes-blip-tiny")
    ]
    assert doc["captions"][0]["captioner_weights_hash"] == "f" * 64
    assert [(d["dataset"], d["dataset_version"]) for d in doc["datasets"]] == [(DATASET, chain.version)]
    assert doc["datasets"][0]["split"] in ("train", "validation")
    assert doc["datasets"][0]["caption"].startswith("a circle number 0")
    # the adapter trained on another version of the dataset is not in this image's lineage
    assert [a["adapter_id"] for a in doc["adapters"]] == [chain.adapter_id]
    (report,) = doc["evaluations"]
    assert (report["report_id"], report["n"]) == (chain.report_id, 4)
    weights = {w["weight"]: (w["n"], w["clip_t"], w["style_rate"]) for w in report["weights"]}
    assert weights == {0.0: (2, 21.0, 0.0), 1.0: (2, 26.0, 0.5)}


def test_the_index_answers_exactly_as_the_scan_does(world):
    target = world.rows[3]["sha256"]
    scanned = trace(world, target, use_index=False)
    build_index(world.data)
    indexed = trace(world, target, use_index=True)
    assert (scanned["store"], indexed["store"]) == ("scan", "index")
    assert scanned | {"store": None} == indexed | {"store": None}


def test_text_output_has_a_section_per_stage(chain):
    text = render_forward(trace(chain, str(chain.png(0))))
    for heading in (
        "Image",
        "Catalog",
        "Model",
        "Scheduler",
        "Run",
        "Captions (1)",
        "Datasets (1)",
        "Adapters (1)",
        "Evaluations (1)",
    ):
        assert f"\n{heading}\n" in text
    assert f"  seed          : {chain.rows[0]['seed']} (derivation v1" in text
    assert "  dagster run   : gen-run-1" in text
    assert "integrity     : ok: file sha256 matches the manifest" in text


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("0123456789abcdef0123", "no image matches '0123456789abcdef0123'"),
        ("f" * 64, "no image matches"),
        ("nowhere/missing.png", "no such file: nowhere/missing.png"),
    ],
)
def test_unknown_targets_are_errors_that_say_what_was_looked_for(chain, target, message):
    with pytest.raises(LineageError, match=message):
        trace(chain, target)
