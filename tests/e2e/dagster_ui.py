"""A throwaway project served by ``dagster dev``, and a headless Chromium that clicks through its UI.

Shared by ``tests/e2e/test_ui_browser.py`` and ``benchmarks/ui_launch.py``. The project uses the
shipped ``shapes-tiny`` model (32², CPU) and one 4-image catalog registered as a partition; its
sensors and schedule are stopped before the server starts, so the only run is the one clicked.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

try:
    from selenium import webdriver
    from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # the browser test then skips, or fails under CI, saying so
    webdriver = None

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

CATALOG = "ui_small"
DATE = "2026-11-28"
CATALOG_TEXT = """\
description: Four shapes-tiny images, launched from the Dagster UI by the browser test.
seed: 7
defaults:
  model: shapes-tiny
  images_per_prompt: 2
entries:
  - id: circle
    prompt: "a red circle on a gray background"
  - id: square
    prompt: "a blue square on a black background"
"""
CHECKS = ("manifest_schema", "files_match_manifest", "reproducible")

# Debian's packages (`apt-get install chromium chromium-driver`); the variables override the paths
CHROMIUM = os.environ.get("DIFFUSION_ASSETS_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("DIFFUSION_ASSETS_CHROMEDRIVER", "/usr/bin/chromedriver")
# Without the background-networking flags Chromium floods a closed network with update and
# safe-browsing requests; a fresh profile keeps every run alike.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1600,1000",
)


def browser_missing() -> str | None:
    """Why the browser test cannot run here (None when Chromium, its driver and Selenium are there)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if webdriver is None:
        missing.append("selenium (pip install -e '.[dev]')")
    if not missing:
        return None
    return f"missing {', '.join(missing)}; install with `apt-get install -y chromium chromium-driver` (.ci/run does)"


# --- the project and its instance ------------------------------------------------------------


def make_project(root: Path, catalogs: tuple[str, ...] = (CATALOG,)) -> dict[str, str]:
    """A project under ``root``: ``prompts/<catalog>.yaml`` (the same 4 images each), ``models/``
    (a link to the shipped models), ``data/`` and a private DAGSTER_HOME with the shipped
    ``dagster.yaml``. Returns the environment every command of the project should run with."""
    (root / "prompts").mkdir(parents=True)
    for name in catalogs:
        (root / "prompts" / f"{name}.yaml").write_text(CATALOG_TEXT)
    (root / "models").symlink_to(ROOT / "models")
    home = root / "dagster_home"
    home.mkdir()
    # the community sign-up dialog would cover the page in a fresh browser profile
    shipped = (ROOT / ".dagster_home" / "dagster.yaml").read_text()
    (home / "dagster.yaml").write_text(shipped + "\nnux:\n  enabled: false\n")
    return dict(
        os.environ,
        DAGSTER_HOME=str(home),
        DIFFUSION_ASSETS_ROOT=str(root),
        DIFFUSION_ASSETS_PROMPTS=str(root / "prompts"),
        DIFFUSION_ASSETS_DATA=str(root / "data"),
        DIFFUSION_ASSETS_MODELS=str(root / "models"),
        HF_HUB_OFFLINE="1",
    )


def _run(args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def instigator_names() -> tuple[list[str], list[str]]:
    """The code location's sensors (automation sensors included) and schedules."""
    from diffusion_assets.definitions import defs  # noqa: PLC0415

    repository = defs.get_repository_def()
    return [s.name for s in repository.sensor_defs], [s.name for s in repository.schedule_defs]


def prepare_instance(env: dict[str, str]) -> None:
    """Register the catalogs as partitions (``diffusion-assets sync-partitions``) and stop every
    sensor and schedule with Dagster's CLI, so the daemon of ``dagster dev`` launches nothing."""
    _run([str(BIN / "diffusion-assets"), "sync-partitions"], env)
    sensors, schedules = instigator_names()
    for kind, names in (("sensor", sensors), ("schedule", schedules)):
        for name in names:
            _run([str(BIN / "dagster"), kind, "stop", "-w", "workspace.yaml", name], env)


# --- the server -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(url: str, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
    """POST one query to ``<url>/graphql``; returns its ``data`` (raises on GraphQL errors)."""
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    body = json.loads(urllib.request.urlopen(request, timeout=timeout).read())
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"


def session_pids(sid: int) -> list[int]:
    """Processes of the session ``sid`` (``dagster dev`` and everything it started)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid:
                    pids.append(int(entry.name))
            except OSError:  # exited meanwhile
                pass
    return pids


@dataclass
class Server:
    url: str
    log: Path
    process: subprocess.Popen


@contextlib.contextmanager
def dagster_dev(env: dict[str, str], log: Path, timeout: float = 300) -> Iterator[Server]:
    """``dagster dev -w workspace.yaml`` on a free localhost port, yielded once its code location
    has loaded. On exit (also on failure) it gets Ctrl-C, as in a terminal, and whatever of its
    process session is left after 30 s (webserver, daemon, code servers, run workers) is killed."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session: every descendant can be found and stopped
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"dagster dev exited with {process.returncode}; see {log}")
            with contextlib.suppress(OSError, RuntimeError, KeyError, TypeError):
                entries = graphql(url, LOCATIONS, timeout=5)["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"dagster dev did not load its code location in {timeout:.0f} s; see {log}"
                )
            time.sleep(1)
        yield Server(url, log, process)
    finally:
        _stop_session(process)


