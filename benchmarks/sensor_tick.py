"""One catalog-sensor tick with 1,000 catalog files, on a SQLite instance (goal: at most 5 s).

Dagster gives a sensor or schedule tick 60 s. Before this change the catalog sensor, the nightly
schedule and ``sync-partitions`` asked the instance ``has_dynamic_partition`` once per catalog
(issue 9: 1,000 calls took 83 s); now each reads the partitions once (``get_dynamic_partitions``).
In one run, on one SQLite instance under a temporary DAGSTER_HOME, this measures (wall and CPU
seconds, medians of ``--repeat`` interleaved rounds):

- the new ticks: a first tick over 1,000 new files (validates and hashes every file), a quiet tick,
  a tick where 10 files were edited and 10 partitions deleted in the UI; the nightly schedule's
  tick; a second ``sync-partitions``;
- the old path's partition look-ups: 1,000 ``has_dynamic_partition`` calls (what the old first
  tick, schedule tick and sync did on top of their other work), and the new one-call look-up;
- for scale, not goals: what the daemon does with a first tick's result (stores 1,000
  observations, adds 1,000 partitions), and one automation-condition-sensor tick.

    python benchmarks/sensor_tick.py [--files 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="sensor_tick_"))
PROMPTS = WORK / "prompts"
os.environ["DIFFUSION_ASSETS_PROMPTS"] = str(PROMPTS)
os.environ["DIFFUSION_ASSETS_DATASETS"] = str(ROOT / "lora_datasets")
os.environ["DIFFUSION_ASSETS_DATA"] = str(WORK / "data")

import dagster as dg  # noqa: E402

from diffusion_assets import dagster_cli  # noqa: E402
from diffusion_assets.defs.automation import catalog_sensor, nightly_generation  # noqa: E402
from diffusion_assets.defs.partitions import CATALOG_PARTITIONS_NAME  # noqa: E402
from diffusion_assets.defs.resources import ProjectResource  # noqa: E402

INVALID_EVERY = 100  # one catalog in a hundred is invalid (width 1020), as users' folders are


def write_catalogs(n: int) -> list[Path]:
    PROMPTS.mkdir(parents=True, exist_ok=True)
    template = (ROOT / "prompts" / "shapes_demo.yaml").read_text()
    paths = []
    for i in range(n):
        text = template.replace("seed: 20261128", f"seed: {i}")
        if i % INVALID_EVERY == INVALID_EVERY - 1:
            text = text.replace("width: 32", "width: 1020")
        path = PROMPTS / f"catalog_{i:04d}.yaml"
        path.write_text(text)
        paths.append(path)
    return paths


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def sensor_tick(instance, cursor):
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"project": ProjectResource()}
    ) as context:
        return catalog_sensor(context)


def schedule_tick(instance):
    when = datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0)
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when, resources={"project": ProjectResource()}
    ) as context:
        return nightly_generation(context)


def apply(instance, result) -> None:
    """What the daemon does with a tick's result: store its events, then add its partitions."""
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))


def one_round(paths: list[Path]) -> dict[str, tuple[float, float]]:
    names = [p.stem for p in paths]
    out = {}
    with tempfile.TemporaryDirectory(dir=WORK) as home, dg.instance_for_test(temp_dir=home) as instance:
        wall, cpu, first = timed(lambda: sensor_tick(instance, None))
        assert not first.run_requests and len(first.asset_events) == len(paths)
        out["sensor: first tick, every file new"] = (wall, cpu)
        out["daemon: store the first tick's result"] = timed(lambda: apply(instance, first))[:2]
        wall, cpu, quiet = timed(lambda: sensor_tick(instance, first.cursor))
        assert not quiet.run_requests and not quiet.asset_events
        out["sensor: quiet tick"] = (wall, cpu)
        for path in paths[:10]:
            path.write_text(path.read_text() + "\n# edited\n")
        for name in names[10:20]:
            instance.delete_dynamic_partition(CATALOG_PARTITIONS_NAME, name)
        wall, cpu, busy = timed(lambda: sensor_tick(instance, quiet.cursor))
        assert len(busy.run_requests) == 10 and len(busy.dynamic_partitions_requests[0].partition_keys) == 10
        out["sensor: 10 edited, 10 deleted in the UI"] = (wall, cpu)
        for path in paths[:10]:
            path.write_text(path.read_text().removesuffix("\n# edited\n"))
        apply(instance, busy)
        out["schedule: nightly tick"] = timed(lambda: schedule_tick(instance))[:2]
        out["sync-partitions, second run"] = timed(lambda: dagster_cli.sync_partitions(instance))[:2]
        out["old path: has_dynamic_partition per file"] = timed(
            lambda: [instance.has_dynamic_partition(CATALOG_PARTITIONS_NAME, n) for n in names]
        )[:2]
        out["new path: 1 get_dynamic_partitions"] = timed(
            lambda: set(instance.get_dynamic_partitions(CATALOG_PARTITIONS_NAME))
        )[:2]
    return out


def automation_tick(paths: list[Path]) -> tuple[float, float]:
    """One steady automation-condition-sensor tick with every catalog registered (its second tick)."""
    from diffusion_assets.definitions import defs

    with tempfile.TemporaryDirectory(dir=WORK) as home, dg.instance_for_test(temp_dir=home) as instance:
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, [p.stem for p in paths])
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        wall, cpu, _ = timed(
            lambda: dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
        )
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-automation", action="store_true", help="leave out the automation tick")
    args = parser.parse_args()
    paths = write_catalogs(args.files)
    rounds = [one_round(paths) for _ in range(args.repeat)]
    print(f"{args.files} catalog files ({args.files // INVALID_EVERY} invalid), SQLite instance, "
          f"medians of {args.repeat} rounds")  # fmt: skip
    print(f"{'case':44} {'wall s':>8} {'CPU s':>8}   wall of each round")
    for case in rounds[0]:
        walls = [r[case][0] for r in rounds]
        cpus = [r[case][1] for r in rounds]
        each = ", ".join(f"{w:.2f}" for w in walls)
        print(f"{case:44} {statistics.median(walls):8.2f} {statistics.median(cpus):8.2f}   {each}")
    old = statistics.median(r["old path: has_dynamic_partition per file"][0] for r in rounds)
    new = statistics.median(r["new path: 1 get_dynamic_partitions"][0] for r in rounds)
    first = statistics.median(r["sensor: first tick, every file new"][0] for r in rounds)
    print(f"partition look-ups: old / new = {old / new:.0f}x; a first tick with the old look-ups would "
          f"take about {first - new + old:.1f} s wall (goal for a tick: <= 5 s; Dagster's limit: 60 s)")  # fmt: skip
    if not args.skip_automation:
        wall, cpu = automation_tick(paths)
        print(f"{'automation sensor: steady tick (scale only)':44} {wall:8.2f} {cpu:8.2f}")


if __name__ == "__main__":
    main()
