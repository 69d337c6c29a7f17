"""End to end on a tiny SD 1.5, a random LoRA and a tiny CLIP: images, grids, rows, HTML, verdicts."""

from __future__ import annotations

import html
import json
import re

import pyarrow.parquet as pq
import pytest
import torch
from diffusers import DiffusionPipeline
from PIL import Image

from diffusion_assets.datasets.spec import Evaluation
from diffusion_assets.evaluation import RunSettings, compare_models, evaluate_adapter
from diffusion_assets.evaluation.plan import eval_seeds, seed_range, tuning_seeds
from diffusion_assets.evaluation.report import misses, reading_text
from diffusion_assets.evaluation.tables import write_manifest_partition
from diffusion_assets.files import sha256_file
from diffusion_assets.manifests import evaluation as manifest
from diffusion_assets.manifests import io
from diffusion_assets.seeds import cpu_generator
from tests.evaluation.conftest import BATCH, CREATED_AT, GUIDANCE, STEPS, quick_plan, write_lora

PLAN = quick_plan()
CELL = 32


def test_one_grid_per_seed_with_prompt_rows_and_weight_columns(adapter_report):
    assert len(adapter_report.grid_paths) == len(PLAN.seeds)
    for path in adapter_report.grid_paths:
        with Image.open(path) as grid:
            assert grid.size == (len(PLAN.weights) * CELL, len(PLAN.prompts) * CELL)


def test_exactly_one_row_per_prompt_seed_weight(adapter_report):
    table = pq.read_table(adapter_report.metrics_path)
    assert io.schema_problems(table, manifest.SCHEMA, manifest.KEY) == []
    keys = list(zip(*(table.column(c).to_pylist() for c in ("prompt", "seed", "weight")), strict=True))
    expected = {(p.text, s, w) for p in PLAN.prompts for s in PLAN.seeds for w in PLAN.weights}
    assert len(keys) == len(expected) and set(keys) == expected
    assert set(table.column("adapter_id").to_pylist()) == {"lora-under-test"}
    assert not any(path.startswith("/") for path in table.column("image_path").to_pylist())


def test_weight_zero_reproduces_the_base_model_byte_for_byte(adapter_report, sd15_dir, tmp_path):
    pipe = DiffusionPipeline.from_pretrained(sd15_dir)
    pipe.set_progress_bar_config(disable=True)
    cells = PLAN.cells()
    base = {}
    for start in range(0, len(cells), BATCH):  # the evaluation's batch layout (NOTES: layout changes bits)
        batch = cells[start : start + BATCH]
        images = pipe(
            prompt=[PLAN.prompts[p].text for p, _ in batch],
            num_inference_steps=STEPS,
            guidance_scale=GUIDANCE,
            generator=[cpu_generator(PLAN.seeds[s]) for _, s in batch],
        ).images
        for (p, s), image in zip(batch, images, strict=True):
            image.save(tmp_path / "base.png")
            base[(PLAN.prompts[p].text, PLAN.seeds[s])] = sha256_file(tmp_path / "base.png")
    by_weight = {}
    for row in adapter_report.rows:
        by_weight.setdefault(row["weight"], {})[(row["prompt"], row["seed"])] = row["image_sha256"]
    assert by_weight[0.0] == base
    assert all(by_weight[1.0][key] != base[key] for key in base)  # the LoRA does change the images


def test_a_plain_diffusers_script_remakes_report_images_from_their_rows_alone(
    adapter_report, sd15_dir, tmp_path
):
    """Issue 10 item 8: the row records steps, guidance, scheduler (class and config), size and batch
    layout, so diffusers alone, told nothing else (not the plan, not RunSettings), makes the same PNG
    bytes. Weight-0 rows are the base model (the LoRA disabled), so no adapter is needed."""
    import diffusers

    rows = [r for r in pq.read_table(adapter_report.metrics_path).to_pylist() if r["weight"] == 0.0]
    pipe = getattr(diffusers, rows[0]["pipeline_class"]).from_pretrained(sd15_dir)
    pipe.set_progress_bar_config(disable=True)
    batches: dict[str, list[dict]] = {}
    for row in rows:
        batches.setdefault(row["batch_id"], []).append(row)
    assert len(batches) > 1 and max(len(b) for b in batches.values()) > 1
    for batch in batches.values():
        batch.sort(key=lambda r: r["batch_index"])
        first = batch[0]
        pipe.scheduler = getattr(diffusers, first["scheduler_class"]).from_config(
            json.loads(first["scheduler_config"])
        )
        images = pipe(
            prompt=[r["prompt"] for r in batch],
            num_inference_steps=first["steps"],
            guidance_scale=first["guidance_scale"],
            width=first["width"],
            height=first["height"],
            generator=[torch.Generator("cpu").manual_seed(r["seed"]) for r in batch],
            **json.loads(first["call_kwargs"]),
        ).images
        for row, image in zip(batch, images, strict=True):
            image.save(tmp_path / "again.png")
            assert sha256_file(tmp_path / "again.png") == row["image_sha256"], row["image_path"]
    plan = json.loads((adapter_report.out_dir / "plan.json").read_text())
    assert (plan["generation"]["steps"], plan["generation"]["guidance_scale"]) == (STEPS, GUIDANCE)


