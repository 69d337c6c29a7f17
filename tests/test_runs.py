"""Run owners and the gpu pool: a dead owner's slot is freed, a live one's never is (real processes)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import replace

import dagster as dg
import pytest

from diffusion_assets import runs


@pytest.fixture
def sleeper():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield process
    process.kill()
    process.wait()


def owner_of(process: subprocess.Popen) -> runs.Owner:
    import psutil

    return replace(runs.Owner.current(), pid=process.pid, started=psutil.Process(process.pid).create_time())


def test_an_owner_is_alive_until_killed_and_a_reused_pid_is_not_its_process(sleeper):
    owner = owner_of(sleeper)
    assert owner.is_alive() is True
    assert replace(owner, started=owner.started - 100).is_alive() is False  # same pid, another process
    assert replace(owner, host="elsewhere").is_alive() is None  # cannot be told from here
    assert runs.Owner.from_tags(owner.tags()) == replace(owner, started=round(owner.started, 2))
    sleeper.kill()
    sleeper.wait()
    assert owner.is_alive() is False


def dead_owner() -> runs.Owner:
    """The owner tags of a process that has been SIGKILLed (and reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    owner = owner_of(process)
    process.kill()
    process.wait()
    return owner


def started_run(instance: dg.DagsterInstance, owner: runs.Owner, partition: str) -> dg.DagsterRun:
    run = instance.add_run(
        dg.DagsterRun(
            job_name="generate_catalog",
            run_id=str(uuid.uuid4()),
            status=dg.DagsterRunStatus.STARTED,
            tags={**owner.tags(), runs.PARTITION_TAG: partition},
        )
    )
    instance.event_log_storage.claim_concurrency_slot("gpu", run.run_id, "generated_images")
    return run


def test_reclaim_frees_a_dead_owners_slot_and_marks_its_run_failed_but_keeps_a_live_one(sleeper):
    dead = dead_owner()
    with dg.instance_for_test() as instance:
        instance.event_log_storage.set_concurrency_slots("gpu", 2)
        live_run = started_run(instance, owner_of(sleeper), "a|2026-11-28")
        dead_run = started_run(instance, dead, "b|2026-11-28")
        assert not runs.has_free_slot(instance, "gpu")

        messages = runs.reclaim_dead_runs(instance, "gpu")

        assert (
            len(messages) == 1 and dead_run.run_id in messages[0] and "partition b|2026-11-28" in messages[0]
        )
        assert instance.get_run_by_id(dead_run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(live_run.run_id).status == dg.DagsterRunStatus.STARTED
        assert [h.run_id for h in runs.pool_holders(instance, "gpu")] == [live_run.run_id]
        assert runs.has_free_slot(instance, "gpu")
        assert runs.reclaim_dead_runs(instance, "gpu") == []  # nothing more to free


def test_waiting_for_a_slot_says_who_holds_it_and_may_refuse(sleeper):
    with dg.instance_for_test() as instance:
        instance.event_log_storage.set_concurrency_slots("gpu", 1)
        holder = started_run(instance, owner_of(sleeper), "a|2026-11-28")
        said = []

        def refuse(h: runs.Holder):
            return "refused: same partition" if said and h.partition == "a|2026-11-28" else None

        with pytest.raises(SystemExit, match="refused: same partition"):
            runs.wait_for_slot(instance, "gpu", said.append, refuse=refuse, poll_s=0.01)
        assert said == [
            f"waiting for a gpu pool slot: held by run {holder.run_id} (generate_catalog, "
            f"partition a|2026-11-28, STARTED, {owner_of(sleeper)})"
        ]
