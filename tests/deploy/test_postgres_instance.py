"""The shipped Postgres instance, as README "Production instance" sets it up: a partition goes
through the daemon's run queue against a real PostgreSQL server, and everything Dagster records
(runs, events, dynamic partitions, check results, pool limits) is read back from Postgres itself."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import write_catalog

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PARTITION = "shapes_demo|2026-11-28"
"""The partition README's steps name; the test substitutes its own catalog."""

# README "Production instance", in order; the test runs each line through bash.
STEPS = [
    'cp deploy/postgres/dagster.yaml "$DAGSTER_HOME/dagster.yaml"',
    "dagster instance info",
    "dagster instance concurrency set gpu 1",
    "diffusion-assets sync-partitions",
    "dagster-daemon run -w workspace.yaml &",
    f'dagster job backfill -w workspace.yaml -j generate_catalog --partitions "{PARTITION}" --noprompt',
]
TERMINAL = ("SUCCESS", "FAILURE", "CANCELED")


def _readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def test_readme_production_instance_lists_the_steps_this_test_runs():
    code = "\n".join(re.findall(r"```bash\n(.*?)```", _readme_section("Production instance"), re.S))
    lines = [line.split("  #")[0].rstrip() for line in code.splitlines()]
    positions = [lines.index(step) if step in lines else -1 for step in STEPS]
    assert -1 not in positions, (
        f"README is missing {[s for s, p in zip(STEPS, positions, strict=True) if p < 0]}"
    )
    assert positions == sorted(positions), "README lists the steps in another order"


def _bash(line: str, env: dict, timeout: int = 300) -> str:
    result = subprocess.run(
        ["bash", "-c", line], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{line} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.mark.postgres
@pytest.mark.slow
def test_partition_goes_through_the_run_queue_into_postgres(project, tmp_path, postgres_db, query):
    write_catalog(
        project,
        "pgcat",
        "seed: 7\ndefaults: {model: sd15, steps: 2, width: 32, height: 32, images_per_prompt: 2}\n"
        "entries: [{id: a, prompt: a red circle}, {id: b, prompt: a blue square}]\n",
    )
    (project / "lora_datasets").mkdir()  # no dataset specs: only the generation runs
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = dict(
        os.environ,
        **postgres_db,
        DAGSTER_HOME=str(home),
        DIFFUSION_ASSETS_DATASETS=str(project / "lora_datasets"),
        PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
        HF_HUB_OFFLINE="1",
    )
    partition = "pgcat|2026-11-28"
    copy, info, limit, sync, daemon_step, backfill = STEPS

    _bash(copy, env)
    out = _bash(info, env)
    for storage in ("PostgresRunStorage", "PostgresEventLogStorage", "PostgresScheduleStorage"):
        assert f": {storage}" in out, out
    _bash(limit, env)
    assert "registered catalogs: pgcat" in _bash(sync, env)

    daemon = subprocess.Popen(
        ["bash", "-c", daemon_step.removesuffix(" &")],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the daemon, its code server and every run worker in one group
    )
    try:
        _bash(backfill.replace(PARTITION, partition), env)
        run_id = _wait_for(
            lambda: query(
                "SELECT r.run_id FROM runs r JOIN run_tags t ON t.run_id = r.run_id"
                " WHERE t.key = 'dagster/partition' AND t.value = %s AND r.status IN %s",
                partition,
                TERMINAL,
            ),
            600,
            f"the {partition} run to finish",
        )[0][0]
        # let whatever else the daemon queued (the catalog sensor's run of today) end before teardown
        _wait_for(lambda: not query("SELECT 1 FROM runs WHERE status NOT IN %s", TERMINAL), 300, "other runs")
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        # a code server started outside the daemon's group (`dagster job backfill` loads the
        # workspace through one) outlived the test; every process of this instance names its home
        subprocess.run(["pkill", "-f", str(home)], check=False)

    # 1. the run, queued by the coordinator and started by the daemon
    assert query("SELECT status FROM runs WHERE run_id = %s", run_id) == [("SUCCESS",)]
    tags = dict(query("SELECT key, value FROM run_tags WHERE run_id = %s", run_id))
    assert tags["dagster/partition/catalog"] == "pgcat" and tags["dagster/partition/date"] == "2026-11-28"
    events = [
        row[0]
        for row in query(
            "SELECT dagster_event_type FROM event_logs WHERE run_id = %s AND dagster_event_type IS NOT NULL"
            " ORDER BY id",
            run_id,
        )
    ]
    assert (
        events.index("PIPELINE_ENQUEUED")
        < events.index("PIPELINE_STARTING")
        < events.index("PIPELINE_SUCCESS")
    )
    assert query(
        "SELECT partition FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'"
        " AND asset_key = %s",
        run_id,
        '["generated_images"]',
    ) == [(partition,)]
    # 2. the catalog partition, and every check of the partition, with its result
    assert ("catalogs", "pgcat") in query("SELECT partitions_def_name, partition FROM dynamic_partitions")
    checks = query(
        "SELECT check_name, execution_status FROM asset_check_executions WHERE run_id = %s AND partition = %s",
        run_id,
        partition,
    )
    assert dict(checks) == {
        "manifest_schema": "SUCCEEDED",
        "files_match_manifest": "SUCCEEDED",
        "reproducible": "SUCCEEDED",
    }
    # 3. the pool limit and the daemons that enforce it (run queue and run monitoring)
    assert query('SELECT concurrency_key, "limit" FROM concurrency_limits') == [("gpu", 1)]
    daemons = {row[0] for row in query("SELECT daemon_type FROM daemon_heartbeats")}
    assert {"QUEUED_RUN_COORDINATOR", "MONITORING", "SENSOR", "SCHEDULER"} <= daemons
    # 4. nothing went to SQLite beside it
    assert not [p for p in home.rglob("*") if p.suffix == ".db"], sorted(home.rglob("*"))
    assert len(list((project / "data" / "images" / "pgcat" / "2026-11-28").glob("*.png"))) == 4
