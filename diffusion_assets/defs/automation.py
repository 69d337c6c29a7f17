"""Automation: the file sensors, the nightly schedule and the sensor that runs automation conditions.

Policy on a fresh instance (or after a cursor reset): every sensor's first tick takes stock,
registering partitions and recording file hashes, and requests nothing; runs start when a file
changes after that. What follows a run (captions, datasets, opted-in training) is declared on the
assets (``conditions.py``) and run by ``automation_condition_sensor``.
"""

import warnings
from datetime import UTC, datetime

import dagster as dg

from diffusion_assets.catalog.load import load_catalog
from diffusion_assets.datasets.load import load_spec
from diffusion_assets.paths import scan_catalog_files
from diffusion_assets.yaml_input import load_error_message

from .captioning import image_captions
from .datasets import lora_dataset
from .evaluation import evaluation_report
from .jobs import generate_catalog_job
from .partitions import CATALOG_PARTITIONS_NAME, generation_key
from .resources import ProjectResource
from .source_files import CATALOGS, DATASET_SPECS, compare_folder, sensor_result
from .training import lora_adapter


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


@dg.sensor(
    job=generate_catalog_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING
)
def catalog_sensor(context: dg.SensorEvaluationContext, project: ProjectResource) -> dg.SensorResult:
    """Watches prompts/: gives every file a catalog partition and records its hash and errors (an
    invalid one shows them on its `prompt_catalog` partition); when a valid catalog is added or edited,
    requests today's partition. The first tick requests nothing; never deletes partitions or images."""
    tick = compare_folder(context, CATALOGS, project.prompts_dir(), load_catalog)
    date = _today()
    requests = [
        dg.RunRequest(
            run_key=f"{name}|{date}:change-{number}:{digest}",
            partition_key=generation_key(name, date),
            tags={"diffusion_assets/catalog_sha256": digest},
        )
        for name, digest, number in tick.changed
    ]
    return sensor_result(CATALOGS, tick, requests)


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def dataset_spec_sensor(context: dg.SensorEvaluationContext, project: ProjectResource) -> dg.SensorResult:
    """Watches lora_datasets/: gives every spec a dataset partition and records its hash and errors (on
    its `lora_dataset_spec` partition). It launches nothing: `lora_dataset` builds itself once its
    sources are captioned. Never deletes partitions, datasets or adapters."""
    tick = compare_folder(context, DATASET_SPECS, project.datasets_dir(), load_spec)
    return sensor_result(DATASET_SPECS, tick, [])


@dg.schedule(
    job=generate_catalog_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def nightly_generation(context: dg.ScheduleEvaluationContext, project: ProjectResource):
    """Every night at 02:00 UTC, generates that date's partition of each registered, valid catalog
    that declares `schedule: daily`. One run per catalog and date (the run key), so reruns are no-ops."""
    date = context.scheduled_execution_time.astimezone(UTC).strftime("%Y-%m-%d")
    scan = scan_catalog_files(project.prompts_dir())
    for problem in scan.problems:
        context.log.error(problem)
    registered = set(context.instance.get_dynamic_partitions(CATALOG_PARTITIONS_NAME))
    requests = []
    for path in scan.files:
        try:
            catalog = load_catalog(path).catalog
        except Exception as exc:  # one bad catalog never blocks the others
            context.log.error(load_error_message(path, exc))
            continue
        if catalog.schedule != "daily":
            continue
        if path.stem not in registered:
            context.log.warning(f"catalog {path.stem} is not registered yet; the catalog sensor adds it")
            continue
        requests.append(
            dg.RunRequest(run_key=f"{path.stem}|{date}", partition_key=generation_key(path.stem, date))
        )
    return requests or dg.SkipReason("no registered catalog declares `schedule: daily`")


with warnings.catch_warnings():
    # `use_user_code_server` is beta in Dagster 1.13 and warns at every code-location load
    warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*use_user_code_server")
    automation_condition_sensor = dg.AutomationConditionSensorDefinition(
        "automation_condition_sensor",
        target=dg.AssetSelection.assets(image_captions, lora_dataset, lora_adapter, evaluation_report),
        use_user_code_server=True,  # the dataset conditions read specs: custom AutomationConditions
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Runs what the assets' automation conditions ask for: captions follow new images, a "
        "dataset follows its spec once all its sources are captioned, adapters and reports follow a new "
        "dataset version only where the spec sets `auto_train: true`. Its first tick requests nothing.",
    )
