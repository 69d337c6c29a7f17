"""Crash safety of the gpu pool, end to end: real commands killed with SIGKILL, then run again.

Each test runs the installed commands in subprocesses on a private DAGSTER_HOME with the shipped
``dagster.yaml``, over tiny ``sd15`` catalogs (32 px, 2 steps) from the offline mirror.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import psutil
import pytest

from diffusion_assets.defs.partitions import CATALOG_PARTITIONS_NAME
from diffusion_assets.files import sha256_file
from diffusion_assets.manifests import generation as gm
from diffusion_assets.manifests.io import partition_path, read_rows
from tests.conftest import write_catalog
from tests.e2e.test_cli import BIN, ROOT, _env

DATE = "2026-11-28"
RUN_TIMEOUT_S = 900
"""A rerun that never starts (a wedged pool) fails the test here rather than hanging it."""


def catalog_text(entries: int) -> str:
    """``entries`` × 8 tiny images (batches of 4)."""
    lines = [f"  - {{id: e{i}, prompt: 'shape number {i}'}}" for i in range(entries)]
    return "defaults: {model: sd15, steps: 2, width: 32, height: 32, images_per_prompt: 8}\nentries:\n" + (
        "\n".join(lines) + "\n"
    )


def wait_for(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.0f} s: {what}")
        time.sleep(0.5)


def pngs(folder: Path) -> int:
    return len(list(folder.glob("*.png"))) if folder.is_dir() else 0


def materialize(catalog: str, date: str) -> list[str]:
    return [str(BIN / "diffusion-assets"), "materialize", catalog, "--date", date]


def start(args: list[str], env: dict, log: Path, **kw) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, **kw)


def assert_partition_complete(data_root: Path, catalog: str, date: str, images: int) -> None:
    """``images`` rows, no duplicate id, every file's sha256 as recorded, nothing else on disk."""
    rows = read_rows(partition_path(data_root, gm.KIND, {"catalog": catalog, "date": date}))
    ids = [r["image_id"] for r in rows]
    assert len(rows) == images and len(set(ids)) == images
    assert all(sha256_file(data_root / r["path"]) == r["sha256"] for r in rows)
    assert sorted(p.stem for p in (data_root / "images" / catalog / date).iterdir()) == sorted(ids)
    assert not list(data_root.rglob("*.tmp")), "temp files of the dead run were left behind"


def slot_holders(instance: dg.DagsterInstance) -> set[str]:
    info = instance.event_log_storage.get_concurrency_info("gpu")
    return {s.run_id for s in info.claimed_slots} | {p.run_id for p in info.pending_steps}


