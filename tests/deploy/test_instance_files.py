"""Every shipped instance file loads through dagster's instance schema and its storage through
dagster-postgres's, and keeps the project instance's pools and run monitoring."""

from __future__ import annotations

import shutil

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster_postgres import DagsterPostgresStorage

from tests.deploy.configs import PROJECT_INSTANCE, ROOT

INSTANCE_FILES = ["deploy/postgres/dagster.yaml", "deploy/docker/dagster.yaml"]


@pytest.fixture(autouse=True)
def _pg_env(monkeypatch):
    for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
        monkeypatch.setenv(name, "unused")


def _load(relative: str, tmp_path) -> dict:
    shutil.copy(ROOT / relative, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    return config


@pytest.mark.parametrize("relative", INSTANCE_FILES)
def test_instance_file_loads_with_postgres_storage_through_psycopg2(relative, tmp_path):
    config = _load(relative, tmp_path)
    storage = process_config(DagsterPostgresStorage.config_type(), config["storage"]["postgres"])
    assert storage.success, storage.errors
    assert storage.value["postgres_db"]["scheme"] == "postgresql+psycopg2"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"


@pytest.mark.parametrize("relative", INSTANCE_FILES)
def test_instance_file_keeps_the_projects_pool_limit_and_run_monitoring(relative, tmp_path):
    project = yaml.safe_load(PROJECT_INSTANCE.read_text())
    config = yaml.safe_load((ROOT / relative).read_text())
    assert config["run_monitoring"] == project["run_monitoring"]
    assert config["concurrency"]["pools"]["default_limit"] == project["concurrency"]["pools"]["default_limit"]


def test_postgres_instance_is_the_project_instance_on_postgres():
    project = yaml.safe_load(PROJECT_INSTANCE.read_text())
    config = yaml.safe_load((ROOT / "deploy/postgres/dagster.yaml").read_text())
    assert {k: v for k, v in config.items() if k not in ("storage", "run_coordinator")} == project


def test_a_misspelled_instance_key_is_refused(tmp_path):
    text = (
        (ROOT / "deploy/postgres/dagster.yaml")
        .read_text()
        .replace("free_slots_after_run_end_seconds", "free_slots_after_run_end")
    )
    (tmp_path / "dagster.yaml").write_text(text)
    with pytest.raises(Exception, match="free_slots_after_run_end"):
        dagster_instance_config(str(tmp_path))
