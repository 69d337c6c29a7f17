"""The dataset membership manifest: which images (and captions) make up one dataset version.

Hive keys (directory names, not columns): ``dataset``, ``dataset_version`` — the names the adapter
and evaluation manifests use, so the three join on the same columns; ``image_id``, ``catalog`` and
``date`` join a member to its generation row. A version is immutable, so its partition is written
once, when the version folder is built.
"""

from __future__ import annotations

import pyarrow as pa

KIND = "dataset_members"
KEY = "image_id"
HIVE_KEYS = ("dataset", "dataset_version")

SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False, metadata={"doc": "generation manifest image_id"}),
        pa.field("catalog", pa.string(), nullable=False, metadata={"doc": "source generation partition"}),
        pa.field("date", pa.string(), nullable=False, metadata={"doc": "source generation partition"}),
        pa.field("split", pa.string(), nullable=False, metadata={"doc": "train | validation"}),
        pa.field("caption", pa.string(), nullable=False, metadata={"doc": "final text, trigger included"}),
        pa.field(
            "file_name", pa.string(), nullable=False, metadata={"doc": "path inside the version folder"}
        ),
        pa.field(
            "source_path", pa.string(), nullable=False, metadata={"doc": "generated PNG, data-root relative"}
        ),
        pa.field("source_sha256", pa.string(), nullable=False, metadata={"doc": "sha256 of the source PNG"}),
        pa.field("spec_file", pa.string(), nullable=False, metadata={"doc": "project-relative"}),
        pa.field(
            "spec_sha256", pa.string(), nullable=False, metadata={"doc": "sha256 of the spec file bytes"}
        ),
        pa.field("dagster_run_id", pa.string()),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
