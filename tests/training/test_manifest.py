"""The adapters manifest row of a run matches its schema, and the adapter id is a recipe hash."""

from __future__ import annotations

from diffusion_assets.manifests import adapters
from diffusion_assets.manifests.io import partition_path, read_table, schema_problems, write_table
from diffusion_assets.training.config import adapter_id
from diffusion_assets.training.result import manifest_row
from tests.training.conftest import config, lineage


def test_manifest_row_round_trips_through_its_schema(trained, tmp_path):
    row = manifest_row(
        trained.result,
        trained.config,
        trained.lineage,
        asset_code_version="1",
        data_root=trained.out_dir.parent,
    )
    path = partition_path(tmp_path, adapters.KIND, {"dataset": trained.lineage.dataset})
    write_table(path, [row], adapters.SCHEMA)
    table = read_table(path)

    assert schema_problems(table, adapters.SCHEMA, adapters.KEY) == []
    assert set(row) == set(adapters.SCHEMA.names)
    (read,) = table.to_pylist()
    assert read["path"] == "outline-lora/pytorch_lora_weights.safetensors"
    assert read["adapter_id"] == trained.result.adapter_id and read["dagster_run_id"] == "run-123"
    assert read["steps"] == 60 and read["final_loss"] > 0 and read["peak_memory_bytes"] > 0


def test_adapter_id_changes_with_the_recipe_not_with_validation_settings():
    base = adapter_id(config(), lineage(), "h")
    assert adapter_id(config(validation_seeds=(1, 2)), lineage(), "h") == base
    assert adapter_id(config(), lineage(dagster_run_id="other"), "h") == base
    assert adapter_id(config(rank=2), lineage(), "h") != base
    assert adapter_id(config(steps=9), lineage(), "h") != base
    assert adapter_id(config(), lineage(dataset_version="v2"), "h") != base
    assert adapter_id(config(), lineage(), "other weights") != base
    assert len(base) == 20
