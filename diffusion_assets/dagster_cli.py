"""Dagster operations behind the CLI: register partitions and run jobs on the project's instance."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from diffusion_assets.catalog.load import load_catalog
from diffusion_assets.defs.partitions import CATALOG_PARTITIONS_NAME, file_observation, generation_key
from diffusion_assets.paths import prompts_dir, scan_catalog_files
from diffusion_assets.yaml_input import load_error_message


def _load_all(directory: Path, load: Callable[[Path], object]) -> list:
    """Every file of the folder that loads; each problem is printed to stderr and skipped, so one
    bad file (a bad name, a shared name, a load that raises anything) never blocks the others."""
    scan = scan_catalog_files(directory)
    for problem in scan.problems:
        print(problem, file=sys.stderr)
    loaded = []
    for path in scan.files:
        try:
            loaded.append(load(path))
        except Exception as exc:  # reported; the other files carry on
            print(load_error_message(path, exc), file=sys.stderr)
    return loaded


def sync_partitions(instance: dg.DagsterInstance | None = None) -> list[str]:
    """Add a catalog partition for every valid catalog in prompts/ and record its content hash as
    prompt_catalog's data version (what the catalog sensor does, without requesting runs).
    Problems are printed to stderr, one per file, and that file is skipped."""
    instance = instance or dg.DagsterInstance.get()
    loaded = _load_all(prompts_dir(), load_catalog)
    new = [c.name for c in loaded if not instance.has_dynamic_partition(CATALOG_PARTITIONS_NAME, c.name)]
    if new:
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, new)
    for catalog in loaded:
        instance.report_runless_asset_event(file_observation("prompt_catalog", catalog.name, catalog.sha256))
    return new


def materialize_catalog(catalog: str, date: str, instance: dg.DagsterInstance | None = None) -> bool:
    """Run the ``generate_catalog`` job for one partition, recorded in the instance (visible in the UI)."""
    from diffusion_assets.definitions import defs  # noqa: PLC0415

    instance = instance or dg.DagsterInstance.get()
    sync_partitions(instance)
    if not instance.has_dynamic_partition(CATALOG_PARTITIONS_NAME, catalog):
        raise SystemExit(f"catalog '{catalog}' is not a valid file in {prompts_dir()}")
    job = defs.resolve_job_def("generate_catalog")
    result = job.execute_in_process(instance=instance, partition_key=str(generation_key(catalog, date)))
    for event in result.get_asset_materialization_events():
        meta = event.materialization.metadata
        print(
            f"{event.asset_key.to_user_string()} [{event.partition}]: {meta['rows'].value} images "
            f"({meta['generated'].value} new, {meta['skipped_existing'].value} already there); "
            f"manifest {meta['manifest'].value}"
        )
    for check in result.get_asset_check_evaluations():
        print(f"  check {check.check_name}: {'passed' if check.passed else 'FAILED'}")
    return result.success


DEMO_CATALOGS = ("shapes_demo", "shapes_outline", "shapes_filled_prior")
DEMO_DATASET = "shapes_outline"


def _sync_dataset_specs(instance: dg.DagsterInstance) -> None:
    from diffusion_assets.datasets.load import load_spec  # noqa: PLC0415
    from diffusion_assets.defs.partitions import LORA_DATASET_PARTITIONS_NAME  # noqa: PLC0415
    from diffusion_assets.paths import dataset_specs_dir  # noqa: PLC0415

    for spec in _load_all(dataset_specs_dir(), load_spec):
        if not instance.has_dynamic_partition(LORA_DATASET_PARTITIONS_NAME, spec.name):
            instance.add_dynamic_partitions(LORA_DATASET_PARTITIONS_NAME, [spec.name])
        instance.report_runless_asset_event(file_observation("lora_dataset_spec", spec.name, spec.sha256))


def run_demo(date: str, instance: dg.DagsterInstance | None = None) -> bool:
    """The README's main job, stage by stage into the project's instance: generate the demo catalogs,
    caption them, build the outline-style dataset, train its LoRA and evaluate it."""
    from diffusion_assets.definitions import defs  # noqa: PLC0415

    instance = instance or dg.DagsterInstance.get()
    sync_partitions(instance)
    _sync_dataset_specs(instance)

    def stage(job: str, partition: str) -> bool:
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance, partition_key=partition, raise_on_error=False
        )
        for event in result.get_asset_materialization_events():
            meta = event.materialization.metadata
            shown = {k: v.value for k, v in meta.items() if k in _SHOWN}
            print(f"{event.asset_key.to_user_string()} [{partition}]: {shown}", flush=True)
        for check in result.get_asset_check_evaluations():
            print(f"  check {check.check_name}: {'passed' if check.passed else 'FAILED'}", flush=True)
        return result.success

    ok = True
    for catalog in DEMO_CATALOGS:
        key = str(generation_key(catalog, date))
        ok = ok and stage("generate_catalog", key) and stage("caption_catalog", key)
    return ok and stage("train_lora", DEMO_DATASET)


_SHOWN = {
    "rows",
    "generated",
    "skipped_existing",
    "captioned",
    "version",
    "images",
    "adapter_id",
    "steps",
    "final_loss",
    "report",
    "manifest",
    "folder",
    "path",
}
