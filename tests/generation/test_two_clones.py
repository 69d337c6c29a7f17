"""Issue 10 item 7: "byte-identical" across clones, hash seeds and batch sizes.

Two project roots at different paths, each run in its own Python process with its own
``PYTHONHASHSEED`` (set iteration order, e.g. diffusers' private ``_use_default_values`` list,
follows it), then a repair at another ``batch_size`` in the second: every PNG must be byte-equal,
embedded metadata included, so ``sha256sum`` compares re-materializations.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.generation.test_partition import CATALOG as PARTITION_CATALOG

# a sampler built from another class's config (SD1.5's PNDM → DPM++ 2M) leaves many settings at
# their defaults: a long ``_use_default_values`` list, whose order varies with the hash seed
CATALOG = (
    PARTITION_CATALOG
    + """
  - id: multistep
    prompt: "a green triangle"
    scheduler: dpmpp_2m
"""
)

ROOT = Path(__file__).resolve().parents[2]
RUN = """
import sys
from pathlib import Path
from tests.generation.helpers import provider, run_partition
project, batch_size = Path(sys.argv[1]), int(sys.argv[2])
result = run_partition(project, project / "prompts" / "demo.yaml", provider(project, batch_size=batch_size))
print(result.generated, result.skipped)
"""


def _materialize(project: Path, hash_seed: str, batch_size: int) -> str:
    env = dict(
        os.environ,
        PYTHONHASHSEED=hash_seed,
        DIFFUSION_ASSETS_ROOT=str(project),
        DIFFUSION_ASSETS_PROMPTS=str(project / "prompts"),
        DIFFUSION_ASSETS_DATA=str(project / "data"),
    )
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(project), str(batch_size)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def _pngs(project: Path) -> dict[str, bytes]:
    images = project / "data" / "images"
    return {str(p.relative_to(images)): p.read_bytes() for p in sorted(images.rglob("*.png"))}


def test_two_clones_with_other_hash_seeds_and_a_repair_at_another_batch_size_write_the_same_bytes(
    tmp_path, tiny_mirror, monkeypatch
):
    monkeypatch.setenv("DIFFUSION_ASSETS_MODELS", str(tiny_mirror))
    first, second = tmp_path / "a", tmp_path / "elsewhere" / "deeper" / "clone"
    for project in (first, second):
        (project / "prompts").mkdir(parents=True)
        (project / "prompts" / "demo.yaml").write_text(CATALOG)
    assert _materialize(first, "1", 4) == ["10", "0"]
    assert _materialize(second, "2", 4) == ["10", "0"]
    assert _pngs(first) == _pngs(second)
    # an out-of-memory retry at batch_size 1 in the second clone repairs two deleted images
    for victim in sorted((second / "data" / "images").rglob("*.png"))[:2]:
        victim.unlink()
    assert _materialize(second, "3", 1) == ["2", "8"]
    assert _pngs(first) == _pngs(second)
