"""A rerun of a finished recipe changes nothing: the adapter file's bytes, its manifest row, its report id."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import UTC, datetime, timedelta

import pytest
import torch
from safetensors.torch import load_file, save_file

from diffusion_assets.evaluation.evaluate import RunSettings, adapter_report_id
from diffusion_assets.evaluation.plan import shapes_plan
from diffusion_assets.files import sha256_file
from diffusion_assets.manifests import adapters as am
from diffusion_assets.manifests.io import partition_path, read_table
from diffusion_assets.training.from_spec import record_adapter
from diffusion_assets.training.lora import train_lora
from diffusion_assets.training.metadata import read_adapter_metadata
from diffusion_assets.training.result import manifest_row
from tests.training.conftest import config, lineage

CFG = config(steps=2, batch_size=2)
T0 = datetime(2026, 12, 1, tzinfo=UTC)
PLAN = shapes_plan(style="outlined", n_seen=1, n_held_out=1, n_seeds=1)


@pytest.fixture(scope="module")
def reran(sd15_dir, dataset_dir, tmp_path_factory):
    """One tiny recipe trained and recorded, then materialized again by another run."""
    data = tmp_path_factory.mktemp("data")
    out = data / "adapters" / "outline" / "x"
    runs = []
    for run_id, created_at in (("run-1", T0), ("run-2", T0 + timedelta(hours=1))):
        result = train_lora(
            dataset_dir, sd15_dir, out, CFG, lineage(dagster_run_id=run_id), cache_root=data / "c"
        )
        bytes_after = result.weights_path.read_bytes()
        row = manifest_row(
            result,
            CFG,
            lineage(dagster_run_id=run_id),
            asset_code_version="t",
            data_root=data,
            created_at=created_at,
        )
        record_adapter(data, "outline", row)
        # the evaluation report's id, as evaluation_report would compute it right after this run
        clip = sd15_dir / "text_encoder"  # any folder: only its content hash enters the id
        report_id = adapter_report_id(PLAN, sd15_dir, result.weights_path, clip, dataset_dir, RunSettings())
        runs.append((result, bytes_after, row, report_id))
    return data, runs


def test_rerun_leaves_the_adapter_file_byte_for_byte(reran):
    _, ((first, first_bytes, *_), (second, second_bytes, *_)) = reran
    assert second.resumed_from_step == CFG.steps and not second.cache_built
    assert second_bytes == first_bytes
    assert second.sha256 == first.sha256 == sha256_file(second.weights_path)  # the asset's DataVersion
    assert read_adapter_metadata(second.weights_path)["diffusion_assets.dagster_run_id"] == "run-1"


def test_rerun_returns_the_finished_runs_result(reran):
    _, ((first, *_), (second, *_)) = reran
    differ = {"resumed_from_step", "cache_built", "cache_seconds", "peak_memory_bytes"}
    fields = [f.name for f in dataclasses.fields(first) if f.name not in differ]
    assert {f: getattr(second, f) for f in fields} == {f: getattr(first, f) for f in fields}


def test_rerun_keeps_one_manifest_row_as_the_first_run_wrote_it(reran):
    data, ((first, _, first_row, _), _) = reran
    (row,) = read_table(partition_path(data, am.KIND, {"dataset": "outline"})).to_pylist()
    assert row["sha256"] == first.sha256
    assert (row["dagster_run_id"], row["created_at"]) == ("run-1", T0)
    assert row == first_row


def test_rerun_has_the_same_report_id(reran):
    _, ((*_, first_id), (*_, second_id)) = reran
    assert second_id == first_id


def test_report_id_names_the_adapter_recipe_not_its_file_bytes_or_paths(
    reran, sd15_dir, dataset_dir, tmp_path
):
    _, ((first, *_), _) = reran
    clip = sd15_dir / "text_encoder"
    settings = RunSettings()
    original = adapter_report_id(PLAN, sd15_dir, first.weights_path, clip, dataset_dir, settings)
    # 1. everything copied elsewhere (another data root, another models folder): the same id
    moved = tmp_path / "moved"
    base, reference = shutil.copytree(sd15_dir, moved / "base"), shutil.copytree(dataset_dir, moved / "ds")
    adapter = shutil.copytree(first.weights_path.parent, moved / "adapter") / first.weights_path.name
    assert adapter_report_id(PLAN, base, adapter, base / "text_encoder", reference, settings) == original
    # 2. the same recipe id with other header bytes (a new finished_at): the same id
    header = read_adapter_metadata(adapter)
    save_file(load_file(adapter), adapter, metadata={**header, "ss_training_finished_at": "1.0"})
    assert sha256_file(adapter) != first.sha256
    assert adapter_report_id(PLAN, base, adapter, base / "text_encoder", reference, settings) == original
    # 3. another recipe id: another report
    other = {**header, "diffusion_assets.adapter_id": "0" * 20}
    save_file(load_file(adapter), adapter, metadata=other)
    assert adapter_report_id(PLAN, base, adapter, base / "text_encoder", reference, settings) != original


def test_a_file_that_is_not_the_recorded_one_is_written_again(sd15_dir, dataset_dir, tmp_path):
    first = train_lora(dataset_dir, sd15_dir, tmp_path / "run", CFG, lineage(dagster_run_id="run-1"))
    weights = load_file(first.weights_path)
    again = train_lora(
        dataset_dir,
        sd15_dir,
        tmp_path / "run",
        CFG,
        lineage(dagster_run_id="run-2"),
        expected_sha256="0" * 64,
    )
    assert again.adapter_id == first.adapter_id and again.resumed_from_step == CFG.steps
    assert read_adapter_metadata(again.weights_path)["diffusion_assets.dagster_run_id"] == "run-2"
    assert again.sha256 == sha256_file(again.weights_path)
    rewritten = load_file(again.weights_path)
    assert rewritten.keys() == weights.keys() and all(torch.equal(rewritten[k], weights[k]) for k in weights)


def test_an_adapter_in_the_older_diffusers_layout_is_written_again_in_kohyas(sd15_dir, dataset_dir, tmp_path):
    """Files from before adapters took kohya's layout (diffusers' ``unet.<module>.lora.down.weight`` keys
    and ``lora_adapter_metadata``) are rewritten from the last checkpoint, not kept."""
    first = train_lora(dataset_dir, sd15_dir, tmp_path / "run", CFG, lineage(dagster_run_id="run-1"))
    kohya = load_file(first.weights_path)
    old = {}
    for key, tensor in kohya.items():
        stem, part = key.split(".", 1)
        if part != "alpha":
            role = {"lora_down.weight": "lora.down.weight", "lora_up.weight": "lora.up.weight"}[part]
            old[f"unet.{stem.removeprefix('lora_unet_')}.{role}"] = tensor  # (module dots aside)
    header = {**read_adapter_metadata(first.weights_path), "lora_adapter_metadata": "{}"}
    save_file(old, str(first.weights_path), metadata=header)
    again = train_lora(dataset_dir, sd15_dir, tmp_path / "run", CFG, lineage(dagster_run_id="run-2"))
    assert again.resumed_from_step == CFG.steps  # from the checkpoint: no step trained again
    rewritten = load_file(again.weights_path)
    assert rewritten.keys() == kohya.keys() and all(torch.equal(rewritten[k], kohya[k]) for k in kohya)
    assert "lora_adapter_metadata" not in read_adapter_metadata(again.weights_path)