def test_summary_has_every_metric_per_weight(adapter_report):
    variants = adapter_report.summary["variants"]
    assert [v["label"] for v in variants] == ["w=0", "w=0.5", "w=1"]
    for entry in variants:
        for key in (
            "clip_t",
            "clip_i",
            "kid_mean",
            "kid_std",
            "fd",
            "diversity",
            "adherence_all",
            "style_ok",
        ):
            assert entry[key] is not None, (entry["label"], key)
        assert set(entry["by_kind"]) == {"trigger", "no_trigger", "held_out"}
    assert set(adapter_report.summary["gains"]) == {"style", "clip_t", "leakage"}
    rows = pq.read_table(adapter_report.metrics_path).to_pylist()
    assert {r["device"] for r in rows} == {"cpu"}
    assert all(r["read_style"] in ("filled", "outlined", "striped", None) for r in rows)
    assert {r["leaked"] is None for r in rows if r["weight"] == 0.0} == {True}
    assert {type(r["leaked"]) for r in rows if r["weight"] > 0} == {bool}  # every weighted image judged
    assert "leakage" in adapter_report.markdown
    assert (
        json.loads((adapter_report.out_dir / "summary.json").read_text())["report_id"]
        == adapter_report.report_id
    )
    assert "style rate gain" in adapter_report.markdown and "| w=0.5 |" in adapter_report.markdown


def test_html_is_self_contained(adapter_report):
    page = adapter_report.html_path.read_text()
    sources = re.findall(r"""src=["']([^"']*)""", page)
    rows = pq.read_table(adapter_report.metrics_path).to_pylist()
    n_missed = sum(bool(misses(r, PLAN.target_style)) for r in rows)
    assert len(sources) == len(rows) + n_missed + 2  # every image, the misses again, the two plots
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "href=" not in page and "<link" not in page and "<script" not in page
    assert "Training loss" in page and "biased upward" in page
    assert all(p.text in page for p in PLAN.prompts)


def test_a_planted_no_op_adapter_fails_the_check(sd15_dir, clip_dir, tmp_path):
    noop = write_lora(sd15_dir, tmp_path / "noop", std=0.0)
    plan = quick_plan(n_held_out=0)
    result = evaluate_adapter(
        sd15_dir,
        noop,
        clip_dir,
        None,
        plan,
        tmp_path / "out",
        RunSettings(steps=STEPS, batch_size=BATCH),
        thresholds=Evaluation(),
        created_at=CREATED_AT,
    )
    by_weight = {}
    for row in result.rows:
        by_weight.setdefault(row["weight"], []).append(row["image_sha256"])
    assert by_weight[0.0] == by_weight[0.5] == by_weight[1.0]
    assert result.passed is False
    assert result.summary["gains"]["style"] == 0 and result.summary["gains"]["clip_t"] == 0
    assert any("style rate gain" in reason for reason in result.reasons)
    assert "**FAIL**" in result.markdown


