"""Train the adapter a dataset spec describes: resolve its dataset version and base model, train,
record the adapters manifest row. The plain function under the ``lora_adapter`` asset."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from diffusion_assets.catalog.load import resolve_model
from diffusion_assets.datasets.build import dataset_folder, read_latest
from diffusion_assets.datasets.load import LoadedSpec, load_spec
from diffusion_assets.files import RECORD_WAIT, exclusive
from diffusion_assets.manifests import adapters as am
from diffusion_assets.manifests.io import lock_path, partition_path, read_table, write_table
from diffusion_assets.models.loading import ModelRef, model_refs
from diffusion_assets.training.config import LoraLineage, LoraTrainConfig, adapter_id
from diffusion_assets.training.lora import train_lora
from diffusion_assets.training.result import TrainResult, manifest_row


class DatasetNotBuiltError(RuntimeError):
    """The spec's dataset has no built version yet."""


@dataclass
class SpecTraining:
    spec: LoadedSpec
    version: str
    dataset_dir: Path
    base: ModelRef
    config: LoraTrainConfig
    lineage: LoraLineage
    adapter_id: str
    out_dir: Path


def plan_training(
    spec_path: Path,
    data_root: Path,
    models_dir: Path,
    project_root: Path,
    overrides: dict | None = None,
    run_id: str | None = None,
) -> SpecTraining:
    """Everything a training run needs, resolved (nothing trained, nothing written)."""
    spec = load_spec(spec_path)
    version = read_latest(data_root, spec.name)
    if version is None:
        raise DatasetNotBuiltError(
            f"dataset '{spec.name}' has no built version: materialize lora_dataset first"
        )
    training = spec.spec.training
    preset = resolve_model(training.base_model, project_root)
    base = model_refs(preset, models_dir, project_root, allow_download=False)["base"]
    fields = {
        **training.trainer_fields(spec.spec.resolution),
        **{k: v for k, v in (overrides or {}).items() if v is not None},
    }
    config = LoraTrainConfig(**fields)
    lineage = LoraLineage(
        dataset=spec.name,
        dataset_version=version,
        base_model_id=preset.name,
        trigger_word=spec.spec.trigger.word,
        base_weights_hash=base.weights_hash,
        dagster_run_id=run_id,
    )
    identity = adapter_id(config, lineage, base.weights_hash)
    out_dir = Path(data_root) / "adapters" / spec.name / identity
    return SpecTraining(
        spec, version, dataset_folder(data_root, spec.name, version), base, config, lineage, identity, out_dir
    )


def record_adapter(data_root: Path, dataset: str, row: dict) -> Path:
    """Upsert one row (by ``adapter_id``) into the dataset's adapters manifest partition.

    Idempotent: a row for the same file (same ``sha256``) is kept as the run that wrote the file recorded
    it; only columns the manifest lacked (added to the schema since) are filled in from ``row``.
    """
    keys = {"dataset": dataset}
    path = partition_path(data_root, am.KIND, keys)
    # several adapter runs may record at once: the read-modify-write queues on the manifest's lock
    with exclusive(lock_path(data_root, am.KIND, keys), f"adapters manifest of {dataset}", wait=RECORD_WAIT):
        old = read_table(path)
        rows = {r["adapter_id"]: r for r in (old.to_pylist() if old is not None else [])}
        recorded = rows.get(row["adapter_id"])
        if recorded is not None and recorded["sha256"] == row["sha256"]:
            if set(row) <= set(recorded):
                return path
            row = {**row, **recorded}
        rows[row["adapter_id"]] = row
        write_table(path, sorted(rows.values(), key=lambda r: r["created_at"]), am.SCHEMA)
    return path


def recorded_adapter(data_root: Path, dataset: str, adapter_id: str) -> dict | None:
    """The adapters-manifest row of ``adapter_id``, or None."""
    table = read_table(partition_path(data_root, am.KIND, {"dataset": dataset}))
    rows = table.to_pylist() if table is not None else []
    return next((r for r in rows if r["adapter_id"] == adapter_id), None)


def latest_adapter(data_root: Path, dataset: str) -> dict | None:
    """The newest adapters-manifest row of a dataset, or None."""
    table = read_table(partition_path(data_root, am.KIND, {"dataset": dataset}))
    rows = table.to_pylist() if table is not None else []
    return max(rows, key=lambda r: r["created_at"]) if rows else None


def train_from_spec(
    plan: SpecTraining, data_root: Path, code_version: str, device: str = "cpu"
) -> tuple[TrainResult, dict]:
    """Train (resuming from the last checkpoint of the same recipe) and record the manifest row.

    A finished recipe whose file matches its recorded sha256 is neither retrained nor rewritten, and its
    recorded row is returned as it stands. A run holds the recipe's lock throughout (its folder,
    checkpoints and file are one writer's), so a second run of the same recipe fails at once.

    Raises:
        BusyError: another process is training this recipe (nothing was written).
    """
    keys = {"dataset": plan.spec.name, "adapter_id": plan.adapter_id}
    with exclusive(lock_path(data_root, am.KIND, keys), f"adapter {plan.adapter_id} of {plan.spec.name}"):
        return _train_from_spec(plan, data_root, code_version, device)


def _train_from_spec(
    plan: SpecTraining, data_root: Path, code_version: str, device: str
) -> tuple[TrainResult, dict]:
    recorded = recorded_adapter(data_root, plan.spec.name, plan.adapter_id)
    result = train_lora(
        plan.dataset_dir,
        plan.base.path,
        plan.out_dir,
        plan.config,
        plan.lineage,
        cache_root=Path(data_root) / "adapters" / ".cache",
        device=device,
        expected_sha256=recorded["sha256"] if recorded else None,
    )
    row = manifest_row(
        result,
        plan.config,
        plan.lineage,
        asset_code_version=code_version,
        data_root=data_root,
        created_at=datetime.now(UTC),
    )
    record_adapter(data_root, plan.spec.name, row)
    return result, recorded_adapter(data_root, plan.spec.name, plan.adapter_id) or row
