"""Automation: the catalog sensor, the nightly schedule and the job they launch."""

import json
from datetime import UTC, datetime

import dagster as dg

from diffusion_assets.catalog.load import CatalogError, load_catalog
from diffusion_assets.files import sha256_file
from diffusion_assets.paths import catalog_files

from .generation import generated_images
from .partitions import CATALOG_PARTITIONS_NAME, catalog_partitions, generation_key, generation_partitions
from .resources import ProjectResource

generate_catalog_job = dg.define_asset_job(
    "generate_catalog",
    selection=[generated_images],
    partitions_def=generation_partitions,
    description="Generate one catalog × date partition of images.",
)


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


@dg.sensor(
    job=generate_catalog_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING
)
def catalog_sensor(context: dg.SensorEvaluationContext, project: ProjectResource) -> dg.SensorResult:
    """Watches prompts/: adds one catalog partition per new valid file, and requests today's
    partition whenever a catalog's content hash changes. Never deletes partitions or images;
    invalid catalogs are logged and skipped until their content changes."""
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    new_partitions, requests, skipped = [], [], []
    for path in catalog_files(project.prompts_dir()):
        name, digest = path.stem, sha256_file(path)
        if seen.get(name) == digest:
            continue
        seen[name] = digest
        try:
            load_catalog(path)
        except CatalogError as exc:
            context.log.error(str(exc))
            skipped.append(name)
            continue
        if not context.instance.has_dynamic_partition(CATALOG_PARTITIONS_NAME, name):
            new_partitions.append(name)
        requests.append(
            dg.RunRequest(
                run_key=f"{name}:{digest}",
                partition_key=generation_key(name, _today()),
                tags={"diffusion_assets/catalog_sha256": digest},
            )
        )
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[catalog_partitions.build_add_request(new_partitions)]
        if new_partitions
        else [],
        cursor=json.dumps(seen, sort_keys=True),
        skip_reason=f"invalid catalogs: {', '.join(skipped)}" if skipped and not requests else None,
    )


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
