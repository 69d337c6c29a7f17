"""End to end: the installed commands, run as a user would, in subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from tests.conftest import write_catalog

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _env(project: Path, home: Path) -> dict:
    env = dict(os.environ, DAGSTER_HOME=str(home), HF_HUB_OFFLINE="1")
    home.mkdir(exist_ok=True)
    shutil.copy(ROOT / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return env


def _run(args: list[str], env: dict, cwd: Path = ROOT, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed:\n{result.stdout}\n{result.stderr}")
    return result


def test_validate_reports_every_problem_and_exits_nonzero(project, tmp_path):
    write_catalog(project, "good", "defaults: {model: sd15}\nentries: [{id: a, prompt: x}]")
    bad = write_catalog(project, "bad", "defaults: {model: sd15}\nentries: [{id: a, prompt: x, width: 12}]")
    result = _run([str(BIN / "diffusion-assets"), "validate"], dict(os.environ), check=False)
    assert result.returncode == 1
    assert "ok   " in result.stdout and "good.yaml: 1 images per partition" in result.stdout
    assert f"{bad}, entry 'a' (entries[0]), field 'width': 12 is not divisible by 8" in result.stderr


def test_validate_fails_files_whose_name_cannot_be_a_partition(project):
    write_catalog(project, "good", "defaults: {model: sd15}\nentries: [{id: a, prompt: x}]")
    write_catalog(project, "a|b", "defaults: {model: sd15}\nentries: [{id: a, prompt: x}]")
    result = _run([str(BIN / "diffusion-assets"), "validate"], dict(os.environ), check=False)
    assert result.returncode == 1
    assert "good.yaml: 1 images per partition" in result.stdout and "a|b.yaml" not in result.stdout
    assert "FAIL " in result.stderr and "a|b.yaml" in result.stderr and "rename it to" in result.stderr


def test_shipped_catalogs_are_valid():
    env = dict(os.environ)
    for key in ("DIFFUSION_ASSETS_ROOT", "DIFFUSION_ASSETS_PROMPTS"):
        env.pop(key, None)
    result = _run([str(BIN / "diffusion-assets"), "validate"], env)
    assert "shapes_demo.yaml" in result.stdout


def test_materialize_command_records_runs_in_the_instance(project, tmp_path):
    write_catalog(
        project,
        "cli",
        "defaults: {model: sd15, steps: 2, width: 32, height: 32}\nentries: [{id: a, prompt: x}]",
    )
    env = _env(project, tmp_path / "home")
    out = _run([str(BIN / "diffusion-assets"), "materialize", "cli", "--date", "2026-11-28"], env).stdout
    assert "generated_images [cli|2026-11-28]: 1 images (1 new, 0 already there)" in out
    assert "check reproducible: passed" in out
    # the same partition through Dagster's own CLI, as the README shows: everything is already there
    _run(
        [
            str(BIN / "dagster"),
            "asset",
            "materialize",
            "--select",
            "generated_images",
            "--partition",
            "cli|2026-11-28",
            "-m",
            "diffusion_assets.definitions",
        ],
        env,
    )
    rows = duckdb.sql(
        f"select count(*), count(distinct dagster_run_id) from "
        f"read_parquet('{project}/data/manifests/generation/**/*.parquet', hive_partitioning=true)"
    ).fetchall()
    assert rows == [(1, 1)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_webserver_serves_one_code_location_named_diffusion_assets(project, tmp_path):
    env = _env(project, tmp_path / "home")
    port = _free_port()
    server = subprocess.Popen(
        [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    query = {
        "query": "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
        "locationOrLoadError { __typename } } } } }"
    }
    try:
        deadline, entries = time.time() + 180, None
        while time.time() < deadline:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/graphql",
                    data=json.dumps(query).encode(),
                    headers={"Content-Type": "application/json"},
                )
                body = json.loads(urllib.request.urlopen(request, timeout=5).read())
                entries = body["data"]["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["loadStatus"] == "LOADED":
                    break
            except OSError:
                pass
            time.sleep(1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert entries is not None, "the webserver never answered"
    assert [(e["name"], e["locationOrLoadError"]["__typename"]) for e in entries] == [
        ("diffusion_assets", "RepositoryLocation")
    ]


@pytest.mark.parametrize("command", [["presets"], ["--help"]])
def test_help_and_presets_run(command):
    out = _run([str(BIN / "diffusion-assets"), *command], dict(os.environ)).stdout
    assert "sdxl" in out or "validate" in out
