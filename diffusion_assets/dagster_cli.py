"""Dagster operations behind the CLI: register partitions and run jobs on the project's instance."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG as RANGE_END_TAG
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_START_TAG as RANGE_START_TAG

from diffusion_assets import runs
from diffusion_assets.catalog.load import load_catalog
from diffusion_assets.defs.partitions import date_partitions, generation_key
from diffusion_assets.defs.source_files import (
    CATALOGS,
    DATASET_SPECS,
    SourceFolder,
    file_observation,
    read_source_file,
    unrecorded,
)
from diffusion_assets.files import BusyError, exclusive
from diffusion_assets.paths import data_root, prompts_dir, scan_catalog_files
from diffusion_assets.yaml_input import load_error_message


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


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def execute_owned(
    instance: dg.DagsterInstance,
    job_name: str,
    partition_key: str | None,
    *,
    run_id: str | None = None,
    tags: dict[str, str] | None = None,
    refuse: Callable[[runs.Holder], str | None] = lambda holder: None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """Run a job in this process as a run of ``instance`` that records this process as its owner.

    ``partition_key`` None with Dagster's range tags in ``tags`` runs a range of partitions as one
    run, as a backfill does. Before the run starts, the pool slots of dead runs are freed (each said
    on stderr) and, while its pools are full, it waits, saying which run it waits for;
    ``refuse(holder)`` may stop it instead (``runs.wait_for_slot``). No daemon watches such a run:
    its owner tags are what lets the next run (or the ``gpu_pool_sensor``) free its slot if this
    process is killed.
    """
    from diffusion_assets.definitions import defs  # noqa: PLC0415

    job = defs.resolve_job_def(job_name)
    for pool in sorted({getattr(node.definition, "pool", None) for node in job.graph.nodes} - {None}):
        runs.wait_for_slot(instance, pool, _say, refuse=refuse)
    return job.execute_in_process(
        instance=instance,
        partition_key=partition_key,
        run_id=run_id,
        tags={**(tags or {}), **runs.Owner.current().tags()},
        raise_on_error=raise_on_error,
    )


def _refuse_invalid(catalog: str) -> None:
    """Exit before any run starts unless ``catalog`` names a valid file in prompts/ (its errors named)."""
    files = {path.stem: path for path in scan_catalog_files(prompts_dir()).files}
    if catalog not in files:
        raise SystemExit(
            f"catalog '{catalog}' is not a valid file in {prompts_dir()}: no {catalog}.yaml there"
        )
    try:
        load_catalog(files[catalog])
    except Exception as exc:  # whatever loading raises is named with its file; nothing was started
        raise SystemExit(
            f"catalog '{catalog}' is not a valid file in {prompts_dir()}; nothing was started:\n"
            + load_error_message(files[catalog], exc)
        ) from exc


def date_range(start: str, end: str | None = None) -> list[str]:
    """The dates from ``start`` to ``end`` (inclusive, ``YYYY-MM-DD``) that are partitions of the
    date dimension; SystemExit naming the bad value and the valid span before anything runs."""
    end = end or start
    known = date_partitions.get_partition_keys()
    for flag, value in (("--date", start), ("--end-date", end)):
        if value not in known:
            raise SystemExit(
                f"{flag} {value!r} is not a date partition: give a real date YYYY-MM-DD from "
                f"{known[0]} to {known[-1]}; nothing was started"
            )
    if end < start:
        raise SystemExit(f"--end-date {end} is before --date {start}; nothing was started")
    return date_partitions.get_partition_keys_in_range(dg.PartitionKeyRange(start, end))


def materialize_catalog(
    catalog: str, date: str, instance: dg.DagsterInstance | None = None, end_date: str | None = None
) -> bool:
    """Run the ``generate_catalog`` job for one partition, or for the dates ``date`` to ``end_date``
    of one catalog, recorded in the instance (visible in the UI). A date range runs as Dagster's
    backfill policy lays it out: runs of up to ``PARTITIONS_PER_RUN`` dates each, one model load per run.

    A second run of a partition that is being generated fails at once naming it, before anything
    starts: this process holds the partitions' locks (the ones the generation step takes) from before
    its run starts, and a run of one of them that holds or waits for a ``gpu`` slot refuses it too.
    """
    from diffusion_assets.defs.generation import PARTITIONS_PER_RUN  # noqa: PLC0415

    dates = date_range(date, end_date)
    instance = instance or dg.DagsterInstance.get()
    sync_partitions(instance)  # every file is a partition, valid or not; only a valid one may run
    _refuse_invalid(catalog)
    ok = True
    for first in range(0, len(dates), PARTITIONS_PER_RUN):
        ok = _materialize_dates(instance, catalog, dates[first : first + PARTITIONS_PER_RUN]) and ok
    return ok


def _materialize_dates(instance: dg.DagsterInstance, catalog: str, dates: list[str]) -> bool:
    from diffusion_assets.manifests import generation as gm  # noqa: PLC0415
    from diffusion_assets.manifests.io import lock_path  # noqa: PLC0415

    keys, run_id = [str(generation_key(catalog, date)) for date in dates], str(uuid.uuid4())

    def same_partition(holder: runs.Holder) -> str | None:
        if holder.partition not in keys or holder.run is None or holder.run.is_finished:
            return None
        return (
            f"partition {holder.partition} is already being generated by {holder}; nothing was started: "
            "wait for that run to finish (or cancel it in the UI), then run again"
        )

    if len(keys) == 1:
        partition_key, tags = keys[0], {}
    else:  # one run for the range, as a backfill launches it
        partition_key, tags = None, {RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]}
    try:
        with ExitStack() as locks:
            for key, date in zip(keys, dates, strict=True):
                # the lock generate_partition takes
                lock = lock_path(data_root(), gm.KIND, {"catalog": catalog, "date": date})
                locks.enter_context(exclusive(lock, f"partition {key}", f"run {run_id}"))
            result = execute_owned(
                instance, "generate_catalog", partition_key, run_id=run_id, tags=tags, refuse=same_partition
            )
    except BusyError as exc:
        raise SystemExit(str(exc)) from exc
    for event in result.get_asset_materialization_events():
        meta = event.materialization.metadata
        print(
            f"{event.asset_key.to_user_string()} [{event.partition}]: {meta['rows'].value} images "
            f"({meta['generated'].value} new, {meta['skipped_existing'].value} already there); "
            f"manifest {meta['manifest'].value}; models loaded in this run: {meta['models_loaded'].value}"
        )
    for check in result.get_asset_check_evaluations():
        where = f" [{check.partition}]" if len(keys) > 1 else ""
        print(f"  check {check.check_name}{where}: {'passed' if check.passed else 'FAILED'}")
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
    instance = instance or dg.DagsterInstance.get()
    sync_partitions(instance)
    _sync_dataset_specs(instance)

    def stage(job: str, partition: str) -> bool:
        result = execute_owned(instance, job, partition, raise_on_error=False)
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
