"""Automation: the catalog sensor, the nightly schedule and the job they launch."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import dagster as dg

from diffusion_assets.catalog.load import load_catalog
from diffusion_assets.datasets.load import load_spec
from diffusion_assets.files import sha256_file
from diffusion_assets.paths import scan_catalog_files
from diffusion_assets.yaml_input import load_error_message

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


class Change(NamedTuple):
    """One new content of a valid file: its name, sha256 and how many contents it has had so far."""

    name: str
    digest: str
    number: int


@dataclass
class FolderChanges:
    """What a watched folder of YAML specs looks like since the last tick."""

    cursor: dict[str, dict]
    """name → {"sha256": last content seen, "changes": how many contents seen}."""
    changed: list[Change] = field(default_factory=list)
    """Valid files that are new or whose content changed."""
    new_partitions: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    """Files that failed to load, and files whose name cannot be a partition key."""


def _read_cursor(cursor: str | None) -> dict[str, dict]:
    state = json.loads(cursor) if cursor else {}
    # cursors written before change numbers were kept hold the bare hash
    return {k: {"sha256": v, "changes": 0} if isinstance(v, str) else v for k, v in state.items()}


def folder_changes(
    context: dg.SensorEvaluationContext,
    directory: Path,
    validate: Callable[[Path], object],
    partitions: str,
) -> FolderChanges:
    """Compare the folder's files with the cursor's content hashes and validate the changed ones.

    Every problem is logged and skipped, one file at a time: a bad name, a name two files share,
    an unreadable file, a file that fails to load (whatever it raises).
    """
    scan = scan_catalog_files(directory)
    changes = FolderChanges(cursor=_read_cursor(context.cursor))
    for problem in scan.problems:
        context.log.error(problem)
    changes.invalid.extend(path.name for path in scan.skipped)
    for path in scan.files:
        name = path.stem
        try:
            digest = sha256_file(path)
        except OSError as exc:  # deleted or unreadable since the scan; the next tick looks again
            context.log.error(f"{path}: cannot be read ({exc})")
            changes.invalid.append(path.name)
            continue
        seen = changes.cursor.get(name, {"sha256": None, "changes": 0})
        if seen["sha256"] == digest:
            continue
        # the change number keeps a revert (A→B→A) apart from the first A: run keys are never reused
        number = seen["changes"] + 1
        changes.cursor[name] = {"sha256": digest, "changes": number}
        try:
            validate(path)
        except Exception as exc:  # one bad file never blocks the others
            context.log.error(load_error_message(path, exc))
            changes.invalid.append(path.name)
            continue
        changes.changed.append(Change(name, digest, number))
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
        asset_events=[file_observation(source_key, c.name, c.digest) for c in changes.changed],
        cursor=json.dumps(changes.cursor, sort_keys=True),
        skip_reason=skip,
    )


@dg.sensor(
    job=generate_catalog_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING
)
def catalog_sensor(context: dg.SensorEvaluationContext, project: ProjectResource) -> dg.SensorResult:
    """Watches prompts/: adds one catalog partition per new valid file, records its content hash
    (prompt_catalog's data version, so edited catalogs show their images stale) and requests
    today's partition whenever that hash changes, reverts included. Never deletes partitions or
    images; invalid catalogs are logged and skipped until their content changes; files whose name
    cannot be a partition (or that share a name, x.yaml and x.yml) are logged and skipped until renamed."""
    changes = folder_changes(context, project.prompts_dir(), load_catalog, CATALOG_PARTITIONS_NAME)
    date = _today()
    requests = [
        dg.RunRequest(
            run_key=f"{name}|{date}:change-{number}:{digest}",
            partition_key=generation_key(name, date),
            tags={"diffusion_assets/catalog_sha256": digest},
        )
        for name, digest, number in changes.changed
    ]
    return _result(changes, catalog_partitions, prompt_catalog.key.to_user_string(), requests)


@dg.sensor(job=build_dataset_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def dataset_spec_sensor(context: dg.SensorEvaluationContext, project: ProjectResource) -> dg.SensorResult:
    """Watches lora_datasets/: adds one dataset partition per new valid spec, and rebuilds the
    dataset when a spec's content hash changes (a new immutable version; adapters are not trained
    automatically). Never deletes partitions, datasets or adapters."""
    changes = folder_changes(context, project.datasets_dir(), load_spec, LORA_DATASET_PARTITIONS_NAME)
    requests = [
        dg.RunRequest(run_key=f"{name}:change-{number}:{digest}", partition_key=name)
        for name, digest, number in changes.changed
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
    scan = scan_catalog_files(project.prompts_dir())
    for problem in scan.problems:
        context.log.error(problem)
    requests = []
    for path in scan.files:
        try:
            catalog = load_catalog(path).catalog
        except Exception as exc:  # one bad catalog never blocks the others
            context.log.error(load_error_message(path, exc))
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
