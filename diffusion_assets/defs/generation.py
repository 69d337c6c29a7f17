"""The ``generated_images`` asset and its checks: prompt catalogs become images and manifests."""

import json
import warnings
from typing import TYPE_CHECKING

import dagster as dg

from diffusion_assets.progress import ThrottledProgress

from .partitions import generation_partitions, partitioned_check, prompt_catalog
from .resources import GpuResource, ProjectResource

if TYPE_CHECKING:
    from diffusion_assets.models.provider import ModelProvider

GENERATION_CODE_VERSION = "generation-v1"
PARTITIONS_PER_RUN = 10
"""A backfill of many dates (or a schedule's catch-up) runs as runs of up to this many partitions of
one catalog each (Dagster's ``BackfillPolicy.multi_run``): the model loads once per run, not once
per partition, and one run holds the ``gpu`` slot for a bounded time, so other work interleaves."""
PROGRESS_LOG_SECONDS = 10.0
"""At most one progress line per this many seconds (the first and last batches are always logged)."""


class GenerationConfig(dg.Config):
    verify_batches: int = 1
    """How many recorded batches the reproducibility check regenerates (0 skips the check)."""


CHECKS = {
    "manifest_schema": "Manifest matches the pyarrow schema and every image_id is unique.",
    "files_match_manifest": "Every row's PNG exists and its sha256 matches the manifest.",
    "reproducible": (
        "Regenerating a recorded batch gives byte-identical PNG files: the same pixels and the same "
        "embedded metadata (when bytes differ, `bytes_differ` names the fields, e.g. after an upgrade)."
    ),
}


with warnings.catch_warnings():
    # Dagster 1.13 calls `backfill_policy` and `MultiToSingleDimensionPartitionMapping` beta and warns
    # at every code-location load; those two notices are silenced here, so a first start stays quiet
    warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*(backfill_policy|MultiToSingle)")
    _generation_asset = dg.asset(
        partitions_def=generation_partitions,
        pool="gpu",
        code_version=GENERATION_CODE_VERSION,
        group_name="generation",
        kinds={"pytorch", "diffusers", "parquet"},
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=PARTITIONS_PER_RUN),
        deps=[
            dg.AssetDep(
                prompt_catalog,
                partition_mapping=dg.MultiToSingleDimensionPartitionMapping(
                    partition_dimension_name="catalog"
                ),
            )
        ],
        check_specs=[
            partitioned_check(name, "generated_images", generation_partitions, description=description)
            for name, description in CHECKS.items()
        ],
    )


@_generation_asset
def generated_images(
    context: dg.AssetExecutionContext, config: GenerationConfig, gpu: GpuResource, project: ProjectResource
) -> None:
    """Images for one catalog on one date, written to `data/images/<catalog>/<date>/` with a Parquet
    manifest row each. Re-materializing skips images already present, so a failed run resumes. The
    metadata stays under 10 KB: a small inline preview, and the grid of up to 64 images as a file
    (`data/previews/generation/<catalog>/<date>.png`).

    A backfill of a date range runs as one run per catalog and up to 10 dates: the model loads once
    for all of them (`models_loaded`), and each partition gets its own metadata and check results.
    If one partition of such a run fails, the partitions before it are on disk but recorded only when
    the run is retried (it skips their images, so nothing is generated twice)."""
    provider = gpu.provider(project, context.log.warning)
    if context.has_partition_key:  # one partition: its data version is its manifest's hash
        metadata, checks, manifest_sha256 = _generate(
            context, config, provider, project, context.partition_key
        )
        yield dg.MaterializeResult(
            data_version=dg.DataVersion(manifest_sha256),
            metadata={**metadata, "models_loaded": provider.loads},
            check_results=[dg.AssetCheckResult(check_name=name, **check) for name, check in checks.items()],
        )
        return
    # a range of partitions in one run (backfill policy): metadata and check results per partition
    keys = context.partition_keys
    for number, key in enumerate(keys, 1):
        context.log.info(f"partition {number}/{len(keys)}: {key}")
        metadata, checks, _ = _generate(context, config, provider, project, key)
        context.add_asset_metadata({**metadata, "models_loaded": provider.loads}, partition_key=key)
        for name, check in checks.items():
            yield dg.AssetCheckEvaluation(
                asset_key=context.asset_key, check_name=name, partition=key, blocking=False, **check
            )
    for output_name in context.assets_def.check_specs_by_output_name:
        yield dg.Output(None, output_name=output_name)  # the checks' evaluations are the events above
    yield dg.MaterializeResult(metadata={"partitions_in_run": len(keys), "models_loaded": provider.loads})


