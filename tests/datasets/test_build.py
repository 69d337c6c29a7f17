"""Building a dataset version: HF imagefolder layout, dedup, versions, no-op rebuilds and lineage."""

from __future__ import annotations

import datasets as hf_datasets
import duckdb
import numpy as np
import pytest
import yaml
from PIL import Image

from diffusion_assets.datasets.build import build_dataset, read_latest
from diffusion_assets.datasets.members import DatasetBuildError, phash_bits, split_score
from diffusion_assets.manifests import datasets as dm
from diffusion_assets.manifests.io import glob, read_table, schema_problems
from tests.datasets.helpers import (
    CATALOG,
    DATE,
    noisy,
    pattern,
    read_jsonl,
    spec_dict,
    write_captions,
    write_partition,
    write_spec,
)

N_DISTINCT = 12
DUP = "aaa-dup"  # sorts before its original, but comes later in the manifest: it is the one dropped


@pytest.fixture
def world(tmp_path):
    """12 distinct images and a noisy re-save of img05, with captions; returns (tmp_path, data_root)."""
    data_root = tmp_path / "data"
    images = [(f"img{i:02d}", f"prompt {i}", pattern(i)) for i in range(N_DISTINCT)]
    images.append((DUP, "prompt 5 again", noisy(pattern(5), seed=1)))
    write_partition(data_root, images)
    write_captions(data_root, {image_id: f"a pattern number {image_id}" for image_id, _, _ in images})
    return tmp_path, data_root


def build(world, **overrides):
    tmp_path, data_root = world
    return build_dataset(write_spec(tmp_path, **overrides), data_root, run_id="run-1")


def test_planted_near_duplicate_is_close_and_distinct_images_are_far(world):
    _, data_root = world
    bits = {p.stem: phash_bits(p) for p in (data_root / "images" / CATALOG / DATE).glob("*.png")}
    assert (bits[DUP] != bits["img05"]).sum() <= 6
    distinct = [(bits[f"img{i:02d}"] != bits[f"img{j:02d}"]).sum() for i in range(12) for j in range(i)]
    assert min(distinct) > 12


def test_imagefolder_loads_train_and_validation_with_captions(world, tmp_path):
    result = build(world, filters={"dedup_max_distance": 6})
    assert (result.total, result.deduplicated, result.filtered) == (N_DISTINCT, 1, 0)
    assert result.train + result.validation == N_DISTINCT and result.validation >= 1
    captions = {m.image_id: m.caption for m in result.members}
    for loader in ({"path": "imagefolder", "data_dir": str(result.folder)}, {"path": str(result.folder)}):
        ds = hf_datasets.load_dataset(**loader, cache_dir=str(tmp_path / "hf-cache"))
        assert {s: len(ds[s]) for s in ds} == {"train": result.train, "validation": result.validation}
        for split in ds:
            for row in ds[split]:
                assert row["text"] == captions[row["image_id"]] == f"a pattern number {row['image_id']}, sks"
                assert row["image"].size == (32, 32)


def test_sidecars_match_metadata(world):
    result = build(world)
    for split in ("train", "validation"):
        for row in read_jsonl(result.folder / split / "metadata.jsonl"):
            sidecar = (result.folder / split / row["file_name"]).with_suffix(".txt")
            assert sidecar.read_text().strip() == row["text"]


@pytest.mark.parametrize(("distance", "kept", "dropped"), [(6, N_DISTINCT, [(DUP, "img05")]), (None, 13, [])])
def test_dedup_drops_the_later_near_duplicate_only(world, distance, kept, dropped):
    result = build(world, filters={"dedup_max_distance": distance})
    assert (result.total, result.duplicates) == (kept, dropped)
    assert ("img05" in {m.image_id for m in result.members}) and (
        DUP in {m.image_id for m in result.members}
    ) == (distance is None)


def test_rebuild_is_a_no_op(world):
    first = build(world)
    before = {p: p.stat().st_mtime_ns for p in [first.folder, *first.folder.rglob("*")]}
    manifest_before = first.manifest_path.stat().st_mtime_ns
    second = build(world)
    assert (second.version, second.created, first.created) == (first.version, False, True)
    assert {p: p.stat().st_mtime_ns for p in [second.folder, *second.folder.rglob("*")]} == before
    assert second.manifest_path.stat().st_mtime_ns == manifest_before
    assert sorted(p.name for p in first.folder.parent.iterdir()) == [first.version, "LATEST"]  # no temp left


