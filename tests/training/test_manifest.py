"""The adapters manifest row of a run matches its schema, and the adapter id is a recipe hash."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pyarrow as pa

from diffusion_assets.manifests import adapters
from diffusion_assets.manifests.io import dataset, partition_path, read_table, schema_problems, write_table
from diffusion_assets.training.config import LoraTrainConfig, adapter_id
from diffusion_assets.training.from_spec import record_adapter
from diffusion_assets.training.result import manifest_row
from tests.training.conftest import config, lineage

# every field away from its default, so a field the row dropped could not pass unnoticed
EVERY_FIELD = LoraTrainConfig(
    rank=2,
    alpha=3.0,
    learning_rate=2e-3,
    lr_warmup_steps=3,
    weight_decay=0.0,
    max_grad_norm=0.5,
    steps=7,
    batch_size=3,
    resolution=64,
    seed=11,
    mixed_precision="bf16",
    gradient_checkpointing=True,
    min_snr_gamma=5.0,
    latents="sample",
    target_modules=("to_q", "to_v"),
    max_sequence_length=77,
    checkpoint_every=3,
    validation_every=2,
    validation_prompts=("a prompt",),
    validation_seeds=(1, 2),
    validation_steps=5,
    validation_guidance=3.0,
    lora_scale=0.5,
)
NEW_COLUMNS = ("target_modules", "config_json")


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


def test_every_trainer_field_is_recoverable_from_the_row(trained, tmp_path):
    assert all(getattr(EVERY_FIELD, n) != f.default for n, f in LoraTrainConfig.model_fields.items())
    row = manifest_row(trained.result, EVERY_FIELD, trained.lineage, asset_code_version="1")
    path = partition_path(tmp_path, adapters.KIND, {"dataset": "outline"})
    write_table(path, [row], adapters.SCHEMA)
    (read,) = read_table(path).to_pylist()

    assert set(json.loads(read["config_json"])) == set(LoraTrainConfig.model_fields)
    assert LoraTrainConfig.model_validate_json(read["config_json"]) == EVERY_FIELD
    assert read["config_json"] == EVERY_FIELD.to_json()  # sorted keys: equal configs, equal strings


def test_target_modules_column_names_the_modules_adapted(trained):
    row = manifest_row(trained.result, trained.config, trained.lineage, asset_code_version="1")
    assert trained.config.target_modules is None  # the family's default, resolved in the row
    assert row["target_modules"] == "to_q,to_k,to_v,to_out.0"


def _row(trained, **overrides) -> dict:
    values = manifest_row(
        trained.result,
        trained.config,
        trained.lineage,
        asset_code_version="1",
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    return {**values, **overrides}


def test_recording_the_same_file_again_writes_nothing(trained, tmp_path):
    path = record_adapter(tmp_path, "outline", _row(trained))
    before = (path.read_bytes(), os.stat(path).st_mtime_ns)
    again = _row(trained, dagster_run_id="run-2", created_at=datetime(2026, 12, 2, tzinfo=UTC))
    record_adapter(tmp_path, "outline", again)

    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == before
    (row,) = read_table(path).to_pylist()
    assert row["dagster_run_id"] == "run-123"


def test_recording_another_file_of_the_recipe_replaces_its_row(trained, tmp_path):
    record_adapter(tmp_path, "outline", _row(trained))
    path = record_adapter(tmp_path, "outline", _row(trained, sha256="f" * 64, dagster_run_id="run-2"))
    (row,) = read_table(path).to_pylist()
    assert (row["sha256"], row["dagster_run_id"]) == ("f" * 64, "run-2")


def test_a_manifest_without_the_new_columns_reads_and_is_filled_in(trained, tmp_path):
    old_schema = pa.schema([f for f in adapters.SCHEMA if f.name not in NEW_COLUMNS])
    row = _row(trained)
    old_row = {k: v for k, v in row.items() if k not in NEW_COLUMNS}
    path = partition_path(tmp_path, adapters.KIND, {"dataset": "outline"})
    write_table(path, [old_row, {**old_row, "adapter_id": "other"}], old_schema)

    table = dataset(tmp_path, adapters.KIND, schema=adapters.SCHEMA).to_table()
    assert table.column("config_json").to_pylist() == [None, None]
    # recording the same file again fills in the columns it lacked, and keeps the rest
    record_adapter(tmp_path, "outline", _row(trained, dagster_run_id="run-2"))
    table = read_table(path)
    assert schema_problems(table, adapters.SCHEMA, adapters.KEY) == []
    rows = {r["adapter_id"]: r for r in table.to_pylist()}
    assert rows[row["adapter_id"]] == row
    assert rows["other"]["config_json"] is None


def test_the_row_says_where_the_adapter_trained(trained):
    assert _row(trained)["device"] == trained.result.device == "cpu"
