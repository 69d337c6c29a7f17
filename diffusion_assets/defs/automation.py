"""Automation: the catalog sensor, the nightly schedule and the job they launch."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from diffusion_assets.catalog.load import CatalogError, load_catalog
from diffusion_assets.datasets.load import load_spec
from diffusion_assets.files import sha256_file
from diffusion_assets.paths import catalog_files

from .jobs import build_dataset_job, generate_catalog_job
from .partitions import (
    CATALOG_PARTITIONS_NAME,
    LORA_DATASET_PARTITIONS_NAME,
    catalog_partitions,
    file_observation,
    generation_key,
    lora_dataset_partitions,
    lora_dataset_spec,
    prompt_catalog,
)
from .resources import ProjectResource


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


@dataclass
class FolderChanges:
    """What a watched folder of YAML specs looks like since the last tick."""

    cursor: dict[str, str]
    changed: list[tuple[str, str]] = field(default_factory=list)
    """(name, content sha256) of valid files that are new or whose content changed."""
    new_partitions: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)


def folder_changes(
    context: dg.SensorEvaluationContext,
    files: list[Path],
    validate: Callable[[Path], object],
    partitions: str,
) -> FolderChanges:
    """Compare files with the cursor's content hashes; validate the changed ones (errors are logged)."""
    changes = FolderChanges(cursor=json.loads(context.cursor) if context.cursor else {})
    for path in files:
        name, digest = path.stem, sha256_file(path)
        if changes.cursor.get(name) == digest:
            continue
        changes.cursor[name] = digest
        try:
            validate(path)
        except ValueError as exc:  # CatalogError and DatasetSpecError are ValueErrors
            context.log.error(str(exc))
            changes.invalid.append(name)
            continue
        changes.changed.append((name, digest))
        if not context.instance.has_dynamic_partition(partitions, name):
            changes.new_partitions.append(name)
    return changes


def _result(
    changes: FolderChanges, partitions_def, source_key: str, requests: list[dg.RunRequest]
) -> dg.SensorResult:
    add = [partitions_def.build_add_request(changes.new_partitions)] if changes.new_partitions else []
    skip = f"invalid: {', '.join(changes.invalid)}" if changes.invalid and not requests else None
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=add,
        asset_events=[file_observation(source_key, name, digest) for name, digest in changes.changed],
        cursor=json.dumps(changes.cursor, sort_keys=True),
        skip_reason=skip,
    )


@dg.sensor(
    job=generate_catalog_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING
)
def catalog_sensor(context: dg.SensorEvaluationContext, project: ProjectResource) -> dg.SensorResult:
    """Watches prompts/: adds one catalog partition per new valid file, records its content hash
    (prompt_catalog's data version, so edited catalogs show their images stale) and requests
    today's partition whenever that hash changes. Never deletes partitions or images; invalid
    catalogs are logged and skipped until their content changes."""
    files = catalog_files(project.prompts_dir())
    changes = folder_changes(context, files, load_catalog, CATALOG_PARTITIONS_NAME)
    requests = [
        dg.RunRequest(
            run_key=f"{name}:{digest}",
            partition_key=generation_key(name, _today()),
            tags={"diffusion_assets/catalog_sha256": digest},
        )
        for name, digest in changes.changed
    ]
    return _result(changes, catalog_partitions, prompt_catalog.key.to_user_string(), requests)


@dg.sensor(job=build_dataset_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def dataset_spec_sensor(context: dg.SensorEvaluationContext, project: ProjectResource) -> dg.SensorResult:
    """Watches lora_datasets/: adds one dataset partition per new valid spec, and rebuilds the
    dataset when a spec's content hash changes (a new immutable version; adapters are not trained
    automatically). Never deletes partitions, datasets or adapters."""
    files = catalog_files(project.datasets_dir())
    changes = folder_changes(context, files, load_spec, LORA_DATASET_PARTITIONS_NAME)
    requests = [
        dg.RunRequest(run_key=f"{name}:{digest}", partition_key=name) for name, digest in changes.changed
    ]
    return _result(changes, lora_dataset_partitions, lora_dataset_spec.key.to_user_string(), requests)


@dg.schedule(
    job=generate_catalog_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def nightly_generation(context: dg.ScheduleEvaluationContext, project: ProjectResource):
    """Every night at 02:00 UTC, generates that date's partition of each registered catalog that
    declares `schedule: daily`. One run per catalog and date (the run key), so reruns are no-ops."""
    date = context.scheduled_execution_time.astimezone(UTC).strftime("%Y-%m-%d")
    requests = []
    for path in catalog_files(project.prompts_dir()):
        try:
            catalog = load_catalog(path).catalog
        except CatalogError as exc:
            context.log.error(str(exc))
            continue
        if catalog.schedule != "daily":
            continue
        if not context.instance.has_dynamic_partition(CATALOG_PARTITIONS_NAME, path.stem):
            context.log.warning(f"catalog {path.stem} is not registered yet; the catalog sensor adds it")
            continue
        requests.append(
            dg.RunRequest(run_key=f"{path.stem}|{date}", partition_key=generation_key(path.stem, date))
        )
    return requests or dg.SkipReason("no registered catalog declares `schedule: daily`")