def test_model_comparison_over_the_same_prompts_and_seeds(sd15_dir, clip_dir, reference_dir, tmp_path):
    from diffusion_assets.models.tiny import build_tiny

    other = build_tiny("sd15", tmp_path / "other", seed=1)
    plan = quick_plan(style=None, n_held_out=0)
    result = compare_models(
        {"tiny-a": sd15_dir, "tiny-b": other},
        plan,
        clip_dir,
        tmp_path / "out",
        RunSettings(steps=STEPS, batch_size=BATCH, kid_subset_size=4),
        reference_images_dir=reference_dir,
    )
    assert [v["label"] for v in result.summary["variants"]] == ["tiny-a", "tiny-b"]
    assert len(result.rows) == 2 * len(plan.prompts) * len(plan.seeds)
    assert {r["weight"] for r in result.rows} == {None} and {r["adapter_id"] for r in result.rows} == {None}
    assert result.passed is None and "gains" not in result.summary
    with Image.open(result.grid_paths[0]) as grid:
        assert grid.size == (2 * CELL, len(plan.prompts) * CELL)


def test_manifest_partition_replaces_a_report_and_keeps_others(adapter_report, tmp_path):
    rows = adapter_report.rows
    write_manifest_partition(tmp_path, "outline", rows)
    other = [r | {"report_id": "other", "row_id": "x" + r["row_id"][1:]} for r in rows[:2]]
    path = write_manifest_partition(tmp_path, "outline", other)
    path = write_manifest_partition(tmp_path, "outline", rows)  # re-running a report replaces its rows
    table = pq.read_table(path)
    assert table.num_rows == len(rows) + 2
    assert path == io.partition_path(tmp_path, manifest.KIND, {"dataset": "outline"})


def test_the_report_prints_where_its_seeds_come_from(adapter_report):
    """Report seeds and tuning seeds come from disjoint documented ranges (``seeds.SEED_PURPOSES``);
    the page and the UI summary say which, and which indices."""
    expected = "2 report seeds: indices 0–1 of the evaluation seed stream of base seed"
    assert expected in adapter_report.markdown
    assert expected in adapter_report.html_path.read_text()
    assert "tuning 1000000–1999999" in adapter_report.markdown


@pytest.mark.parametrize(
    ("seeds", "expected"),
    [
        (lambda: tuning_seeds(3), "3 tuning seeds: indices 1000000–1000002"),
        (lambda: (1, 2), "2 seeds given by hand, from no documented range: [1, 2]"),
        (lambda: eval_seeds(4)[1:], "3 seeds given by hand"),  # not the range's first n: not from it
    ],
)
def test_seed_range_names_the_range_or_says_there_is_none(seeds, expected):
    assert seed_range(seeds()).startswith(expected)


def test_each_prompt_shows_its_weights_side_by_side_with_the_checkers_reading(adapter_report):
    page = adapter_report.html_path.read_text()
    rows = pq.read_table(adapter_report.metrics_path).to_pylist()
    missed = [r for r in rows if misses(r, PLAN.target_style)]
    assert f"Misses ({len(missed)} of {len(rows)} images)" in page
    for row in rows:
        assert html.escape(reading_text(row)) in page
    for prompt in PLAN.prompts:  # one section per prompt, its seeds in order, each with w=0, w=0.5, w=1
        section = page.split(f"<h3>{html.escape(prompt.text)} ", 1)[1].split("<h3>", 1)[0]
        assert re.findall(r"<b>(w=[0-9.]+)</b>", section) == ["w=0", "w=0.5", "w=1"] * len(PLAN.seeds)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"adherence_all": True, "prompt_kind": "trigger", "weight": 1.0, "style_ok": True}, []),
        (
            {
                "adherence_all": True,
                "prompt_kind": "held_out",
                "weight": 1.0,
                "style_ok": False,
                "read_style": "filled",
            },
            ["style: read filled, wanted outlined"],
        ),
        ({"adherence_all": True, "prompt_kind": "trigger", "weight": 0.5, "style_ok": False}, []),
        (
            {
                "adherence_all": False,
                "colour_ok": True,
                "shape_ok": False,
                "background_ok": True,
                "weight": 0.0,
            },
            ["content: wrong shape"],
        ),
        (
            {
                "adherence_all": True,
                "prompt_kind": "no_trigger",
                "weight": 1.0,
                "leaked": True,
                "leaked_attributes": "style",
            },
            ["leaked: style changed from weight 0"],
        ),
    ],
)
def test_a_miss_says_why(row, expected):
    assert misses(row, "outlined") == expected


def test_an_unreadable_image_says_so_under_it():
    assert reading_text({"adherence_all": False, "read_shape": None}) == "unreadable: no shape found"
    assert reading_text({"adherence_all": None}) == ""  # off the shapes world: nothing to read
