"""A 4-image partition launched from the Dagster UI, against the same partition from the CLI.

Sets up the browser test's throwaway project (``tests/e2e/dagster_ui.py``: the shipped
``shapes-tiny`` model, a 4-image catalog, sensors and schedule stopped) with two identical catalogs,
serves it with ``dagster dev -w workspace.yaml`` and, per repeat and date, interleaved:

(a) UI: headless Chromium clicks Materialize selected… → catalog `ui_small`, the date → Launch 1 run
    in the asset graph, exactly as the browser test does; the run goes through the run queue, the
    daemon, a run worker and a step process (the default multiprocess executor);
(b) CLI: ``diffusion-assets materialize ui_small_cli --date <date>`` in a fresh process (one
    in-process run on the same instance), with the server left idle and the browser on a blank page.

The pairs alternate which path goes first.

Wall time from the launch (the click; the CLI's process start) to the run's RUN_SUCCESS event,
split at the first PNG written (its mtime): everything before it is start-up (queue, run worker,
step process, imports, pipeline load) plus one 4-image batch. Phases come from the run's event log
timestamps. Wall time on a shared 2-core machine varies with its load (printed); compare the
ratios of one run, and repeat. CPU seconds of every process involved are given beside it (the
server's whole process session for the UI, idle server loops included; the CLI's process tree).

    python benchmarks/ui_launch.py [--repeat 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.dagster_ui import (  # noqa: E402
    BIN,
    CATALOG,
    DagsterUI,
    browser_missing,
    dagster_dev,
    make_project,
    prepare_instance,
    session_pids,
    start_browser,
)

CLI_CATALOG = f"{CATALOG}_cli"
FIRST_DATE = date(2026, 11, 28)
RUN_TIMEOUT_S = 900
IDLE_WINDOW_S = 30
# event types that start each phase, in order; "first_png" is the first image's mtime
UI_PHASES = (
    ("queued and dequeued", "RUN_STARTING"),
    ("run worker start", "RUN_START"),
    ("step process start", "STEP_START"),
    ("pipeline load + first batch", "first_png"),
    ("rest of the step (checks: one batch regenerated)", "STEP_SUCCESS"),
    ("run end", "RUN_SUCCESS"),
)
CLI_PHASES = (
    ("process start, imports, partition sync", "RUN_START"),
    ("step start", "STEP_START"),
    ("pipeline load + first batch", "first_png"),
    ("rest of the step (checks: one batch regenerated)", "STEP_SUCCESS"),
    ("run end", "RUN_SUCCESS"),
)


def event_times(instance, run_id: str) -> dict[str, float]:
    """First timestamp of each event type in the run's event log (seconds since the epoch)."""
    times: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        if entry.dagster_event is not None:
            times.setdefault(entry.dagster_event_type.name, entry.timestamp)
    return times


