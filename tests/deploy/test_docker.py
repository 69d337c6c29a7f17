"""deploy/docker: the DockerRunLauncher config through dagster-docker's schema, and its container
arguments through docker-py's own conversion into the Engine API's create-container body (what
`docker run --gpus all` sends). No Docker engine is needed; a misspelled key fails."""

from __future__ import annotations

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.utils import parse_env_var
from dagster_docker import DockerRunLauncher
from docker.constants import DEFAULT_DOCKER_API_VERSION
from docker.models.containers import _create_container_args

from tests.deploy.configs import load, misspelled

INSTANCE = "deploy/docker/dagster.yaml"
DEVICE_REQUEST_KEYS = {"driver", "count", "device_ids", "capabilities", "options"}
"""docker.types.DeviceRequest's arguments (docker-py 7)."""


def _create_body(instance: dict, tmp_path, monkeypatch) -> dict:
    """The create-container request body docker-py builds for a run of this launcher."""
    for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
        monkeypatch.setenv(name, "unused")
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(instance))
    loaded, _ = dagster_instance_config(str(tmp_path))
    result = process_config(DockerRunLauncher.config_type(), loaded["run_launcher"]["config"])
    if not result.success:
        raise ValueError(f"run_launcher: {[e.message for e in result.errors]}")
    launcher = DockerRunLauncher.from_config_value(None, result.value)
    for request in launcher.container_kwargs.get("device_requests", []):
        # docker.types.DeviceRequest drops keys it does not know (a GPU request would silently
        # lose its capabilities), so they are checked against its arguments here
        unknown = set(request) - DEVICE_REQUEST_KEYS
        if unknown:
            raise ValueError(f"device_requests: docker-py's DeviceRequest has no {sorted(unknown)}")
    # the arguments DockerRunLauncher._launch_container_with_command passes to containers.create
    kwargs = dict(launcher.container_kwargs)
    kwargs.update(
        image="diffusion-assets:0.1.0",
        command=["dagster", "api", "execute_run"],
        detach=True,
        environment=dict(parse_env_var(v) for v in launcher.env_vars),
        network=launcher.networks[0],
        labels={"dagster/run_id": "r"},
        version=DEFAULT_DOCKER_API_VERSION,
    )
    return _create_container_args(kwargs)


def test_each_run_container_sees_every_gpu_and_the_shared_weights(tmp_path, monkeypatch):
    body = _create_body(load(INSTANCE), tmp_path, monkeypatch)
    host = body["host_config"]
    assert [dict(r) for r in host["DeviceRequests"]] == [
        {"Driver": "nvidia", "Count": -1, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}
    ]
    assert "/srv/diffusion_assets/models:/models" in host["Binds"]
    assert host["ShmSize"] == 8 * 1024**3
    assert host["NetworkMode"] == "diffusion_assets"
    env = body["environment"]
    assert (
        env["HF_HOME"] == "/models/huggingface"
        and env["DIFFUSION_ASSETS_HASH_CACHE"] == "/models/weights-hashes"
    )


@pytest.mark.parametrize(
    ("path", "wrong"),
    [
        ("run_launcher.config.container_kwargs.device_requests", "device_request"),
        ("run_launcher.config.container_kwargs.device_requests[0].capabilities", "capabilites"),
        ("run_launcher.config.container_kwargs.shm_size", "shmsize"),
        ("run_launcher.config.env_vars", "env_var"),
        ("run_launcher.config.networks", "network_names"),
        ("run_monitoring.free_slots_after_run_end_seconds", "free_slots_after_run_end"),
    ],
)
def test_a_misspelled_key_is_refused(path, wrong, tmp_path, monkeypatch):
    with pytest.raises(Exception, match=wrong):
        _create_body(misspelled(load(INSTANCE), path, wrong), tmp_path, monkeypatch)


def test_compose_runs_the_image_the_launcher_starts_on_the_launchers_network():
    compose = load("deploy/docker/compose.yaml")
    services = compose["services"]
    image = services["code"]["image"]
    assert services["code"]["environment"]["DAGSTER_CURRENT_IMAGE"] == image
    assert {services[name]["image"] for name in ("code", "webserver", "daemon")} == {image}
    launcher_networks = load(INSTANCE)["run_launcher"]["config"]["networks"]
    assert [compose["networks"][key]["name"] for key in compose["networks"]] == launcher_networks
    workspace = load("deploy/docker/workspace.yaml")["load_from"][0]["grpc_server"]
    assert (workspace["host"], workspace["location_name"]) == ("code", "diffusion_assets")
    assert str(workspace["port"]) in " ".join(_dockerfile_cmd())
    for name in ("webserver", "daemon"):
        assert "/opt/dagster/workspace.yaml" in services[name]["command"]


def _dockerfile_cmd() -> list[str]:
    from tests.deploy.test_image import instructions

    return yaml.safe_load([arg for op, arg in instructions() if op == "CMD"][-1])


def test_instance_file_is_mounted_where_the_image_keeps_dagster_home():
    binds = load(INSTANCE)["run_launcher"]["config"]["container_kwargs"]["volumes"]
    assert any(b.endswith(":/opt/dagster/dagster_home/dagster.yaml:ro") for b in binds)