def test_a_killed_materialize_frees_its_slot_and_the_rerun_resumes(project, tmp_path):
    write_catalog(project, "crash", catalog_text(8))
    home, images = tmp_path / "home", project / "data" / "images" / "crash" / DATE
    env = _env(project, home)
    first = start(materialize("crash", DATE), env, tmp_path / "first.log")
    try:
        wait_for(lambda: pngs(images) >= 8 or first.poll() is not None, RUN_TIMEOUT_S, "8 PNGs written")
    finally:
        first.kill()  # SIGKILL: no handler, no cleanup
        first.wait()
    assert first.returncode == -signal.SIGKILL and 8 <= pngs(images) < 64, (
        tmp_path / "first.log"
    ).read_text()

    second = subprocess.run(
        materialize("crash", DATE), env=env, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    assert second.returncode == 0, second.stderr
    assert "freed the gpu pool slot of run" in second.stderr and "its process is gone" in second.stderr
    assert "generated_images [crash|2026-11-28]: 64 images" in second.stdout
    assert_partition_complete(project / "data", "crash", DATE, 64)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        statuses = sorted(r.status.value for r in instance.get_runs())
        assert statuses == ["FAILURE", "SUCCESS"] and not slot_holders(instance)


def test_a_second_run_of_a_partition_is_refused_at_once_and_another_waits_saying_for_what(project, tmp_path):
    write_catalog(project, "pair", catalog_text(1))
    home = tmp_path / "home"
    env = _env(project, home)
    first = start(materialize("pair", DATE), env, tmp_path / "first.log")
    third = None
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            wait_for(
                lambda: slot_holders(instance) or first.poll() is not None,
                RUN_TIMEOUT_S,
                "a gpu slot claimed",
            )
            (holder,) = slot_holders(instance)
        # the same partition: refused before anything starts, while the first still runs
        second = subprocess.run(
            materialize("pair", DATE),
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
        assert first.poll() is None, "the first run ended before the second was refused"
        assert second.returncode == 1
        assert f"partition pair|{DATE} is being written by another process" in second.stderr
        assert f"run {holder}" in second.stderr
        # another partition waits for the slot, and says which run of which partition holds it
        third = start(materialize("pair", "2026-11-29"), env, tmp_path / "third.log")
        waiting = (
            f"waiting for a gpu pool slot: held by run {holder} (generate_catalog, partition pair|{DATE}"
        )
        wait_for(lambda: waiting in (tmp_path / "third.log").read_text(), RUN_TIMEOUT_S, "a waiting line")
        assert first.wait(timeout=RUN_TIMEOUT_S) == 0
        assert third.wait(timeout=RUN_TIMEOUT_S) == 0, (tmp_path / "third.log").read_text()
    finally:
        for process in (first, third):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    assert_partition_complete(project / "data", "pair", DATE, 8)
    assert_partition_complete(project / "data", "pair", "2026-11-29", 8)


def run_worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid Dagster's run worker reports in its first engine event ("Started process for run")."""
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        if (record.message or "").startswith("Started process for run"):
            return int(record.dagster_event.engine_event_data.metadata["pid"].value)
    return None


def gone(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


LAUNCH = [str(BIN / "dagster"), "job", "launch", "-w", "workspace.yaml", "-j", "generate_catalog", "--tags"]


def launch(tags: dict, env: dict) -> None:
    """``dagster job launch`` of the partition in ``tags``: the run is queued for the daemon."""
    subprocess.run(
        [*LAUNCH, json.dumps(tags)], env=env, cwd=ROOT, check=True, capture_output=True, timeout=RUN_TIMEOUT_S
    )


@pytest.mark.slow
def test_a_killed_run_worker_under_the_daemon_leaves_no_process_and_its_slot_is_freed(project, tmp_path):
    write_catalog(project, "crash", catalog_text(8))
    home = tmp_path / "home"
    env = _env(project, home)
    today = datetime.now(UTC).date().isoformat()
    images = project / "data" / "images" / "crash" / today
    tags = {
        "dagster/partition": f"crash|{today}",
        "dagster/partition/catalog": "crash",
        "dagster/partition/date": today,
    }
    # the storage exists before the daemon opens it (two first openers race to create its tables)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        # a first sensor tick is calm (it registers, requests nothing): the run goes through the queue
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, ["crash"])
        launch(tags, env)
        # its own session, so that the daemon, its code server and their runs are stopped together
        daemon = start(
            [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            env,
            tmp_path / "daemon.log",
            start_new_session=True,
        )
        try:
            wait_for(lambda: pngs(images) >= 8, RUN_TIMEOUT_S, "8 PNGs from the queued run")
            (run,) = instance.get_runs()
            worker = psutil.Process(run_worker_pid(instance, run.run_id))
            family = [worker, *worker.children(recursive=True)]
            worker.kill()
            killed = time.monotonic()
            wait_for(lambda: all(gone(p) for p in family), 30, "every process of the killed run gone")
            wait_for(
                lambda: instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE,
                60,
                "the run marked failed",
            )
            wait_for(
                lambda: run.run_id not in slot_holders(instance),
                60 - (time.monotonic() - killed),
                "its gpu slot freed within 60 s of the kill",
            )
            assert pngs(images) < 64  # nothing generated the rest outside the pool

            # the pool is not wedged: the partition launched again through the run queue resumes
            launch(tags, env)
            wait_for(
                lambda: len(instance.get_runs()) == 2 and instance.get_runs()[0].is_finished,
                RUN_TIMEOUT_S,
                "the relaunched run finished",
            )
            rerun = instance.get_runs()[0]
            assert rerun.status == dg.DagsterRunStatus.SUCCESS, (tmp_path / "daemon.log").read_text()[-3000:]
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)  # the group of the daemon this test started
            daemon.wait(timeout=120)
    assert_partition_complete(project / "data", "crash", today, 64)
