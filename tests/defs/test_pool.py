"""Every job runs in its run worker's process and records its owner; the pool sensor frees dead runs' slots."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

from diffusion_assets import runs
from diffusion_assets.defs.pool import gpu_pool_sensor, owned_in_process_executor
from tests.test_runs import dead_owner, started_run

ROOT = Path(__file__).resolve().parents[2]


@dg.asset
def probe():
    return 1


@dg.asset(pool="gpu")
def gpu_probe():
    return 1


def probe_job() -> dg.JobDefinition:
    defs = dg.Definitions(
        assets=[probe], jobs=[dg.define_asset_job("probe_job")], executor=owned_in_process_executor
    )
    return defs.resolve_job_def("probe_job")


def test_every_job_the_ad_hoc_asset_job_included_runs_in_the_run_workers_process():
    from diffusion_assets.definitions import defs

    with dg.instance_for_test():
        jobs = list(defs.resolve_all_job_defs())
    assert {j.name for j in jobs} >= {"generate_catalog", "caption_catalog", "train_lora", "__ASSET_JOB"}
    assert all(j.executor_def is owned_in_process_executor for j in jobs)


def test_a_run_executed_by_dagster_records_this_process_as_its_owner():
    with dg.instance_for_test() as instance:
        with dg.execute_job(dg.reconstructable(probe_job), instance=instance) as result:
            assert result.success
        owner = runs.Owner.from_tags(instance.get_run_by_id(result.run_id).tags)
    assert owner is not None and owner.pid == runs.Owner.current().pid and owner.is_alive()


def test_the_pool_sensor_frees_the_slot_of_a_run_whose_process_is_gone():
    with dg.instance_for_test() as instance:
        instance.event_log_storage.set_concurrency_slots("gpu", 1)
        run = started_run(instance, dead_owner(), "a|2026-11-28")
        with dg.build_sensor_context(instance=instance) as context:
            skip = gpu_pool_sensor(context)
        assert run.run_id in skip.skip_message
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert runs.pool_holders(instance, "gpu") == []


gpu_probe_defs = dg.Definitions(assets=[gpu_probe], executor=owned_in_process_executor)


def test_dagster_asset_materialize_blocked_by_a_dead_runs_slot_frees_it_says_so_and_runs(tmp_path):
    """What `dagster asset materialize` meets after a killed run: no daemon, the slot held by the dead.
    (A subprocess with a timeout: without the fix the run waits forever, and ignores SIGTERM.)"""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.event_log_storage.set_concurrency_slots("gpu", 1)
        dead = started_run(instance, dead_owner(), "a|2026-11-28")
        command = [
            str(Path(sys.executable).parent / "dagster"),
            "asset",
            "materialize",
            "--select",
            "gpu_probe",
        ]
        subprocess.run(
            [*command, "-m", "tests.defs.test_pool", "-a", "gpu_probe_defs"],
            env={**os.environ, "DAGSTER_HOME": str(home)},
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=300,
        )
        (run,) = [r for r in instance.get_runs() if r.run_id != dead.run_id]
        assert run.status == dg.DagsterRunStatus.SUCCESS
        warnings = [e.message for e in instance.all_logs(run.run_id) if e.level == logging.WARNING]
        assert any(f"freed the gpu pool slot of run {dead.run_id}" in (w or "") for w in warnings)
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
