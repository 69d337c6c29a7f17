"""Dagster operations behind the CLI: register partitions and run jobs on the project's instance."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from diffusion_assets.catalog.load import load_catalog
from diffusion_assets.defs.partitions import CATALOG_PARTITIONS_NAME, generation_key
from diffusion_assets.defs.source_files import (
    CATALOGS,
    DATASET_SPECS,
    SourceFolder,
    file_observation,
    read_source_file,
    unrecorded,
)
from diffusion_assets.paths import prompts_dir, scan_catalog_files


def _sync_folder(
    instance: dg.DagsterInstance, folder: SourceFolder, directory: Path, load: Callable[[Path], object]
) -> list[str]:
    """What the folder's sensor does on a tick, without requesting runs: a partition for every file
    whose name can be a key (valid or not), its hash and named errors recorded unless the instance
    holds that hash already. Problems go to stderr, one per file; returns the partitions added."""
    scan = scan_catalog_files(directory)
    for problem in scan.problems:
        print(problem, file=sys.stderr)
    files = []
    for path in scan.files:
        try:
            file = read_source_file(path, load)
        except OSError as exc:  # deleted or unreadable since the scan
            print(f"{path}: cannot be read ({exc})", file=sys.stderr)
            continue
        if file.problems:
            print(file.problems, file=sys.stderr)
        files.append(file)
    registered = set(instance.get_dynamic_partitions(folder.partitions_name))
    new = [f.name for f in files if f.name not in registered]
    if new:
        instance.add_dynamic_partitions(folder.partitions_name, new)
    for file in unrecorded(instance, folder, files):
        instance.report_runless_asset_event(file_observation(folder, file))
    return new


def sync_partitions(instance: dg.DagsterInstance | None = None) -> list[str]:
    """Give every catalog in prompts/ a partition and record its content hash (prompt_catalog's data
    version) and named errors, as the catalog sensor does, without requesting runs. Problems are
    printed to stderr, one per file; invalid catalogs are registered too, their errors recorded."""
    instance = instance or dg.DagsterInstance.get()
    return _sync_folder(instance, CATALOGS, prompts_dir(), load_catalog)


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
    from diffusion_assets.paths import dataset_specs_dir  # noqa: PLC0415

    _sync_folder(instance, DATASET_SPECS, dataset_specs_dir(), load_spec)


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
