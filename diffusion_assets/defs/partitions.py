"""Partitions of the generation stage: catalog (dynamic) × date (daily).

The catalog dimension is dynamic: the catalog sensor adds one partition per file in prompts/ whose
name can be a key (``source_files``).
The date dimension keeps nightly runs apart (each night writes its own folder and manifest) and
feeds the seed, so a backfill of a date range regenerates exactly the same images.
"""

import warnings

import dagster as dg

CATALOG_PARTITIONS_NAME = "catalogs"
START_DATE = "2026-11-01"

catalog_partitions = dg.DynamicPartitionsDefinition(name=CATALOG_PARTITIONS_NAME)
date_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE, end_offset=1, timezone="UTC")
generation_partitions = dg.MultiPartitionsDefinition({"catalog": catalog_partitions, "date": date_partitions})


def generation_key(catalog: str, date: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"catalog": catalog, "date": date})


LORA_DATASET_PARTITIONS_NAME = "lora_datasets"
lora_dataset_partitions = dg.DynamicPartitionsDefinition(name=LORA_DATASET_PARTITIONS_NAME)
"""One partition per spec file in lora_datasets/ (the spec's stem); adapters and reports share it."""


DATA_VERSION_TAG = "dagster/data_version"

prompt_catalog = dg.AssetSpec(
    "prompt_catalog",
    partitions_def=catalog_partitions,
    group_name="generation",
    description="The YAML files in prompts/. The catalog sensor records each file's content hash as its "
    "data version (editing a catalog marks its images stale) and, on an invalid file, every named error: "
    "see a partition's latest observation, or run its `catalog_valid` check.",
    kinds={"yaml"},
)
lora_dataset_spec = dg.AssetSpec(
    "lora_dataset_spec",
    partitions_def=lora_dataset_partitions,
    group_name="lora",
    description="The YAML specs in lora_datasets/. The dataset spec sensor records each file's content "
    "hash as its data version (editing a spec marks its dataset and adapter stale) and, on an invalid "
    "file, every named error: see a partition's latest observation, or run its `spec_valid` check.",
    kinds={"yaml"},
)


def partitioned_check(
    name: str, asset: str, partitions_def: dg.PartitionsDefinition, description: str, blocking: bool = False
) -> dg.AssetCheckSpec:
    """A check spec partitioned like its asset, so the UI shows each partition's own check status
    (an unpartitioned check shows the latest result of any partition). Dagster 1.13 marks
    ``AssetCheckSpec(partitions_def=...)`` as preview and warns at every code-location load; that
    one warning is silenced here, where it is raised, so a first start stays quiet."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", category=dg.PreviewWarning, message=".*partitions_def.*AssetCheckSpec"
        )
        return dg.AssetCheckSpec(
            name, asset=asset, partitions_def=partitions_def, description=description, blocking=blocking
        )
