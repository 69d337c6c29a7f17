"""The ``lora_dataset`` asset: a spec in lora_datasets/ becomes an immutable, versioned dataset."""

import dagster as dg

from .conditions import dataset_follows_sources
from .partitions import lora_dataset_partitions, lora_dataset_spec, partitioned_check
from .resources import ProjectResource

DATASET_CODE_VERSION = "lora-dataset-v1"


@dg.asset(
    partitions_def=lora_dataset_partitions,
    deps=[dg.AssetDep("image_captions", partition_mapping=dg.AllPartitionMapping()), lora_dataset_spec],
    automation_condition=dataset_follows_sources(),
    code_version=DATASET_CODE_VERSION,
    group_name="lora",
    kinds={"parquet", "huggingface"},
    check_specs=[
        partitioned_check(
            "captions_have_trigger",
            "lora_dataset",
            lora_dataset_partitions,
            description="Every caption contains the spec's trigger word (when it has one) and no prior "
            "image's caption does: the LoRA learns its style only from captions that name it.",
        )
    ],
)
def lora_dataset(context: dg.AssetExecutionContext, project: ProjectResource):
    """One LoRA training dataset per spec in lora_datasets/: an imagefolder with caption sidecars, a
    dataset card and a membership manifest under `data/datasets/<name>/<version>/`. Builds are
    immutable: unchanged inputs reuse the existing version, any change makes a new one."""
    from diffusion_assets.datasets.build import GRID_FILE, build_dataset  # noqa: PLC0415
    from diffusion_assets.datasets.checks import dataset_caption_report  # noqa: PLC0415
    from diffusion_assets.datasets.load import load_spec  # noqa: PLC0415
    from diffusion_assets.previews import thumbnail_markdown  # noqa: PLC0415

    name = context.partition_key
    spec_path = project.dataset_spec_path(name)
    result = build_dataset(spec_path, project.data_dir(), run_id=context.run_id)
    spec = load_spec(spec_path).spec
    trigger = spec.trigger.word
    report = dataset_caption_report(result.members, trigger)
    if not result.created:
        context.log.info(f"{name}: version {result.version} already built; nothing written")
    yield dg.MaterializeResult(
        data_version=dg.DataVersion(result.version),
        metadata={
            "version": result.version,
            "created": result.created,
            "images": result.total,
            "train": result.train,
            "validation": result.validation,
            "deduplicated": result.deduplicated,
            "filtered": result.filtered,
            "folder": dg.MetadataValue.path(str(result.folder)),
            "manifest": dg.MetadataValue.path(str(result.manifest_path)),
            "card": dg.MetadataValue.path(str(result.folder / "README.md")),
            "sample_grid": dg.MetadataValue.path(str(result.folder / GRID_FILE)),
            "preview": dg.MetadataValue.md(thumbnail_markdown([result.folder / GRID_FILE], cols=1, cell=96)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="captions_have_trigger",
                passed=not report.issues,
                metadata={"trigger": trigger or "(none)", "failing": str(report.failing_ids[:20])},
            )
        ],
    )
