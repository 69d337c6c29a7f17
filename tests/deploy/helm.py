"""The parts of the official Dagster chart's `dagster.yaml` that deploy/k8s/values.yaml feeds, rendered
from the values the way the chart's templates do (`templates/helpers/instance/_run-launcher.tpl`,
`_postgresql.tpl` and `configmap-instance.yaml` of the dagster chart, 1.13).

A key the chart has no value for is an error here, as the chart's values schema (pydantic models
with ``extra="forbid"``) makes it one; what comes out is then checked by dagster's and dagster-k8s's
own config schemas in the tests.
"""

from __future__ import annotations

from typing import Any

# the value keys the chart's K8sRunLauncherConfig model accepts, and the dagster.yaml key each becomes
K8S_RUN_LAUNCHER_KEYS = {
    "image": "job_image",
    "imagePullPolicy": "image_pull_policy",
    "jobNamespace": "job_namespace",
    "loadInclusterConfig": "load_incluster_config",
    "kubeconfigFile": "kubeconfig_file",
    "envConfigMaps": "env_config_maps",
    "envSecrets": "env_secrets",
    "envVars": "env_vars",
    "volumeMounts": "volume_mounts",
    "volumes": "volumes",
    "labels": "labels",
    "failPodOnRunFailure": "fail_pod_on_run_failure",
    "resources": "resources",
    "schedulerName": "scheduler_name",
    "securityContext": "security_context",
    "runK8sConfig": "run_k8s_config",
}
RUN_K8S_CONFIG_KEYS = {
    "containerConfig": "container_config",
    "podSpecConfig": "pod_spec_config",
    "podTemplateSpecMetadata": "pod_template_spec_metadata",
    "jobSpecConfig": "job_spec_config",
    "jobMetadata": "job_metadata",
}
RUN_MONITORING_KEYS = {
    "enabled": "enabled",
    "startTimeoutSeconds": "start_timeout_seconds",
    "cancelTimeoutSeconds": "cancel_timeout_seconds",
    "maxResumeRunAttempts": "max_resume_run_attempts",
    "pollIntervalSeconds": "poll_interval_seconds",
    "freeSlotsAfterRunEndSeconds": "free_slots_after_run_end_seconds",
}
POSTGRESQL_KEYS = {
    "enabled",
    "image",
    "postgresqlHost",
    "postgresqlUsername",
    "postgresqlPassword",
    "postgresqlDatabase",
    "postgresqlParams",
    "postgresqlScheme",
    "service",
}


class ChartValueError(ValueError):
    """A key of the values file that the chart has no value for."""


def _known(section: str, values: dict, keys) -> dict:
    unknown = sorted(set(values) - set(keys))
    if unknown:
        raise ChartValueError(
            f"deploy/k8s/values.yaml, {section}: the chart has no value {unknown}; known: {sorted(keys)}"
        )
    return values


def _renamed(section: str, values: dict, keys: dict[str, str]) -> dict:
    return {keys[k]: v for k, v in _known(section, values, keys).items()}


def k8s_run_launcher(values: dict, *, namespace: str, service_account: str, instance_config_map: str) -> dict:
    """The ``run_launcher.config`` of a K8sRunLauncher, as ``dagsterYaml.runLauncher.k8s`` renders it."""
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher", launcher["type"]
    section = "runLauncher.config.k8sRunLauncher"
    config = _renamed(section, dict(launcher["config"]["k8sRunLauncher"]), K8S_RUN_LAUNCHER_KEYS)
    config["env_config_maps"] = [m["name"] for m in config.get("env_config_maps", []) if "name" in m]
    config["env_secrets"] = [s["name"] for s in config.get("env_secrets", []) if "name" in s]
    for key in ("env_config_maps", "env_secrets", "env_vars", "volume_mounts", "volumes"):
        if not config.get(key):
            config.pop(key, None)
    if "job_image" in config:
        image = config["job_image"]
        config["job_image"] = f"{image['repository']}:{image['tag']}"
    if "run_k8s_config" in config:
        config["run_k8s_config"] = _renamed(
            f"{section}.runK8sConfig", config["run_k8s_config"], RUN_K8S_CONFIG_KEYS
        )
    config.setdefault("job_namespace", namespace)
    config.update(
        service_account_name=service_account,
        dagster_home="/opt/dagster/dagster_home",
        instance_config_map=instance_config_map,
        postgres_password_secret=values["global"]["postgresqlSecretName"],
    )
    return {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": config}


def postgres_db(values: dict) -> dict:
    """``postgres_db`` of the run, event log and schedule storages (``dagsterYaml.postgresql.config``)."""
    pg = _known("postgresql", values["postgresql"], POSTGRESQL_KEYS)
    config: dict[str, Any] = {
        "username": pg["postgresqlUsername"],
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": pg["postgresqlHost"],
        "db_name": pg["postgresqlDatabase"],
        "port": pg["service"]["port"],
        "params": pg.get("postgresqlParams") or {},
    }
    if pg.get("postgresqlScheme"):
        config["scheme"] = pg["postgresqlScheme"]
    return config


def instance_yaml(values: dict, *, namespace: str = "dagster", release: str = "dagster") -> dict:
    """The chart's ``dagster.yaml`` (configmap ``<release>-instance``) for these values: storage,
    run launcher, run coordinator, run monitoring and retries, telemetry and the
    ``additionalInstanceConfig`` appended as it is."""
    storage = {"postgres_db": postgres_db(values)}
    daemon = values["dagsterDaemon"]
    instance: dict[str, Any] = {
        "run_storage": {
            "module": "dagster_postgres.run_storage",
            "class": "PostgresRunStorage",
            "config": storage,
        },
        "event_log_storage": {
            "module": "dagster_postgres.event_log",
            "class": "PostgresEventLogStorage",
            "config": storage,
        },
        "schedule_storage": {
            "module": "dagster_postgres.schedule_storage",
            "class": "PostgresScheduleStorage",
            "config": storage,
        },
        "run_launcher": k8s_run_launcher(
            values, namespace=namespace, service_account=release, instance_config_map=f"{release}-instance"
        ),
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
    }
    coordinator = daemon["runCoordinator"]
    if daemon["enabled"] and coordinator["enabled"]:
        assert coordinator["type"] == "QueuedRunCoordinator"
        queued = coordinator["config"]["queuedRunCoordinator"]
        config = {"max_concurrent_runs": queued["maxConcurrentRuns"]} if "maxConcurrentRuns" in queued else {}
        instance["run_coordinator"] = {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": config,
        }
    monitoring = daemon.get("runMonitoring", {})
    if daemon["enabled"] and monitoring.get("enabled"):
        instance["run_monitoring"] = _renamed("dagsterDaemon.runMonitoring", monitoring, RUN_MONITORING_KEYS)
    retries = daemon.get("runRetries", {})
    if daemon["enabled"] and retries.get("enabled"):
        instance["run_retries"] = {"enabled": True, "max_retries": retries.get("maxRetries", 0)}
    instance.update(values.get("additionalInstanceConfig") or {})
    return instance