def session_cpu_s(sid: int) -> float:
    """CPU seconds (user + system, reaped children included) of the processes of session ``sid``."""
    total = 0
    for pid in session_pids(sid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile (its time is in its parent's children's time)
            continue
        total += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


def first_png(data: Path, catalog: str, day: str) -> float:
    return min(p.stat().st_mtime for p in (data / "images" / catalog / day).glob("*.png"))


def phases(start: float, times: dict[str, float], spec) -> dict[str, float]:
    """Seconds spent in each phase, from ``start`` through the listed events."""
    out, previous = {}, start
    for name, event in spec:
        out[name] = times[event] - previous
        previous = times[event]
    return out


def measure_ui(ui: DagsterUI, sid: int, instance, data: Path, day: str) -> dict:
    ui.open_asset_graph("generation")
    ui.select_asset("generated_images")
    idle = set(session_pids(sid))
    cpu = session_cpu_s(sid)
    clicked = ui.launch_partition("generated_images", CATALOG, day)
    run_id = ui.open_launched_run()
    status = ui.wait_for_run_end(RUN_TIMEOUT_S)
    if status != "Success":
        raise SystemExit(f"the UI run {run_id} ended with {status}")
    ui.driver.get("about:blank")  # no polling page open while the CLI runs
    deadline = time.monotonic() + 120  # the run worker exits and is reaped: its CPU time is counted
    while set(session_pids(sid)) - idle and time.monotonic() < deadline:
        time.sleep(0.5)
    cpu = session_cpu_s(sid) - cpu
    times = event_times(instance, run_id) | {"first_png": first_png(data, CATALOG, day)}
    return {
        "total": times["RUN_SUCCESS"] - clicked,
        "before_first_image": times["first_png"] - clicked,
        "phases": phases(clicked, times, UI_PHASES),
        "cpu": cpu,
    }


def measure_cli(env: dict[str, str], instance, data: Path, day: str) -> dict:
    import dagster as dg  # noqa: PLC0415

    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    result = subprocess.run(
        [str(BIN / "diffusion-assets"), "materialize", CLI_CATALOG, "--date", day],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    exited = time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"diffusion-assets materialize failed:\n{result.stdout}\n{result.stderr}")
    (run,) = instance.get_runs(dg.RunsFilter(tags={"dagster/partition": f"{CLI_CATALOG}|{day}"}))
    times = event_times(instance, run.run_id) | {"first_png": first_png(data, CLI_CATALOG, day)}
    return {
        "total": times["RUN_SUCCESS"] - started,
        "before_first_image": times["first_png"] - started,
        "phases": phases(started, times, CLI_PHASES),
        "process_exit_after_success": exited - times["RUN_SUCCESS"],
        "cpu": after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime,
    }


def _table(rows: list[dict], spec, label: str) -> list[str]:
    lines = [f"| {label} phase | median s | runs |", "|---|---|---|"]
    for name, _ in spec:
        values = [r["phases"][name] for r in rows]
        runs = ", ".join(f"{v:.1f}" for v in values)
        lines.append(f"| {name} | {statistics.median(values):.1f} | {runs} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2, help="UI/CLI pairs, each on a new date")
    parser.add_argument("--json", help="also write every measurement to this file")
    args = parser.parse_args()
    if reason := browser_missing():
        raise SystemExit(f"this benchmark drives Chromium: {reason}")

    with tempfile.TemporaryDirectory(prefix="ui_launch_") as scratch:
        tmp = Path(scratch)
        env = make_project(tmp / "project", catalogs=(CATALOG, CLI_CATALOG))
        data = tmp / "project" / "data"
        os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
        prepare_instance(env)
        import dagster as dg  # noqa: PLC0415

        ui_rows, cli_rows, loads = [], [], []
        with dg.DagsterInstance.get() as instance, dagster_dev(env, tmp / "dagster_dev.log") as server:
            driver = start_browser(tmp / "chromium-profile", tmp / "chromedriver.log")
            try:
                ui = DagsterUI(driver, server.url)
                sid = server.process.pid
                idle_cpu = session_cpu_s(sid)
                time.sleep(IDLE_WINDOW_S)  # what the idle server costs (webserver, daemon, code servers)
                idle_rate = (session_cpu_s(sid) - idle_cpu) / IDLE_WINDOW_S
                for i in range(args.repeat):
                    day = (FIRST_DATE - timedelta(days=i)).isoformat()
                    # alternate which goes first, so warm caches favour neither
                    order = ("ui", "cli") if i % 2 == 0 else ("cli", "ui")
                    for path in order:
                        loads.append(os.getloadavg()[0])
                        if path == "ui":
                            ui_rows.append(measure_ui(ui, sid, instance, data, day))
                        else:
                            cli_rows.append(measure_cli(env, instance, data, day))
                        row = (ui_rows if path == "ui" else cli_rows)[-1]
                        print(f"{path:3} {day}: {row['total']:.1f} s", flush=True)
            finally:
                driver.quit()
    measured = {"ui": ui_rows, "cli": cli_rows, "loads": loads, "idle_cpu_per_s": idle_rate}
    if args.json:
        Path(args.json).write_text(json.dumps(measured, indent=1))
    report(**measured)


def report(ui: list[dict], cli: list[dict], loads: list[float], idle_cpu_per_s: float) -> None:
    """Print the measurements as Markdown tables (medians over the pairs)."""
    ui_rows, cli_rows, idle_rate = ui, cli, idle_cpu_per_s

    def med(rows, key):
        return statistics.median(r[key] for r in rows)

    print()
    print(f"{len(ui_rows)} UI/CLI pairs; 1-minute load average at each start: "
          + ", ".join(f"{v:.1f}" for v in loads))  # fmt: skip
    print()
    print(
        "| path | launch → RUN_SUCCESS, median s | launch → first image, median s | runs (total s) "
        "| CPU s of all its processes, median |"
    )
    print("|---|---|---|---|---|")
    for label, rows in (
        ("UI (click in the asset graph)", ui_rows),
        ("CLI (`diffusion-assets materialize`)", cli_rows),
    ):
        runs = ", ".join(f"{r['total']:.1f}" for r in rows)
        print(
            f"| {label} | {med(rows, 'total'):.1f} | {med(rows, 'before_first_image'):.1f} | {runs} "
            f"| {med(rows, 'cpu'):.1f} |"
        )
    ratio = statistics.median(u["total"] / c["total"] for u, c in zip(ui_rows, cli_rows, strict=True))
    before = statistics.median(
        (u["before_first_image"] - c["before_first_image"]) for u, c in zip(ui_rows, cli_rows, strict=True)
    )
    print()
    print(f"UI / CLI wall time: {ratio:.2f}x (median of pairs); the UI's extra time before the first "
          f"image: {before:.1f} s (median of pairs)")  # fmt: skip
    print(
        f"The idle server (webserver, daemon, code servers) used {idle_rate:.3f} CPU s per second over "
        f"{IDLE_WINDOW_S} s; the UI's CPU figure includes that for the whole run."
    )
    print()
    print("\n".join(_table(ui_rows, UI_PHASES, "UI")))
    print()
    print("\n".join(_table(cli_rows, CLI_PHASES, "CLI")))
    print()
    print(f"CLI process exit after RUN_SUCCESS: {med(cli_rows, 'process_exit_after_success'):.1f} s (median)")


if __name__ == "__main__":
    main()
