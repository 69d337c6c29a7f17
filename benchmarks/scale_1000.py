"""The Dagster side of 1,000 catalogs × 365 dates (docs/SCALE.md), measured on SQLite and on the
shipped Postgres instance (when a server answers on 127.0.0.1, as deploy/ci/postgres.sh starts it).

For 1,000 registered catalogs it times, wall seconds on this machine:

(a) registering them (one ``add_dynamic_partitions`` call);
(b) 1,000 ``has_dynamic_partition`` calls (what ``nightly_generation`` and the catalog sensor do per
    file) against one ``get_dynamic_partitions`` call and a set lookup;
(c) the real ``nightly_generation`` schedule over 1,000 catalog files that declare ``schedule:
    daily`` (the tick the daemon must finish within its schedule timeout, 60 s by default);
(d) enumerating every ``catalog|date`` key of a year (1,000 × 365 multi-partition keys).

    python benchmarks/scale_1000.py [--catalogs 1000] [--days 365]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
from dagster._core.instance.ref import InstanceRef

from diffusion_assets.defs.automation import nightly_generation
from diffusion_assets.defs.partitions import CATALOG_PARTITIONS_NAME, catalog_partitions
from diffusion_assets.defs.resources import ProjectResource

ROOT = Path(__file__).resolve().parents[1]
PG = {"host": "127.0.0.1", "port": 5432, "user": "dagster", "password": "dagster"}


@contextmanager
def sqlite_instance():
    with dg.instance_for_test() as instance:
        yield instance


@contextmanager
def postgres_instance():
    import psycopg2

    admin = psycopg2.connect(dbname="dagster", connect_timeout=5, **PG)
    admin.autocommit = True
    name = f"scale_{uuid.uuid4().hex[:10]}"
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    home = Path(tempfile.mkdtemp(prefix="scale_home_"))
    shutil.copy(ROOT / "deploy" / "postgres" / "dagster.yaml", home / "dagster.yaml")
    env = {
        "DAGSTER_PG_HOST": PG["host"],
        "DAGSTER_PG_USERNAME": PG["user"],
        "DAGSTER_PG_PASSWORD": PG["password"],
    }
    os.environ.update(env, DAGSTER_PG_DB=name)
    try:
        with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
            yield instance
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(home)


def timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def measure(instance, names: list[str], prompts: Path, days: int) -> dict[str, float]:
    out = {}
    out["add 1,000 dynamic partitions"], _ = timed(
        lambda: instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, names)
    )
    out["1,000 has_dynamic_partition calls"], _ = timed(
        lambda: [instance.has_dynamic_partition(CATALOG_PARTITIONS_NAME, n) for n in names]
    )

    def one_call():
        registered = set(instance.get_dynamic_partitions(CATALOG_PARTITIONS_NAME))
        return [n in registered for n in names]

    out["1 get_dynamic_partitions + set lookups"], _ = timed(one_call)
    when = datetime(2026, 12, 1, 2, tzinfo=UTC)
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=when) as context:
        project = ProjectResource(prompts=str(prompts))
        seconds, requests = timed(lambda: list(nightly_generation(context, project=project)))
    assert len(requests) == len(names), len(requests)
    out["nightly_generation tick over 1,000 catalogs"] = seconds
    year = dg.MultiPartitionsDefinition(
        {
            "catalog": catalog_partitions,
            "date": dg.DailyPartitionsDefinition(
                start_date=(when - timedelta(days=days)).strftime("%Y-%m-%d")
            ),
        }
    )
    seconds, keys = timed(
        lambda: year.get_partition_keys(current_time=when, dynamic_partitions_store=instance)
    )
    out[f"enumerate {len(keys):,} catalog|date keys"] = seconds
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogs", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    names = [f"catalog{i:04d}" for i in range(args.catalogs)]
    prompts = Path(tempfile.mkdtemp(prefix="scale_prompts_"))
    for name in names:
        (prompts / f"{name}.yaml").write_text(
            "schedule: daily\ndefaults: {model: sd15, steps: 30}\nentries: [{id: a, prompt: a cat}]\n"
        )
    results = {}
    for label, factory in [("SQLite", sqlite_instance), ("Postgres", postgres_instance)]:
        try:
            with factory() as instance:
                results[label] = measure(instance, names, prompts, args.days)
        except Exception as exc:  # no server: report SQLite alone
            print(f"{label}: skipped ({type(exc).__name__}: {exc})")
    shutil.rmtree(prompts)
    labels = list(results)
    print(f"{args.catalogs} catalogs, {args.days} days; wall seconds")
    print("| operation | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    for operation in next(iter(results.values())):
        print(f"| {operation} | " + " | ".join(f"{results[label][operation]:.3f}" for label in labels) + " |")


if __name__ == "__main__":
    main()
