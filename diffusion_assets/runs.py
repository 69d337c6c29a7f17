"""Who runs what: each run's owner process, and the runs that hold a pool's slots.

A Dagster run that dies without a word (``kill -9``, OOM killer, power loss) keeps its pool slot:
Dagster frees slots only when a run ends through its own code, or when the monitoring daemon sees a
*finished* run (``run_monitoring.free_slots_after_run_end_seconds``, Dagster issue #28456), and
nothing at all notices a dead run that no daemon launched (``diffusion-assets materialize``,
``dagster asset materialize``). So every run records its owner, the process that executes its
steps, as tags (``OWNER_TAGS``: host, pid, process start time; the start time tells a reused pid
apart), and ``reclaim_dead_runs`` marks failed the runs whose owner on this host is gone and frees
their slots. A run owned by another host is never judged from here.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import dagster as dg
import psutil

GPU_POOL = "gpu"
"""The pool every GPU-bound asset declares (``pool="gpu"``); ``.dagster_home/dagster.yaml`` gives it one slot."""

PARTITION_TAG = "dagster/partition"
"""Dagster's own tag for a run's partition key."""

HOST_TAG = "diffusion_assets/owner_host"
PID_TAG = "diffusion_assets/owner_pid"
STARTED_TAG = "diffusion_assets/owner_started"
OWNER_TAGS = (HOST_TAG, PID_TAG, STARTED_TAG)

_START_TOLERANCE_S = 1.0
"""Process start times are read from the kernel in clock ticks; equal within this is the same process."""


@dataclass(frozen=True)
class Owner:
    """The process that executes a run's steps."""

    host: str
    pid: int
    started: float
    """Process start time, seconds since the epoch (``psutil.Process.create_time``)."""

    @classmethod
    def current(cls) -> Owner:
        process = psutil.Process()
        return cls(socket.gethostname(), process.pid, process.create_time())

    def tags(self) -> dict[str, str]:
        return {HOST_TAG: self.host, PID_TAG: str(self.pid), STARTED_TAG: f"{self.started:.2f}"}

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Owner | None:
        try:
            return cls(tags[HOST_TAG], int(tags[PID_TAG]), float(tags[STARTED_TAG]))
        except (KeyError, ValueError):
            return None

    def is_alive(self) -> bool | None:
        """True or False for a process on this host; None for another host (it cannot be checked here)."""
        if self.host != socket.gethostname():
            return None
        try:
            process = psutil.Process(self.pid)
            same = abs(process.create_time() - self.started) < _START_TOLERANCE_S
            return same and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}"


@dataclass(frozen=True)
class Holder:
    """A run with a claimed (or queued) slot in a pool."""

    run_id: str
    run: dg.DagsterRun | None
    claimed: bool
    """True when it holds a slot; False when it is queued for one."""

    @property
    def owner(self) -> Owner | None:
        return Owner.from_tags(self.run.tags) if self.run else None

    @property
    def partition(self) -> str | None:
        return self.run.tags.get(PARTITION_TAG) if self.run else None

    def waiting_line(self, pool: str) -> str:
        """What a run waiting for a slot of ``pool`` says about this holder."""
        return f"waiting for a {pool} pool slot: {'held by' if self.claimed else 'queued before us:'} {self}"

    def __str__(self) -> str:
        if self.run is None:
            return f"run {self.run_id} (not in this instance's run storage)"
        where = f"partition {self.partition}, " if self.partition else ""
        owner = self.owner
        who = str(owner) if owner else "owner not recorded"
        return f"run {self.run_id} ({self.run.job_name}, {where}{self.run.status.value}, {who})"


def pool_holders(instance: dg.DagsterInstance, pool: str, exclude: Iterable[str] = ()) -> list[Holder]:
    """Runs holding or queued for slots of ``pool``, holders first, leaving out ``exclude`` run ids."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    skip = set(exclude)
    claimed = {slot.run_id for slot in info.claimed_slots}
    ids = list(dict.fromkeys([*claimed, *(step.run_id for step in info.pending_steps)]))
    return [Holder(i, instance.get_run_by_id(i), i in claimed) for i in ids if i not in skip]


def has_free_slot(instance: dg.DagsterInstance, pool: str) -> bool:
    """True when a step of ``pool`` would get a slot now (no limit, or fewer users than the limit)."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    if info.limit is None:
        return True
    in_use = max(len(info.claimed_slots), info.assigned_step_count)
    return in_use + info.pending_step_count < info.limit


def reclaim_dead_runs(instance: dg.DagsterInstance, pool: str = GPU_POOL) -> list[str]:
    """Free the slots of ``pool`` that no live process can use; one message per run freed.

    - a run whose owner on this host is gone (pid gone, or reused by a process that started later)
      is marked failed (``report_run_failed``) and its slots are freed;
    - a finished run (its end was recorded but not its slot release) is freed unless its owner is
      still running, which a run force-terminated from the UI may be;
    - a run missing from the run storage is freed.

    A live owner, or one on another host, keeps its slot.
    """
    messages = []
    for holder in pool_holders(instance, pool):
        run, owner = holder.run, holder.owner
        alive = owner.is_alive() if owner else None
        if run is None:
            reason = "its run is not in this instance"
        elif run.is_finished and alive is not True:
            reason = f"the run had ended ({run.status.value})"
        elif not run.is_finished and alive is False:
            reason = "its process is gone"
            instance.report_run_failed(
                run,
                f"Marked failed by diffusion_assets: the process that ran it ({owner}) is gone "
                f"(killed?); its {pool} slot is freed and a new run of the partition resumes it.",
            )
        else:
            continue
        instance.event_log_storage.free_concurrency_slots_for_run(holder.run_id)
        messages.append(f"freed the {pool} pool slot of {holder}: {reason}")
    return messages


def wait_for_slot(
    instance: dg.DagsterInstance,
    pool: str,
    say: Callable[[str], None],
    *,
    refuse: Callable[[Holder], str | None] = lambda holder: None,
    poll_s: float = 2.0,
) -> None:
    """Return once ``pool`` has a free slot, reclaiming dead runs' slots while waiting.

    ``say`` gets one line per slot freed and one per live run waited for (again if that run's state
    changes). ``refuse(holder)`` may return a message to stop waiting: it is raised as ``SystemExit``.
    Waiting happens here, before a run starts, because Dagster's in-process executor polls a blocked
    claim without sleeping (it spins a core for as long as it waits).
    """
    announced: set[str] = set()
    while True:
        for message in reclaim_dead_runs(instance, pool):
            say(message)
        holders = pool_holders(instance, pool)
        for holder in holders:
            if (message := refuse(holder)) is not None:
                raise SystemExit(message)
        if has_free_slot(instance, pool):
            return
        for holder in holders:
            line = holder.waiting_line(pool)
            if line not in announced:
                announced.add(line)
                say(line)
        time.sleep(poll_s)