def _stop_session(process: subprocess.Popen, grace_s: float = 30) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_s)
    for pid in session_pids(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while session_pids(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)


# --- the browser ----------------------------------------------------------------------------


def start_browser(profile: Path, log: Path):
    """Headless Debian Chromium driven by Selenium, with a fresh profile folder."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER, log_output=str(log)), options=options)


def literal(text: str) -> str:
    """``text`` as an XPath string literal."""
    return f"'{text}'" if "'" not in text else f'"{text}"'


class DagsterUI:
    """What a user does in the Dagster UI, as clicks and explicit waits on visible text."""

    def __init__(self, driver, url: str, timeout: float = 60):
        self.driver, self.url, self.timeout = driver, url, timeout

    def wait(self, condition, timeout: float | None = None, message: str = ""):
        """``WebDriverWait.until``; missing, stale and covered elements are tried again."""
        ignored = (StaleElementReferenceException, ElementClickInterceptedException)
        return WebDriverWait(self.driver, timeout or self.timeout, 0.25, ignored).until(condition, message)

    def body_text(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "body").text

    def wait_for_text(self, text: str, timeout: float | None = None) -> None:
        """Until ``text`` is visible on the page (rendered text, as a reader sees it)."""
        self.wait(
            lambda d: text in self.body_text(), timeout, f"{text!r} never showed on {self.driver.current_url}"
        )

    def element(self, xpath: str, timeout: float | None = None):
        return self.wait(ec.visibility_of_element_located((By.XPATH, xpath)), timeout, f"no {xpath}")

    def click(self, xpath: str, timeout: float | None = None) -> None:
        """Click the element once it is displayed and enabled, retrying while the page re-renders
        (a missing, stale or covered element is tried again until the timeout)."""

        def clicked(driver) -> bool:
            element = driver.find_element(By.XPATH, xpath)
            if not (element.is_displayed() and element.is_enabled()):
                return False
            element.click()
            return True

        self.wait(clicked, timeout, f"could not click {xpath} on {self.driver.current_url}")

    def click_text(self, text: str, timeout: float | None = None) -> None:
        self.click(f"//*[normalize-space(text())={literal(text)}]", timeout)

    # the steps ---------------------------------------------------------------------------

    def open_asset_graph(self, group: str) -> None:
        self.driver.get(f"{self.url}/locations/diffusion_assets/asset-groups/{group}")
        self.wait_for_text("Materialize")

    def select_asset(self, asset: str) -> None:
        """Click the asset's node in the graph; its sidebar (description, checks) opens."""
        self.click_text(asset)
        self.element("//a[normalize-space()='View in Asset Catalog']")

    def launch_partition(self, asset: str, catalog: str, date: str) -> float:
        """From the graph with ``asset`` selected: Materialize selected…, pick ``catalog`` from the
        catalog dimension's list, type ``date`` into the date dimension, Launch 1 run. Returns the
        wall-clock time (``time.time()``) of the launch click."""
        self.click("//button[starts-with(normalize-space(), 'Materialize selected')]")
        title = f"//*[@role='dialog']//*[normalize-space(text())={literal(f'Launch runs to materialize {asset}')}]"
        self.element(title)
        self.click_text("Select a partition or create one")
        self.click_text(catalog)
        self.click(title)  # closes the list
        field = self.element("//*[@role='dialog']//input[starts-with(@placeholder, 'ex: ')]")
        field.send_keys(date)
        self.click(title)
        launched_at = time.time()
        self.click("//*[@role='dialog']//button[normalize-space()='Launch 1 run']")
        return launched_at

    def open_launched_run(self) -> str:
        """Follow the "Launched run …  View" toast to the run's page; returns the run id."""
        self.click(
            "//*[starts-with(normalize-space(), 'Launched run')]//*[self::a or self::button][normalize-space()='View']"
        )
        self.wait(lambda d: "/runs/" in d.current_url, message="the toast's View did not open the run")
        return self.driver.current_url.split("/runs/")[1].split("?")[0].split("/")[0]

    def wait_for_run_end(self, timeout: float) -> str:
        """On a run's page: the status tag once it is final (``Success``, ``Failure``, ``Canceled``)."""
        final = ("Success", "Failure", "Canceled")
        xpath = " | ".join(f"//*[normalize-space(text())={literal(s)}]" for s in final)
        element = self.wait(
            lambda d: next((e for e in d.find_elements(By.XPATH, xpath) if e.is_displayed()), False),
            timeout,
            f"the run did not finish in {timeout:.0f} s",
        )
        return element.text.strip()

    def open_partition(self, asset: str, partition: str) -> None:
        """The asset's Partitions tab with one partition's latest materialization open."""
        self.driver.get(f"{self.url}/assets/{asset}?view=partitions&partition={quote(partition)}")
        self.wait_for_text(partition)

    def metadata_row(self, key: str) -> str:
        """The visible text of the metadata table row whose key is ``key``."""
        return self.element(f"//tr[td[1][normalize-space()={literal(key)}]]").text

    def open_checks(self, asset: str) -> None:
        self.driver.get(f"{self.url}/assets/{asset}?view=checks")
        self.wait_for_text("Checks (")
