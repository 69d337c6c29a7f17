"""deploy/k8s (Helm values, the GPU pod config, the k8s_job_executor run config) loaded through
dagster's, dagster-postgres's and dagster-k8s's own config schemas, down to the Kubernetes Job that
dagster-k8s would submit for a GPU run. A misspelled key anywhere fails."""

from __future__ import annotations

import json

import pytest
import yaml
from dagster._config import process_config, validate_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.storage.dagster_run import DagsterRun
from dagster_k8s import K8sRunLauncher, k8s_job_executor
from dagster_k8s.job import (
    USER_DEFINED_K8S_JOB_CONFIG_SCHEMA,
    construct_dagster_k8s_job,
    get_user_defined_k8s_config,
)
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from diffusion_assets.deploy import K8S_CONFIG_TAG, gpu_k8s_config, gpu_tags
from tests.deploy import helm
from tests.deploy.configs import PROJECT_INSTANCE, ROOT, load, misspelled

IMAGE = "registry.example.com/diffusion-assets:0.1.0"
GPU_JOBS = ["generate_catalog", "caption_catalog", "train_lora"]
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def _instance(values: dict, tmp_path) -> dict:
    """The chart's dagster.yaml for ``values``, loaded by dagster's instance schema, each storage
    through dagster-postgres's and the run launcher through dagster-k8s's."""
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(helm.instance_yaml(values)))
    instance, _ = dagster_instance_config(str(tmp_path))
    for key, storage in [
        ("run_storage", PostgresRunStorage),
        ("event_log_storage", PostgresEventLogStorage),
        ("schedule_storage", PostgresScheduleStorage),
    ]:
        result = process_config(storage.config_type(), instance[key]["config"])
        assert result.success, result.errors
    result = process_config(K8sRunLauncher.config_type(), instance["run_launcher"]["config"])
    if not result.success:
        raise ValueError(f"run_launcher: {[e.message for e in result.errors]}")
    return instance


def _run_pod_job(values: dict, tags: dict[str, str], tmp_path, monkeypatch):
    """The Kubernetes Job dagster-k8s builds for a run with ``tags`` (``K8sRunLauncher.
    _launch_k8s_job_with_args`` without the API call). Only the cluster connection differs: a
    kubeconfig file instead of the in-cluster service account."""
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "unused")
    config = process_config(
        K8sRunLauncher.config_type(), _instance(values, tmp_path)["run_launcher"]["config"]
    )
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    launcher = K8sRunLauncher(
        **{**config.value, "load_incluster_config": False, "kubeconfig_file": str(kubeconfig)}
    )
    run = DagsterRun(job_name="generate_catalog", run_id="0f1e2d3c-0000-0000-0000-000000000000", tags=tags)
    context = launcher.get_container_context_for_run(run)
    return construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config(job_image=IMAGE, run_launcher=launcher),
        args=["dagster", "api", "execute_run"],
        job_name="dagster-run-0f1e2d3c",
        user_defined_k8s_config=context.run_k8s_config,
        component="run_worker",
    )


@pytest.fixture(autouse=True)
def _pg_password(monkeypatch):
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "unused")


