"""What a training run returns and records: the result, the loss curve file, the manifest row, and the
result of a finished run read back from its files."""

from __future__ import annotations

import json
import os
import resource
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from diffusion_assets.files import atomic_path, sha256_file
from diffusion_assets.training import cache as cache_mod
from diffusion_assets.training.config import LoraLineage, LoraTrainConfig
from diffusion_assets.training.families import FAMILIES
from diffusion_assets.training.metadata import LINEAGE_PREFIX, WEIGHT_NAME, read_adapter_metadata

DIFFUSERS_HEADER_KEYS = ("format", "lora_adapter_metadata")
"""Header keys that are the file format's, not the run's: diffusers' ``save_lora_weights`` writes both
(Flux adapters); kohya-layout files carry only ``format`` (``training.metadata.write_adapter``)."""

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
    target_modules: tuple[str, ...]
    """The module names the LoRA adapted: ``config.target_modules``, else the family's default."""
    steps: int
    final_loss: float
    """Mean loss of the last 10 steps (one step is too noisy: timesteps are random)."""
    train_seconds: float
    """Sum of step times over every session of the run (resumes included); excludes validation."""
    steps_per_second: float
    peak_memory_bytes: int
    device: str
    """Where it trained: ``cuda:N`` (the leased GPU), ``mps`` or ``cpu``."""
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


def loss_figures(rows: list[dict]) -> dict[str, float]:
    """``final_loss`` (mean of the last 10 steps), ``train_seconds`` and ``steps_per_second`` of the loss rows."""
    train_seconds = sum(r["seconds"] for r in rows)
    tail = rows[-min(len(rows), 10) :]
    return {
        "final_loss": sum(r["loss"] for r in tail) / len(tail),
        "train_seconds": train_seconds,
        "steps_per_second": len(rows) / train_seconds if train_seconds else 0.0,
    }


def finished_result(
    out_dir: Path,
    config: LoraTrainConfig,
    lineage: LoraLineage,
    *,
    adapter_id: str,
    base_model_dir: Path,
    cache_root: Path,
    device: str,
    expected_sha256: str | None = None,
) -> TrainResult | None:
    """The result of a finished run of this recipe in ``out_dir``, read back without writing anything.

    None when there is nothing to reuse: no adapter file or loss curve, a file of another recipe (its
    header's ``adapter_id``), fewer loss rows than ``config.steps``, a file whose sha256 is not the
    ``expected_sha256`` the adapters manifest records, or an SD/SDXL file in diffusers' key layout (as
    versions before kohya's layout wrote them). The caller then rewrites the file from the last checkpoint.
    """
    weights_path, loss_path = Path(out_dir) / WEIGHT_NAME, Path(out_dir) / "loss.parquet"
    if not (weights_path.is_file() and loss_path.is_file()):
        return None
    header = read_adapter_metadata(weights_path)
    if header.get(LINEAGE_PREFIX + "adapter_id") != adapter_id:
        return None
    sha256 = sha256_file(weights_path)
    if expected_sha256 is not None and sha256 != expected_sha256:
        return None
    rows = pq.read_table(loss_path).to_pylist()
    if len(rows) != config.steps:
        return None
    family = FAMILIES[header[LINEAGE_PREFIX + "family"]]
    if family.kohya_keys and "lora_adapter_metadata" in header:
        return None  # diffusers' key layout, written before adapters took kohya's: written again
    weights_hash = header[LINEAGE_PREFIX + "base_weights_hash"]
    cache_dir = cache_mod.run_cache_dir(
        cache_root, lineage.dataset_version, weights_hash, config, family.name
    )
    validation = [p for p in (Path(out_dir) / "validation").glob("step-*") if p.name[5:].isdigit()]
    return TrainResult(
        adapter_id=adapter_id,
        weights_path=weights_path,
        sha256=sha256,
        # the class DiffusionPipeline.from_pretrained would load, without loading it
        pipeline_class=json.loads((Path(base_model_dir) / "model_index.json").read_text())["_class_name"],
        family=family.name,
        base_weights_hash=weights_hash,
        target_modules=tuple(config.target_modules or family.target_modules),
        steps=len(rows),
        **loss_figures(rows),
        peak_memory_bytes=peak_memory_bytes(device),
        device=device,
        resumed_from_step=len(rows),
        num_train_images=int(header["ss_num_train_images"]),
        cache_path=cache_dir / cache_mod.CACHE_FILE,
        cache_built=False,
        cache_seconds=0.0,
        loss_path=loss_path,
        validation_dirs=tuple(sorted(validation, key=lambda p: int(p.name[5:]))),
        metadata={k: v for k, v in header.items() if k not in DIFFUSERS_HEADER_KEYS},
    )


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
        "target_modules": ",".join(result.target_modules),
        "config_json": config.to_json(),
        "final_loss": result.final_loss,
        "train_seconds": result.train_seconds,
        "steps_per_second": result.steps_per_second,
        "peak_memory_bytes": result.peak_memory_bytes,
        "device": result.device,
        "dagster_run_id": lineage.dagster_run_id,
        "asset_code_version": asset_code_version,
        "created_at": created_at or datetime.now(UTC),
    }