def _generate(
    context: dg.AssetExecutionContext,
    config: GenerationConfig,
    provider: "ModelProvider",
    project: ProjectResource,
    partition_key: str,
) -> tuple[dict, dict[str, dict], str]:
    """Generate one partition; returns its metadata, its checks' ``passed``/``severity``/``metadata``
    by check name, and its manifest's sha256."""
    # heavy libraries load here, in the step, never when the code location is imported
    from diffusion_assets.files import sha256_file  # noqa: PLC0415
    from diffusion_assets.generation.partition import (  # noqa: PLC0415
        RunInfo,
        complete_batches,
        generate_partition,
        verify_batch,
    )
    from diffusion_assets.manifests import generation as gm  # noqa: PLC0415
    from diffusion_assets.manifests.io import read_table, schema_problems  # noqa: PLC0415
    from diffusion_assets.previews import (  # noqa: PLC0415
        markdown_table,
        thumbnail_markdown,
        write_thumbnail_grid,
    )

    keys = generation_partitions.get_partition_key_from_str(str(partition_key)).keys_by_dimension
    catalog, date = keys["catalog"], keys["date"]
    data_root = project.data_dir()
    run = RunInfo(context.run_id, str(partition_key), GENERATION_CODE_VERSION)

    progress = ThrottledProgress(
        lambda done, total: context.log.info(f"{catalog} {date}: batch {done}/{total} written"),
        every_s=PROGRESS_LOG_SECONDS,
    )
    result = generate_partition(
        project.catalog_path(catalog), date, data_root, provider, run, on_batch=progress
    )
    table = read_table(result.manifest_path)
    problems = schema_problems(table, gm.SCHEMA, gm.KEY)
    bad_files = [r["image_id"] for r in result.rows if sha256_file(data_root / r["path"]) != r["sha256"]]
    batch_ids = complete_batches(result.rows)[: config.verify_batches]
    verified = [v for batch_id in batch_ids for v in verify_batch(provider, result, batch_id, run, data_root)]
    mismatched = [v.image_id for v in verified if not v.same_pixels]
    bytes_differ = {v.image_id: list(v.fields) for v in verified if not v.same_bytes}
    images = [data_root / r["path"] for r in result.rows]
    grid = write_thumbnail_grid(images, data_root / "previews" / "generation" / catalog / f"{date}.png")
    metadata = {
        "rows": len(result.rows),
        "generated": result.generated,
        "skipped_existing": result.skipped,
        "retired_rows": result.retired,
        "manifest": dg.MetadataValue.path(str(result.manifest_path)),
        "manifest_sha256": result.manifest_sha256,
        "catalog_sha256": result.catalog.sha256,
        "device": provider.describe()["device_name"],
        "peak_memory_mb": round(provider.peak_memory_bytes() / 2**20, 1),
        "preview": dg.MetadataValue.md(
            markdown_table(result.rows, ["image_id", "entry_id", "sample_index", "seed", "prompt"])
        ),
        # the event log keeps a small inline preview; the grid of up to 64 images is a file
        "thumbnails": dg.MetadataValue.md(thumbnail_markdown(images)),
        "thumbnail_grid": dg.MetadataValue.path(str(grid) if grid else ""),
    }
    checks = {
        "manifest_schema": {"passed": not problems, "metadata": {"problems": str(problems)}},
        "files_match_manifest": {
            "passed": not bad_files,
            "metadata": {"checked": len(result.rows), "mismatched": str(bad_files[:20])},
        },
        "reproducible": {
            "passed": not mismatched and not bytes_differ,
            "severity": dg.AssetCheckSeverity.ERROR,
            "metadata": {
                "regenerated": len(verified),
                "mismatched": str(mismatched),
                # image id → the embedded fields that differ ([] : the same row, other encoded bytes)
                "bytes_differ": json.dumps(bytes_differ, sort_keys=True),
            },
        },
    }
    return metadata, checks, result.manifest_sha256