def test_helm_values_render_an_instance_with_the_projects_pools_and_run_monitoring(tmp_path):
    instance = _instance(load("deploy/k8s/values.yaml"), tmp_path)
    project = yaml.safe_load(PROJECT_INSTANCE.read_text())
    assert instance["run_storage"]["config"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    assert instance["run_coordinator"]["class"] == "QueuedRunCoordinator"
    # every run_monitoring setting of the project's instance, with the same value
    assert {k: instance["run_monitoring"].get(k) for k in project["run_monitoring"]} == project[
        "run_monitoring"
    ]
    pools = instance["concurrency"]["pools"]
    assert pools["default_limit"] == project["concurrency"]["pools"]["default_limit"]
    assert pools["granularity"] == "run"  # a run pod starts only once its gpu slot is free


def test_a_gpu_run_pod_asks_for_one_gpu_and_mounts_the_shared_weights(tmp_path, monkeypatch):
    job = _run_pod_job(load("deploy/k8s/values.yaml"), gpu_tags(), tmp_path, monkeypatch)
    pod = job.spec.template.spec
    container = pod.containers[0]
    assert container.image == IMAGE
    assert container.resources.limits == {"nvidia.com/gpu": "1"}
    assert container.resources.requests["memory"] == "32Gi"
    assert [(t.key, t.effect) for t in pod.tolerations] == [("nvidia.com/gpu", "NoSchedule")]
    assert {m.mount_path: m.name for m in container.volume_mounts}.items() >= {
        "/models": "models",
        "/data": "data",
    }.items()
    claims = {v.name: v.persistent_volume_claim.claim_name for v in pod.volumes if v.persistent_volume_claim}
    assert claims == {"models": "diffusion-assets-models", "data": "diffusion-assets-data"}
    env = {e.name: e.value for e in container.env}
    assert (
        env["HF_HOME"] == "/models/huggingface"
        and env["DIFFUSION_ASSETS_HASH_CACHE"] == "/models/weights-hashes"
    )
    assert (job.spec.backoff_limit, job.spec.ttl_seconds_after_finished) == (0, 86400)


def test_a_run_without_the_tag_gets_no_gpu(tmp_path, monkeypatch):
    container = _run_pod_job(
        load("deploy/k8s/values.yaml"), {}, tmp_path, monkeypatch
    ).spec.template.spec.containers[0]
    assert not (container.resources and container.resources.limits)


def test_gpu_tags_pass_dagster_k8s_user_defined_config_schema():
    tags = gpu_tags()
    assert validate_config(USER_DEFINED_K8S_JOB_CONFIG_SCHEMA, json.loads(tags[K8S_CONFIG_TAG])).success
    config = get_user_defined_k8s_config(tags)
    assert config.container_config["resources"]["limits"] == {"nvidia.com/gpu": "1"}


def test_k8s_job_executor_run_config_passes_the_executors_schema():
    config = load("deploy/k8s/k8s_job_executor.yaml")["execution"]["config"]
    result = process_config(k8s_job_executor.config_schema.config_type, config)
    assert result.success, result.errors
    assert result.value["step_k8s_config"]["job_spec_config"]["backoff_limit"] == 0


def test_gpu_jobs_carry_the_gpu_tags():
    import dagster as dg

    from diffusion_assets.definitions import defs

    with dg.instance_for_test():
        tags = {name: defs.resolve_job_def(name).tags.get(K8S_CONFIG_TAG) for name in GPU_JOBS}
    expected = json.loads(gpu_tags()[K8S_CONFIG_TAG])
    assert {name: tag and json.loads(tag) for name, tag in tags.items()} == dict.fromkeys(GPU_JOBS, expected)


# Each misspelling, and the part of the libraries (or of the chart's schema) that refuses it.
MISSPELLED_VALUES = [
    ("runLauncher.config.k8sRunLauncher.volumeMounts", "volumeMount"),
    ("runLauncher.config.k8sRunLauncher.runK8sConfig.jobSpecConfig", "jobSpec"),
    ("runLauncher.config.k8sRunLauncher.runK8sConfig.jobSpecConfig.backoffLimit", "backofLimit"),
    ("runLauncher.config.k8sRunLauncher.volumes[0].persistentVolumeClaim", "persistentVolumeClam"),
    ("runLauncher.config.k8sRunLauncher.volumeMounts[0].mountPath", "mountpath"),
    ("dagsterDaemon.runMonitoring.freeSlotsAfterRunEndSeconds", "freeSlotsAfterRunEnd"),
    ("postgresql.postgresqlScheme", "postgresScheme"),
    ("additionalInstanceConfig.concurrency.pools.default_limit", "default_limt"),
]


@pytest.mark.parametrize(("path", "wrong"), MISSPELLED_VALUES)
def test_a_misspelled_helm_value_is_refused(path, wrong, tmp_path, monkeypatch):
    values = misspelled(load("deploy/k8s/values.yaml"), path, wrong)
    with pytest.raises(Exception, match=wrong):
        _run_pod_job(values, gpu_tags(), tmp_path, monkeypatch)


@pytest.mark.parametrize(
    ("path", "wrong"),
    [
        ("container_config", "container_confg"),
        ("container_config.resources", "resourses"),
        ("container_config.resources.requests", "request"),
        ("pod_spec_config.tolerations", "toleration"),
        ("pod_spec_config.tolerations[0].effect", "efect"),
    ],
)
def test_a_misspelled_gpu_pod_key_is_refused(path, wrong, tmp_path, monkeypatch):
    bad = tmp_path / "gpu_run.yaml"
    bad.write_text(yaml.safe_dump(misspelled(gpu_k8s_config(), path, wrong)))
    with pytest.raises(Exception, match=wrong):
        _run_pod_job(load("deploy/k8s/values.yaml"), gpu_tags(bad), tmp_path, monkeypatch)


def test_a_misspelled_executor_key_is_refused():
    config = misspelled(
        load("deploy/k8s/k8s_job_executor.yaml"), "execution.config.max_concurrent", "max_concurent"
    )
    result = process_config(k8s_job_executor.config_schema.config_type, config["execution"]["config"])
    assert not result.success and "max_concurent" in str([e.message for e in result.errors])


def test_gpu_config_missing_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "none.yaml")):
        gpu_tags(tmp_path / "none.yaml")


def test_root_is_the_checkout():
    assert (ROOT / "deploy" / "k8s" / "gpu_run.yaml").is_file()
