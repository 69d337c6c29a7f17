"""The GPU lease: concurrent runs on a host with several GPUs each take a different one.

Played on a CPU with a fake list of devices (``DIFFUSION_ASSETS_GPUS=0,1``) and real processes; in the
Dagster-level test each process also tells torch it has CUDA (``torch.cuda.is_available``), so that
``resolve_device`` takes the CUDA branch, as on a GPU host.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diffusion_assets.devices import GPUS_ENV, LEASES_ENV, lease
from diffusion_assets.files import BusyError

ROOT = Path(__file__).resolve().parents[1]

LEASE = """
import sys, time
from pathlib import Path
from diffusion_assets.devices import lease
out, gate = Path(sys.argv[1]), Path(sys.argv[2])
with lease(sys.argv[3], sys.argv[4], log=lambda m: print(m, flush=True)) as device:
    out.write_text(device)
    while not gate.exists():
        time.sleep(0.02)
"""

# a Dagster run of one asset using the GpuResource (or the CaptionerResource), as a step would
RUN = """
import sys, time
from pathlib import Path
import torch
torch.cuda.is_available = lambda: True  # a GPU host, as far as resolve_device can tell
torch.cuda.current_device = lambda: 0
import dagster as dg
from diffusion_assets.defs.captioning import CaptionerResource
from diffusion_assets.defs.resources import GpuResource
out, gate, kind = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

@dg.asset(required_resource_keys={"device"})
def step(context):
    out.write_text(context.resources.device.leased_device(lambda m: print(m, flush=True)))
    while not gate.exists():
        time.sleep(0.02)

resource = GpuResource() if kind == "gpu" else CaptionerResource(device="cuda")
with dg.instance_for_test() as instance:
    assert dg.materialize([step], resources={"device": resource}, instance=instance).success
print("done", flush=True)
"""


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A host with two fake GPUs and its own lease folder."""
    monkeypatch.setenv(GPUS_ENV, "0,1")
    monkeypatch.setenv(LEASES_ENV, str(tmp_path / "leases"))
    return tmp_path


class Holder:
    def __init__(self, host: Path, name: str, code: str, *args: str):
        self.out, self.gate = host / f"{name}.device", host / f"{name}.gate"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, str(self.out), str(self.gate), *args],
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def device(self) -> str:
        """Wait until the process holds its device; return it."""
        while not self.out.exists():
            assert self.process.poll() is None, self.process.communicate()[1][-2000:]
            time.sleep(0.02)
        return self.out.read_text()

    def finish(self) -> str:
        self.gate.touch()
        out, err = self.process.communicate(timeout=300)
        assert self.process.returncode == 0, err[-2000:]
        return out


def test_two_processes_take_different_gpus_and_a_third_waits_naming_the_holders(host):
    first, second = Holder(host, "a", LEASE, "cuda", "run a"), Holder(host, "b", LEASE, "cuda", "run b")
    assert {first.device(), second.device()} == {"cuda:0", "cuda:1"}
    third = Holder(host, "c", LEASE, "cuda", "run c")
    line = third.process.stdout.readline()  # it waits, and says for whom
    assert line.startswith("waiting for a GPU: cuda:0 held by pid") and "run a" in line and "run b" in line
    freed = first.device()
    first.finish()
    assert third.device() == freed  # the freed GPU, as soon as it is free
    second.finish(), third.finish()


def test_a_killed_holder_frees_its_gpu(host):
    holder = Holder(host, "a", LEASE, "cuda:1", "run a")
    assert holder.device() == "cuda:1"
    with pytest.raises(BusyError, match=r"no GPU came free in 0.5 s: pid \d+ on .*, run a"):
        with lease("cuda:1", "run b", wait=0.5):
            pass
    holder.process.send_signal(signal.SIGKILL)
    holder.process.wait()
    with lease("cuda:1", "run b", wait=5) as device:  # the kernel dropped the dead run's flock
        assert device == "cuda:1"


def test_cpu_and_mps_lease_nothing_and_unknown_indices_are_refused(host):
    with lease("cpu") as device:
        assert device == "cpu"
    assert not (host / "leases").exists()
    with pytest.raises(
        ValueError, match=r"cuda:2 is not one this host lends \(DIFFUSION_ASSETS_GPUS: \[0, 1\]\)"
    ):
        with lease("cuda:2"):
            pass


def test_one_process_keeps_its_gpu_for_all_its_steps(host):
    with lease("cuda", "run a") as first, lease("cuda", "run a") as again:
        assert first == again == "cuda:0"  # re-entrant: one run's steps run in one process, on one GPU


def test_concurrent_dagster_runs_each_lease_a_gpu_and_the_captioner_queues_behind_them(host):
    generation = Holder(host, "gen", RUN, "gpu")
    training = Holder(host, "train", RUN, "gpu")
    assert {generation.device(), training.device()} == {"cuda:0", "cuda:1"}
    captions = Holder(host, "cap", RUN, "captioner")
    waiting = captions.process.stdout.readline()
    assert waiting.startswith("waiting for a GPU: cuda:0 held by pid") and ", run " in waiting
    held_by_generation = generation.device()
    assert "done" in generation.finish()  # the run ends: Dagster tears its resource down
    assert captions.device() == held_by_generation  # never a GPU another run still holds
    training.finish(), captions.finish()
