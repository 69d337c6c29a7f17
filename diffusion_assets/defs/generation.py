"""The ``generated_images`` asset and its checks: prompt catalogs become images and manifests."""

import dagster as dg

from diffusion_assets.progress import ThrottledProgress

from .partitions import generation_partitions, partitioned_check, prompt_catalog
from .resources import GpuResource, ProjectResource

GENERATION_CODE_VERSION = "generation-v1"
PROGRESS_LOG_SECONDS = 10.0
"""At most one progress line per this many seconds (the first and last batches are always logged)."""


class GenerationConfig(dg.Config):
    verify_batches: int = 1
    """How many recorded batches the reproducibility check regenerates (0 skips the check)."""


@dg.asset(
    partitions_def=generation_partitions,
    pool="gpu",
    code_version=GENERATION_CODE_VERSION,
    group_name="generation",
    kinds={"pytorch", "diffusers", "parquet"},
    deps=[
        dg.AssetDep(
            prompt_catalog,
            partition_mapping=dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="catalog"),
        )
    ],
    check_specs=[
        partitioned_check(
            "manifest_schema",
            "generated_images",
            generation_partitions,
            description="Manifest matches the pyarrow schema and every image_id is unique.",
        ),
        partitioned_check(
            "files_match_manifest",
            "generated_images",
            generation_partitions,
            description="Every row's PNG exists and its sha256 matches the manifest.",
        ),
        partitioned_check(
            "reproducible",
            "generated_images",
            generation_partitions,
            description="Regenerating a recorded batch gives the same pixels.",
        ),
    ],
)
def generated_images(
    context: dg.AssetExecutionContext, config: GenerationConfig, gpu: GpuResource, project: ProjectResource
):
    """Images for one catalog on one date, written to `data/images/<catalog>/<date>/` with a Parquet
    manifest row each. Re-materializing skips images already present, so a failed run resumes. The
    metadata stays under 10 KB: a small inline preview, and the grid of up to 64 images as a file
    (`data/previews/generation/<catalog>/<date>.png`)."""
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

    keys = context.partition_key.keys_by_dimension
    catalog, date = keys["catalog"], keys["date"]
    data_root = project.data_dir()
    provider = gpu.provider(project)
    run = RunInfo(context.run_id, str(context.partition_key), GENERATION_CODE_VERSION)

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
    verified = [pair for batch_id in batch_ids for pair in verify_batch(provider, result, batch_id)]
    mismatched = [image_id for image_id, same in verified if not same]
    images = [data_root / r["path"] for r in result.rows]
    grid = write_thumbnail_grid(images, data_root / "previews" / "generation" / catalog / f"{date}.png")
    yield dg.MaterializeResult(
        data_version=dg.DataVersion(result.manifest_sha256),
        metadata={
            "rows": len(result.rows),
            "generated": result.generated,
            "skipped_existing": result.skipped,
            "retired_rows": result.retired,
            "models_loaded": provider.loads,
            "manifest": dg.MetadataValue.path(str(result.manifest_path)),
            "catalog_sha256": result.catalog.sha256,
            "device": provider.describe()["device_name"],
            "peak_memory_mb": round(provider.peak_memory_bytes() / 2**20, 1),
            "preview": dg.MetadataValue.md(
                markdown_table(result.rows, ["image_id", "entry_id", "sample_index", "seed", "prompt"])
            ),
            # the event log keeps a small inline preview; the grid of up to 64 images is a file
            "thumbnails": dg.MetadataValue.md(thumbnail_markdown(images)),
            "thumbnail_grid": dg.MetadataValue.path(str(grid) if grid else ""),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="manifest_schema", passed=not problems, metadata={"problems": str(problems)}
            ),
            dg.AssetCheckResult(
                check_name="files_match_manifest",
                passed=not bad_files,
                metadata={"checked": len(result.rows), "mismatched": str(bad_files[:20])},
            ),
            dg.AssetCheckResult(
                check_name="reproducible",
                passed=not mismatched,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"regenerated": len(verified), "mismatched": str(mismatched)},
            ),
        ],
    )
