"""Why weight hashes are cached where short-lived pods share them: the cost of hashing a 2 GB
weights file once, against finding its hash again in the shared hash cache.

Each case runs in a fresh interpreter (a new pod, as far as the cache knows), interleaved, and
reports the child's CPU seconds (user + system) and wall seconds:

(a) cold: ``folder_hash`` of the file with an empty hash cache (reads and hashes every byte);
(b) cached: the same call in another fresh interpreter, against the cache (a) filled.

The file is written once with random bytes and stays in the page cache, so (a) is the sha256
cost alone; on a network volume reading 2 GB adds its transfer time on top. Medians of
``--repeat`` pairs; it prints their ratio and what that means per run for the real presets.

    python benchmarks/weight_hashing.py [--size-gb 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bytes a run hashes for each preset: the safetensors its pipeline loads (fp16 variants where the
# preset uses them; approximate sizes of the model repositories' files)
PRESET_GB = {"sd15": 2.1, "sdxl-base": 6.9, "flux-schnell": 33.7}


def child(code: str, cache: Path) -> tuple[float, float]:
    """(CPU s, wall s) of one fresh interpreter running ``code`` with ``cache`` as the hash cache."""
    env = dict(os.environ, DIFFUSION_ASSETS_HASH_CACHE=str(cache))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="weight_hashing_") as tmp:
        weights = Path(tmp) / "diffusion_pytorch_model.safetensors"
        block = os.urandom(1 << 20)
        with open(weights, "wb") as handle:
            for _ in range(int(args.size_gb * 1024)):
                handle.write(block)
        code = f"from diffusion_assets.models.hashing import folder_hash; folder_hash({str(weights)!r})"
        floor = "import diffusion_assets.models.hashing"
        results: dict[str, list[tuple[float, float]]] = {"import only": [], "cold": [], "cached": []}
        for _ in range(args.repeat):
            cache = Path(tmp) / "cache"
            shutil.rmtree(cache, ignore_errors=True)
            results["import only"].append(child(floor, cache))
            results["cold"].append(child(code, cache))
            results["cached"].append(child(code, cache))
    size = int(args.size_gb * 1024) << 20
    print(f"{size / 1e9:.2f} GB file, {args.repeat} interleaved repeats, fresh interpreter per case")
    print("| case | median CPU s | median wall s | CPU s per run |")
    print("|---|---|---|---|")
    medians = {}
    for name, runs in results.items():
        cpu = statistics.median(r[0] for r in runs)
        wall = statistics.median(r[1] for r in runs)
        medians[name] = (cpu, wall)
        print(f"| {name} | {cpu:.2f} | {wall:.2f} | {', '.join(f'{r[0]:.2f}' for r in runs)} |")
    hash_cpu = medians["cold"][0] - medians["import only"][0]
    lookup_cpu = medians["cached"][0] - medians["import only"][0]
    gb_per_cpu_s = size / 1e9 / hash_cpu
    print(
        f"\nhashing alone: {hash_cpu:.2f} CPU s ({gb_per_cpu_s:.2f} GB per CPU s); the cached lookup "
        f"costs {lookup_cpu * 1000:+.0f} ms CPU over the import alone (run-to-run noise)"
    )
    for preset, gb in PRESET_GB.items():
        print(f"  {preset}: {gb:.1f} GB of weights -> {gb / gb_per_cpu_s:.1f} CPU s per uncached run")


if __name__ == "__main__":
    main()
