"""A 10-date backfill as runs of up to 10 partitions (the backfill policy) against 10 separate runs
(issue 9 item 7).

Both arms run the installed `diffusion-assets materialize` command in subprocesses, as a user (or
the backfill daemon's run workers) would, on fresh projects and fresh SQLite instances in temporary
directories, with the same `shapes-tiny` catalog (4 images per partition, 4 steps, 32²):
- baseline: 10 runs, `materialize bench --date D` for each date (each run starts a process, imports
  the code location and the model stack, and loads the model);
- policy: one command `materialize bench --date D0 --end-date D9`, which runs the dates as
  `generated_images`' backfill policy lays them out (10 per run: one run).
It reports model loads (summed from each materialization's `models_loaded`), runs recorded in the
manifests (distinct `dagster_run_id`), images, and wall time; the ratio is policy ÷ baseline.

Run: .venv/bin/python benchmarks/backfill_runs.py   (CPU, ~3 min)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DATES = [f"2026-11-{day:02d}" for day in range(1, 11)]
CATALOG = """
seed: 5
defaults: {model: shapes-tiny, steps: 4, width: 32, height: 32, images_per_prompt: 2}
entries:
  - id: a
    prompt: "a red circle on a gray background"
  - id: b
    prompt: "a blue square on a white background"
"""


def run_arm(commands: list[list[str]]) -> dict:
    import duckdb

    with tempfile.TemporaryDirectory() as tmp:
        project, home = Path(tmp) / "project", Path(tmp) / "home"
        (project / "prompts").mkdir(parents=True)
        home.mkdir()
        shutil.copy(ROOT / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
        (project / "models").symlink_to(ROOT / "models")
        (project / "prompts" / "bench.yaml").write_text(CATALOG)
        env = dict(os.environ, DAGSTER_HOME=str(home), DIFFUSION_ASSETS_ROOT=str(project), HF_HUB_OFFLINE="1")
        out, start = "", time.perf_counter()
        for command in commands:
            result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
            out += result.stdout
        wall = time.perf_counter() - start
        # each run's last partition reports the run's loads; earlier ones of the same run the same count
        loads_by_run = re.findall(r"models loaded in this run: (\d+)", out)
        runs, images, dates = duckdb.sql(
            "select count(distinct dagster_run_id), count(*), count(distinct date) from "
            f"read_parquet('{project}/data/manifests/generation/**/*.parquet', hive_partitioning=true)"
        ).fetchall()[0]
    return {"wall_s": wall, "runs": runs, "images": images, "dates": dates, "loads": loads_by_run}


def main() -> None:
    materialize = [str(BIN / "diffusion-assets"), "materialize", "bench"]
    baseline = run_arm([[*materialize, "--date", date] for date in DATES])
    policy = run_arm([[*materialize, "--date", DATES[0], "--end-date", DATES[-1]]])
    # model loads: one per run (every partition of a run reports its run's total)
    baseline_loads = sum(int(n) for n in baseline["loads"])
    policy_loads = max(int(n) for n in policy["loads"])
    print("| arm | runs | partitions | images | model loads | wall (s) |")
    print("|---|---|---|---|---|---|")
    print(
        f"| 10 separate runs | {baseline['runs']} | {baseline['dates']} | {baseline['images']} | {baseline_loads} | {baseline['wall_s']:.1f} |"
    )
    print(
        f"| backfill policy (10 per run) | {policy['runs']} | {policy['dates']} | {policy['images']} | {policy_loads} | {policy['wall_s']:.1f} |"
    )
    print(f"\nwall time ratio policy / separate runs: {policy['wall_s'] / baseline['wall_s']:.3f}")


if __name__ == "__main__":
    main()
