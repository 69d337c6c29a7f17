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


def test_materialize_a_date_range_is_one_run_with_one_model_load(project, tmp_path):
    """``--end-date``: the dates run as Dagster's backfill policy lays them out (up to 10 per run),
    so 3 dates are one run, one model load, 3 partitions each with its own manifest and checks."""
    write_catalog(
        project,
        "span",
        "defaults: {model: sd15, steps: 2, width: 32, height: 32}\nentries: [{id: a, prompt: x}]",
    )
    env = _env(project, tmp_path / "home")
    command = [str(BIN / "diffusion-assets"), "materialize", "span", "--date", "2026-11-26"]
    out = _run([*command, "--end-date", "2026-11-28"], env).stdout
    for date in ("2026-11-26", "2026-11-27", "2026-11-28"):
        assert f"generated_images [span|{date}]: 1 images (1 new, 0 already there)" in out, out
        assert f"check reproducible [span|{date}]: passed" in out
    assert out.count("models loaded in this run: 1") == 3
    rows = duckdb.sql(
        f"select count(*), count(distinct date), count(distinct dagster_run_id) from "
        f"read_parquet('{project}/data/manifests/generation/**/*.parquet', hive_partitioning=true)"
    ).fetchall()
    assert rows == [(3, 3, 1)]
    # a date that is not a partition is refused before anything runs, naming the flag and the span
    bad = _run([*command, "--end-date", "2026-11-31"], env, check=False)
    assert bad.returncode != 0 and "--end-date '2026-11-31' is not a date partition" in bad.stderr
    assert "nothing was started" in bad.stderr


def test_a_range_that_fails_midway_resumes_on_retry_without_duplicates(project, tmp_path):
    """A range run that fails at its second date (here the date's image folder cannot be created:
    a file is in the way) leaves the first date complete on disk; the retry keeps those images,
    generates only what is missing, and records every date once."""
    write_catalog(
        project,
        "span",
        "defaults: {model: sd15, steps: 2, width: 32, height: 32}\nentries: [{id: a, prompt: x}, {id: b, prompt: y}]",
    )
    env = _env(project, tmp_path / "home")
    command = [
        str(BIN / "diffusion-assets"),
        "materialize",
        "span",
        "--date",
        "2026-11-26",
        "--end-date",
        "2026-11-27",
    ]
    blocker = project / "data" / "images" / "span" / "2026-11-27"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a folder")
    failed = _run(command, env, check=False)
    assert failed.returncode != 0, failed.stdout
    first = sorted((project / "data" / "images" / "span" / "2026-11-26").glob("*.png"))
    assert len(first) == 2
    blocker.unlink()
    out = _run(command, env).stdout
    assert "generated_images [span|2026-11-26]: 2 images (0 new, 2 already there)" in out, out
    assert "generated_images [span|2026-11-27]: 2 images (2 new, 0 already there)" in out, out
    rows = duckdb.sql(
        f"select date, count(*), count(distinct image_id) from "
        f"read_parquet('{project}/data/manifests/generation/**/*.parquet', hive_partitioning=true) "
        "group by date order by date"
    ).fetchall()
    assert [(str(d), n, k) for d, n, k in rows] == [("2026-11-26", 2, 2), ("2026-11-27", 2, 2)]


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


def test_instance_commands_use_the_projects_instance_when_dagster_home_is_unset(project):
    """`diffusion-assets materialize` typed in a shell without DAGSTER_HOME (as the README's CLI
    line reads) records in the project's `.dagster_home`, as `make` would, instead of Dagster's
    "DAGSTER_HOME is not set" traceback."""
    write_catalog(project, "demo", "defaults: {model: sd15}\nentries: [{id: a, prompt: x}]")
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    result = _run([str(BIN / "diffusion-assets"), "sync-partitions"], env)
    assert f"using the project's instance {project / '.dagster_home'}" in result.stderr
    assert "Traceback" not in result.stderr
    assert any((project / ".dagster_home").iterdir())  # the instance's storage is there