def test_version_changes_when_a_caption_changes(world):
    tmp_path, data_root = world
    first = build(world)
    captions = {i: f"a pattern number {i}" for i in [*(f"img{i:02d}" for i in range(N_DISTINCT)), DUP]}
    captions["img03"] = "a different caption"
    write_captions(data_root, captions)
    second = build(world)
    assert second.version != first.version and second.created
    assert first.folder.is_dir() and second.folder.is_dir()  # versions are immutable, never replaced
    assert read_latest(data_root, "style") == second.version
    changed = next(m for m in second.members if m.image_id == "img03")
    assert (second.folder / changed.file_name).with_suffix(".txt").read_text() == "a different caption, sks\n"
    assert [m.caption for m in second.members if m.image_id != "img03"] == [
        m.caption for m in first.members if m.image_id != "img03"
    ]


@pytest.mark.parametrize(
    ("change", "same"),
    [
        ({"training": {"learning_rate": 0.01}}, True),
        ({"evaluation": {"min_style_gain": 0.5}, "description": "new words"}, True),
        ({"split": {"validation_fraction": 0.3, "seed": 1}}, False),
        ({"resolution": 16}, False),
    ],
    ids=["training", "evaluation+description", "split seed", "resolution"],
)
def test_which_spec_edits_make_a_new_version(world, change, same):
    assert (build(world).version == build(world, **change).version) is same


def test_trigger_prefix(world):
    result = build(world, trigger={"word": "ohwx", "placement": "prefix"})
    assert all(m.caption.startswith("ohwx, a pattern number") for m in result.members)
    assert "trigger word: `ohwx`, placement: `prefix`" in (result.folder / "README.md").read_text()


def test_prompt_captions_and_entry_filter(world):
    result = build(world, captions={"source": "prompt"}, filters={"entries": ["e-img0*"]})
    assert (result.total, result.filtered) == (10, 3)
    assert {m.caption for m in result.members} == {f"prompt {i}, sks" for i in range(10)}


def test_missing_caption_names_the_image_and_the_fix(world):
    tmp_path, data_root = world
    write_captions(data_root, {f"img{i:02d}": "c" for i in range(N_DISTINCT)})  # no caption for DUP
    expected = rf"(?s)1 image\(s\) have no caption.*{DUP}.*materialize the captions asset.*{CATALOG}\|{DATE}"
    with pytest.raises(DatasetBuildError, match=expected):
        build(world)
    assert not (data_root / "datasets").exists()


def test_listed_dates_select_partitions(world):
    _, data_root = world
    write_partition(data_root, [("later", "p", pattern(99))], date="2026-11-29")
    write_captions(data_root, {"later": "a later image"}, date="2026-11-29")
    assert build(world, sources=[{"catalog": CATALOG, "dates": ["2026-11-29"]}]).total == 1
    assert build(world).total == 14  # `all` picks up the new date


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            {"catalog": "nope"},
            r"catalog 'nope' has no generation manifest.*generated_images for a partition of",
        ),
        ({"catalog": CATALOG, "dates": ["2026-01-01"]}, rf"{CATALOG}\|2026-01-01.*\(generated: {DATE}\)"),
    ],
    ids=["unknown catalog", "missing date"],
)
def test_missing_generation_partition_says_what_to_materialize(world, source, expected):
    with pytest.raises(DatasetBuildError, match="(?s)" + expected):
        build(world, sources=[source])


def test_changed_image_file_is_an_error(world):
    _, data_root = world
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(data_root / "images" / CATALOG / DATE / "img04.png")
    with pytest.raises(DatasetBuildError, match="img04"):
        build(world)


def test_score_filter_without_scores_is_an_error(world):
    with pytest.raises(DatasetBuildError, match="min_caption_score is set but 13 caption"):
        build(world, filters={"min_caption_score": 0.5})


