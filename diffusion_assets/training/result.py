"""What a training run returns and records: the result, the loss curve file, the manifest row."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from diffusion_assets.files import atomic_path
from diffusion_assets.training.config import LoraLineage, LoraTrainConfig

LOSS_SCHEMA = pa.schema(
    [
        pa.field("step", pa.int32(), nullable=False),
        pa.field(
            "loss", pa.float64(), nullable=False, metadata={"doc": "batch mean (Min-SNR-weighted if set)"}
        ),
        pa.field("lr", pa.float64(), nullable=False),
        pa.field("seconds", pa.float64(), nullable=False, metadata={"doc": "wall seconds of this step"}),
    ]
)


@dataclass(frozen=True)
class TrainResult:
    """What a run produced, and the figures for its manifest row."""

    adapter_id: str
    weights_path: Path
    sha256: str
    pipeline_class: str
    family: str
    base_weights_hash: str
    steps: int
    final_loss: float
    """Mean loss of the last 10 steps (one step is too noisy: timesteps are random)."""
    train_seconds: float
    """Sum of step times over every session of the run (resumes included); excludes validation."""
    steps_per_second: float
    peak_memory_bytes: int
    """CUDA max allocated on GPU, else this process's max RSS."""
    resumed_from_step: int
    num_train_images: int
    cache_path: Path
    cache_built: bool
    cache_seconds: float
    """Seconds spent encoding the dataset in this call (0 when the cache was read)."""
    loss_path: Path
    validation_dirs: tuple[Path, ...]
    metadata: dict[str, str] = field(repr=False)
    """The adapter file's header (without diffusers' own two keys)."""


def write_loss(path: Path, rows: list[dict]) -> Path:
    """``loss.parquet``: one row per step (step, loss, lr, seconds), written atomically."""
    table = pa.Table.from_pylist(rows, schema=LOSS_SCHEMA)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def peak_memory_bytes(device: str) -> int:
    """CUDA max allocated bytes on a GPU, else the process's max resident set size (Linux: KiB * 1024)."""
    if torch.device(device).type == "cuda":
        return int(torch.cuda.max_memory_allocated())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def manifest_row(
    result: TrainResult,
    config: LoraTrainConfig,
    lineage: LoraLineage,
    *,
    asset_code_version: str,
    data_root: str | os.PathLike | None = None,
    created_at: datetime | None = None,
) -> dict:
    """The ``manifests.adapters`` row of a run; ``path`` is relative to ``data_root`` when it is inside it."""
    path = Path(result.weights_path)
    if data_root is not None and path.resolve().is_relative_to(Path(data_root).resolve()):
        path = path.resolve().relative_to(Path(data_root).resolve())
    return {
        "adapter_id": result.adapter_id,
        "path": path.as_posix(),
        "sha256": result.sha256,
        "dataset_version": lineage.dataset_version,
        "base_model_id": lineage.base_model_id,
        "base_weights_hash": result.base_weights_hash,
        "pipeline_class": result.pipeline_class,
        "trigger_word": lineage.trigger_word,
        "rank": config.rank,
        "alpha": float(config.alpha),
        "learning_rate": config.learning_rate,
        "steps": result.steps,
        "batch_size": config.batch_size,
        "resolution": config.resolution,
        "seed": config.seed,
        "mixed_precision": config.mixed_precision,
        "gradient_checkpointing": config.gradient_checkpointing,
        "min_snr_gamma": config.min_snr_gamma,
        "final_loss": result.final_loss,
        "train_seconds": result.train_seconds,
        "steps_per_second": result.steps_per_second,
        "peak_memory_bytes": result.peak_memory_bytes,
        "dagster_run_id": lineage.dagster_run_id,
        "asset_code_version": asset_code_version,
        "created_at": created_at or datetime.now(UTC),
    }
