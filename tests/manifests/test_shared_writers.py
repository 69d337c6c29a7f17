"""Every file that several runs write is safe with two writers at once: each race is played by two
real processes, the first held (``DIFFUSION_ASSETS_PAUSE_AT``) inside the window the race needs.

- adapters and evaluations manifests (one partition per dataset, rows of many runs): the second
  writer queues on the manifest's lock and both rows land;
- a captions partition: a second captioning run of it fails at once, naming it, and loses nothing;
- a dataset's ``LATEST``: a spec edited (V2) and reverted (V1) while a build runs ends naming V1;
- a generation partition: removing its manifest folder under a running generation does not let a
  second run take a fresh lock beside the first (the lock lives under ``<data root>/.locks``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diffusion_assets.datasets.build import build_dataset, read_latest
from diffusion_assets.files import PAUSE_ENV, PAUSE_GATE_ENV
from diffusion_assets.manifests import adapters as am
from diffusion_assets.manifests import captions as cm
from diffusion_assets.manifests import evaluation as em
from diffusion_assets.manifests import generation as gm
from diffusion_assets.manifests.io import partition_path, read_rows
from tests.conftest import write_catalog
from tests.datasets.helpers import CATALOG, DATE, pattern, write_captions, write_partition, write_spec
from tests.generation.test_leftovers import CATALOG as GENERATION_CATALOG
from tests.generation.test_partition import HOLD_LOCK

ROOT = Path(__file__).resolve().parents[2]

RECORD_ADAPTER = """
import sys
from diffusion_assets.training.from_spec import record_adapter
from tests.lineage.conftest import adapter_row
record_adapter(sys.argv[1], "style", adapter_row(sys.argv[2], "v1", dagster_run_id=sys.argv[2]))
"""
RECORD_EVALUATION = """
import sys
from diffusion_assets.evaluation.tables import write_manifest_partition
from tests.lineage.conftest import evaluation_rows
write_manifest_partition(sys.argv[1], "style", evaluation_rows(sys.argv[2], "a" * 20, "v1"))
"""
CAPTION = """
import sys
from pathlib import Path
from diffusion_assets.captioning.captioner import PromptCaptioner
from diffusion_assets.captioning.partition import caption_partition
from diffusion_assets.generation.partition import RunInfo
run = RunInfo(sys.argv[2], "{catalog}|{date}", "test")
caption_partition("{catalog}", "{date}", Path(sys.argv[1]), PromptCaptioner(sys.argv[3]), run, batch_size=2)
""".replace("{catalog}", CATALOG).replace("{date}", DATE)
BUILD = """
import sys
from diffusion_assets.datasets.build import build_dataset
build_dataset(sys.argv[1], sys.argv[2], run_id="build")
"""
GENERATE = """
import sys, torch
from pathlib import Path
from tests.generation.helpers import provider, run_partition
torch.set_num_threads(1)
project, catalog = Path(sys.argv[1]), Path(sys.argv[2])
run_partition(project, catalog, provider(project, batch_size=2), run_id=sys.argv[3])
"""


class Writer:
    """One writer process; with ``pause_at`` it stops there until ``release()``."""

    def __init__(self, code: str, *args: object, gate: Path, pause_at: str | None = None):
        self.gate = gate
        env = {**os.environ, PAUSE_GATE_ENV: str(gate)}
        if pause_at:
            env[PAUSE_ENV] = pause_at
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, *map(str, args)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def reached(self) -> bool:
        """Wait until the process is at its pause point (True) or has exited (False)."""
        marker = self.gate.with_name(self.gate.name + ".paused")
        while not marker.exists():
            if self.process.poll() is not None:
                return False
            time.sleep(0.02)
        return True

    def release(self) -> None:
        self.gate.touch()

    def finish(self) -> tuple[int, str]:
        _, err = self.process.communicate(timeout=600)
        return self.process.returncode, err


@pytest.fixture
def writers():
    started: list[Writer] = []

    def start(*args, **kwargs) -> Writer:
        started.append(Writer(*args, **kwargs))
        return started[-1]

    yield start
    for writer in started:
        writer.release()
        if writer.process.poll() is None:
            writer.process.kill()
            writer.process.wait()


@pytest.mark.parametrize(
    ("kind", "code", "key", "first", "second"),
    [
        (am.KIND, RECORD_ADAPTER, "adapter_id", "a" * 20, "b" * 20),
        (em.KIND, RECORD_EVALUATION, "report_id", "r" * 20, "s" * 20),
    ],
)
def test_two_runs_recording_at_once_both_land(kind, code, key, first, second, tmp_path, writers):
    data = tmp_path / "data"
    manifest = partition_path(data, kind, {"dataset": "style"})
    one = writers(code, data, first, gate=tmp_path / "one", pause_at=f"before-rename:{manifest}")
    assert one.reached()  # read the manifest, its new version complete but not yet renamed in
    # the second writer says when it finds the lock taken (gate already open: it does not stop)
    (tmp_path / "two").touch()
    two = writers(code, data, second, gate=tmp_path / "two", pause_at=f"lock-busy:*{kind}*")
    queued = two.reached()
    one.release()
    assert one.finish()[0] == 0 and two.finish()[0] == 0
    assert queued, "the second writer never waited for the first: it read the manifest mid-update"
    assert {r[key] for r in read_rows(manifest)} == {first, second}


def test_a_second_captioning_run_of_a_partition_fails_at_once_and_loses_nothing(tmp_path, writers):
    data = tmp_path / "data"
    write_partition(data, [(f"img{i}", f"a pattern {i}", pattern(i)) for i in range(4)])
    keys = {"catalog": CATALOG, "date": DATE}
    manifest = partition_path(data, cm.KIND, keys)
    one = writers(
        CAPTION, data, "cap-1", "{prompt}", gate=tmp_path / "one", pause_at=f"before-rename:{manifest}"
    )
    assert one.reached()  # the first batch of captions written, the second to come
    code, err = writers(CAPTION, data, "cap-2", "{prompt}, sks", gate=tmp_path / "two").finish()
    assert code != 0 and f"captions of partition {CATALOG}|{DATE} is being written by another process" in err
    one.release()
    assert one.finish()[0] == 0
    rows = read_rows(manifest)
    assert [r["image_id"] for r in rows] == [f"img{i}" for i in range(4)]
    assert {r["caption"] for r in rows} == {f"a pattern {i}" for i in range(4)}
    assert not partition_path(data, cm.KIND + "_retired", keys).exists()


def test_latest_follows_a_spec_reverted_while_a_build_runs(tmp_path, writers):
    data = tmp_path / "data"
    images = [(f"img{i}", f"prompt {i}", pattern(i)) for i in range(6)]
    write_partition(data, images)
    write_captions(data, {image_id: f"a pattern {image_id}" for image_id, _, _ in images})
    spec = write_spec(tmp_path)
    v1_text = spec.read_text()
    v1 = build_dataset(spec, data).version
    write_spec(tmp_path, trigger={"word": "zwx", "placement": "suffix"})  # V2
    folders = data / "datasets" / "style" / "[0-9a-f]*"
    one = writers(BUILD, spec, data, gate=tmp_path / "one", pause_at=f"before-rename:{folders}")
    assert one.reached()  # V2's folder complete, about to be renamed into place
    spec.write_text(v1_text)  # reverted while the V2 build runs
    code, err = writers(BUILD, spec, data, gate=tmp_path / "two").finish()
    assert code != 0 and "dataset style is being written by another process" in err
    one.release()
    assert one.finish()[0] == 0
    assert read_latest(data, "style") == v1
    v2 = [p.name for p in (data / "datasets" / "style").iterdir() if p.is_dir() and p.name != v1]
    assert len(v2) == 1  # V2 was built (immutable, kept), but LATEST names the spec as it is


def test_removing_a_manifest_folder_under_a_generation_does_not_free_its_partition(project, writers):
    catalog = write_catalog(project, "demo", GENERATION_CATALOG)  # 4 images, 2 batches of 2
    data = project / "data"
    manifest = partition_path(data, gm.KIND, {"catalog": "demo", "date": DATE})
    # held just after the first batch's rows went into the manifest
    gate = project / "one"
    one = writers(GENERATE, project, catalog, "run-1", gate=gate, pause_at=f"after-rename:{manifest}")
    assert one.reached()
    shutil.rmtree(manifest.parents[1])  # a user removes the manifest folder while the run is live
    code, err = writers(GENERATE, project, catalog, "run-2", gate=project / "two").finish()
    assert code != 0 and "partition demo|2026-11-28 is being written by another process" in err
    one.release()
    code, err = one.finish()
    assert code == 0, err[-3000:]
    rows = read_rows(manifest)
    assert len(rows) == 4 and {r["dagster_run_id"] for r in rows} == {"run-1"}


def test_a_second_run_of_one_adapter_recipe_fails_before_it_touches_anything(tmp_path):
    from types import SimpleNamespace

    from diffusion_assets.files import BusyError
    from diffusion_assets.manifests.io import lock_path
    from diffusion_assets.training.from_spec import train_from_spec

    data = tmp_path / "data"
    plan = SimpleNamespace(spec=SimpleNamespace(name="style"), adapter_id="c" * 20)
    lock = lock_path(data, am.KIND, {"dataset": "style", "adapter_id": "c" * 20})
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"locked\n"
        with pytest.raises(
            BusyError, match=f"adapter {'c' * 20} of style is being written by another process"
        ):
            train_from_spec(plan, data, "test")
    finally:
        holder.kill()
        holder.wait()
    assert sorted(p.name for p in data.iterdir()) == [".locks"]
