"""What a run pays before its first image: the CPU time of importing the code location.

Every run worker, step process and code-server reload imports ``diffusion_assets.definitions``.
This measures, in fresh interpreters interleaved in one run, the CPU seconds (user + system, of the
child process) of

(a) ``import dagster`` alone, the floor any Dagster code location pays, and
(b) ``import diffusion_assets.definitions`` (and resolving its asset graph),

and prints their ratio (goal ≤ 1.5; issue 9 measured ≈ 10 before the model stack moved into the
asset bodies). Medians of ``--repeat`` pairs; CPU time, not wall time, because this machine is shared.

    python benchmarks/import_cost.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "import dagster": "import dagster",
    "import diffusion_assets.definitions": (
        "import diffusion_assets.definitions as d; d.defs.resolve_asset_graph()"
    ),
}


def child_cpu_seconds(code: str) -> float:
    """User + system CPU seconds of one fresh interpreter running ``code``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env=dict(os.environ))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    child_cpu_seconds("pass")  # warm the file cache for both cases alike
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.repeat):
        for name, code in CASES.items():
            times[name].append(child_cpu_seconds(code))
    base, ours = (statistics.median(times[n]) for n in CASES)
    ratios = [o / b for b, o in zip(*times.values(), strict=True)]
    print(f"{'case':40} {'median CPU s':>12}  runs")
    for name, values in times.items():
        print(f"{name:40} {statistics.median(values):12.2f}  {', '.join(f'{v:.2f}' for v in values)}")
    print(
        f"ratio of medians: {ours / base:.2f}; median of paired ratios: {statistics.median(ratios):.2f} "
        "(goal <= 1.5)"
    )


if __name__ == "__main__":
    main()
