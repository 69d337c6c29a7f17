"""The adapters manifest: one row per trained LoRA, with its recipe and what training cost.

Hive key (directory name, not a column): ``dataset``. ``adapter_id`` is sha256[:20] of the recipe
(dataset name and version, base weights hash, trigger word, and the training config's weight-affecting
fields; see ``training.config.adapter_id``), not of the file: the file holds wall-clock timestamps and
carries the id in its own header. ``sha256`` is the file's hash. A rerun of a finished recipe leaves the
file and its row as they are; a retrained one keeps the id, so its row is replaced rather than duplicated.
``config_json`` holds every ``LoraTrainConfig`` field; the recipe columns beside it are for queries.
"""

from __future__ import annotations

import pyarrow as pa

KIND = "adapters"
KEY = "adapter_id"
HIVE_KEYS = ("dataset",)

SCHEMA = pa.schema(
    [
        # identity and file
        pa.field("adapter_id", pa.string(), nullable=False, metadata={"doc": "sha256[:20] of the recipe"}),
        pa.field(
            "path",
            pa.string(),
            nullable=False,
            metadata={"doc": "safetensors path relative to the data root"},
        ),
        pa.field("sha256", pa.string(), nullable=False, metadata={"doc": "sha256 of the safetensors file"}),
        # what it was trained on
        pa.field("dataset_version", pa.string(), nullable=False),
        pa.field("base_model_id", pa.string(), nullable=False),
        pa.field("base_weights_hash", pa.string(), nullable=False),
        pa.field("pipeline_class", pa.string(), nullable=False),
        pa.field("trigger_word", pa.string()),
        # how (LoraTrainConfig)
        pa.field("rank", pa.int32(), nullable=False),
        pa.field("alpha", pa.float64(), nullable=False),
        pa.field("learning_rate", pa.float64(), nullable=False),
        pa.field("steps", pa.int32(), nullable=False),
        pa.field("batch_size", pa.int32(), nullable=False),
        pa.field("resolution", pa.int32(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("mixed_precision", pa.string(), nullable=False, metadata={"doc": "no | bf16 | fp16"}),
        pa.field("gradient_checkpointing", pa.bool_(), nullable=False),
        pa.field("min_snr_gamma", pa.float64(), metadata={"doc": "null: plain MSE"}),
        # nullable: rows written before these columns existed read as null
        pa.field(
            "target_modules",
            pa.string(),
            metadata={"doc": "comma-separated module names adapted (the family's default when unset)"},
        ),
        pa.field(
            "config_json",
            pa.string(),
            metadata={"doc": "the full LoraTrainConfig as sorted JSON (LoraTrainConfig.model_validate_json)"},
        ),
        # outcome and cost
        pa.field("final_loss", pa.float64(), nullable=False, metadata={"doc": "mean of the last 10 steps"}),
        pa.field(
            "train_seconds",
            pa.float64(),
            nullable=False,
            metadata={"doc": "sum of step times, resumes included"},
        ),
        pa.field("steps_per_second", pa.float64(), nullable=False),
        pa.field(
            "peak_memory_bytes", pa.int64(), metadata={"doc": "CUDA max allocated, else process max RSS"}
        ),
        pa.field("device", pa.string(), metadata={"doc": "cuda:N (the leased GPU), mps or cpu"}),
        # run
        pa.field("dagster_run_id", pa.string()),
        pa.field("asset_code_version", pa.string(), nullable=False),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