def test_card_and_sample_grid(world):
    result = build(world, filters={"dedup_max_distance": 6})
    card = (result.folder / "README.md").read_text()
    assert f"version {result.version}" in card and f"| train | {result.train} |" in card
    assert f"| {CATALOG} | {DATE} | 13 |" in card and "1 near-duplicates" in card
    assert "words per caption: mean 5.0, max 5" in card and "`pattern` (12)" in card
    assert "12 of 12 captions contain it" in card
    with Image.open(result.folder / "sample_grid.png") as grid:
        assert grid.size == (8 * 64, 2 * 64)


def test_membership_manifest_joins_the_generation_manifest(world):
    _, data_root = world
    result = build(world)
    table = read_table(result.manifest_path)
    assert schema_problems(table, dm.SCHEMA, dm.KEY) == []
    assert result.manifest_path == (
        data_root
        / "manifests"
        / "dataset_members"
        / "dataset=style"
        / f"dataset_version={result.version}"
        / "part-0.parquet"
    )
    rows = duckdb.sql(
        f"""
        SELECT m.dataset, m.dataset_version, m.split, m.file_name, m.source_sha256 = g.sha256, m.source_path = g.path,
               g.catalog, g.date, m.dagster_run_id
        FROM read_parquet('{glob(data_root, dm.KIND)}', hive_partitioning = true) m
        JOIN read_parquet('{glob(data_root, "generation")}', hive_partitioning = true) g USING (image_id, catalog, date)
        """
    ).fetchall()
    assert len(rows) == result.total == 13
    assert {r[:2] for r in rows} == {("style", result.version)}
    assert all(r[4] and r[5] and (r[6], str(r[7])) == (CATALOG, DATE) and r[8] == "run-1" for r in rows)
    assert all((result.folder / r[3]).is_file() and r[3].startswith(r[2] + "/") for r in rows)
    assert sorted(r[2] for r in rows) == sorted(m.split for m in result.members)


def test_spec_file_is_recorded_relative_to_the_project(world, monkeypatch):
    tmp_path, _ = world
    monkeypatch.setenv("DIFFUSION_ASSETS_ROOT", str(tmp_path))
    result = build(world)
    rows = read_table(result.manifest_path).to_pylist()
    assert {(r["spec_file"], r["spec_sha256"]) for r in rows} == {
        ("lora_datasets/style.yaml", result.spec_sha256)
    }
    assert yaml.safe_load((tmp_path / "lora_datasets" / "style.yaml").read_text()) == spec_dict()


@pytest.mark.parametrize("placement", ["prefix", "suffix"])
def test_prior_source_images_are_captioned_without_the_trigger(tmp_path, placement):
    data_root = tmp_path / "data"
    write_partition(data_root, [("p0", "a filled circle", pattern(0))], catalog="prior")
    write_partition(data_root, [("s0", "an outlined circle", pattern(1))])
    write_captions(data_root, {"p0": "a filled circle"}, catalog="prior")
    write_captions(data_root, {"s0": "an outlined circle"})
    sources = [{"catalog": CATALOG, "dates": "all"}, {"catalog": "prior", "dates": "all", "prior": True}]
    path = write_spec(
        tmp_path,
        sources=sources,
        trigger={"word": "sks", "placement": placement, "phrase": "in sks style"},
        split={"validation_fraction": 0.0, "seed": 0},
    )
    members = {m.image_id: m for m in build_dataset(path, data_root).members}
    assert (members["p0"].caption, members["p0"].prior) == ("a filled circle", True)
    assert "in sks style" in members["s0"].caption and not members["s0"].prior


def test_one_image_dataset_trains_on_its_image(tmp_path):
    data_root = tmp_path / "data"
    image_id = next(f"x{i}" for i in range(1000) if split_score(0, f"x{i}") < 0.1)
    write_partition(data_root, [(image_id, "a pattern", pattern(0))])
    write_captions(data_root, {image_id: "a pattern, sks"})
    result = build_dataset(write_spec(tmp_path, split={"validation_fraction": 0.1, "seed": 0}), data_root)
    assert (result.train, result.validation) == (1, 0)
    assert (result.folder / "train" / f"{image_id}.png").is_file()
