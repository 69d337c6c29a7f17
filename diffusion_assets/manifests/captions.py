"""The caption manifest: one row per captioned image, and which captioner wrote it.

Hive keys (directory names, not columns): ``catalog``, ``date`` — the generation partition the
images belong to, so captions join to the generation manifest on ``image_id`` partition by partition.
"""

from __future__ import annotations

import pyarrow as pa

KIND = "captions"
KEY = "image_id"

CAPTIONER_MODES = ("model", "tiny", "prompt")

SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False, metadata={"doc": "generation manifest image_id"}),
        pa.field("caption", pa.string(), nullable=False),
        pa.field(
            "captioner_mode",
            pa.string(),
            nullable=False,
            metadata={"doc": "model (a hub captioner) | tiny (the shapes world's own) | prompt (copied)"},
        ),
        pa.field(
            "captioner_id", pa.string(), nullable=False, metadata={"doc": "model id, folder or 'prompt'"}
        ),
        pa.field("captioner_weights_hash", pa.string(), metadata={"doc": "null for mode 'prompt'"}),
        pa.field("template", pa.string(), metadata={"doc": "format string the caption was filled into"}),
        pa.field(
            "captioner_settings",
            pa.string(),
            nullable=False,
            metadata={"doc": "JSON: prompt, tokens, dtype..."},
        ),
        pa.field(
            "device",
            pa.string(),
            metadata={"doc": "cuda:N (the leased GPU), mps or cpu; null for prompt mode"},
        ),
        pa.field("dagster_run_id", pa.string()),
        pa.field("partition_key", pa.string(), nullable=False),
        pa.field("asset_code_version", pa.string(), nullable=False),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
