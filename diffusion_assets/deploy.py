"""What a GPU job asks its launcher for: the ``dagster-k8s/config`` tag, kept as data in
``deploy/k8s/gpu_run.yaml``.

On Kubernetes, dagster-k8s's ``K8sRunLauncher`` applies a job's ``dagster-k8s/config`` tag to the
pod of each of its runs (one GPU per run); under the ``k8s_job_executor`` the same tag in an
asset's ``op_tags`` applies to that step's pod. Other launchers ignore the tag, so the jobs can carry
it everywhere. The Docker launcher has no per-run tag: its GPU device requests are in
``deploy/docker/dagster.yaml``.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

K8S_CONFIG_TAG = "dagster-k8s/config"
"""The tag dagster-k8s reads user-defined Kubernetes config from (``dagster_k8s.job``)."""
GPU_RUN_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "k8s" / "gpu_run.yaml"


def gpu_k8s_config(path: str | Path = GPU_RUN_CONFIG) -> dict:
    """The user-defined k8s config of a GPU pod (``container_config``, ``pod_spec_config``, ...).

    Raises ``FileNotFoundError`` naming the file when it is missing (an image built without
    ``deploy/``), and ``ValueError`` when it is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the GPU pod config is missing; it ships in the repository's deploy/k8s/ "
            "(install the project with `pip install -e .` from the checkout, as the Dockerfile does)"
        )
    config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict):
        raise ValueError(
            f"{path}: expected a mapping of dagster-k8s config keys, got {type(config).__name__}"
        )
    return config


def gpu_tags(path: str | Path = GPU_RUN_CONFIG) -> dict[str, str]:
    """``{"dagster-k8s/config": <json>}`` for the ``tags`` of a GPU job (or the ``op_tags`` of a
    GPU asset under the ``k8s_job_executor``)."""
    return {K8S_CONFIG_TAG: json.dumps(gpu_k8s_config(path), sort_keys=True)}
