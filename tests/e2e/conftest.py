"""Fixtures of the browser test: a served throwaway project and headless Chromium looking at it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.dagster_ui import (
    Server,
    browser_missing,
    dagster_dev,
    make_project,
    prepare_instance,
    start_browser,
)

FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed:
        item.stash[FAILED] = True
    return report


@pytest.fixture
def chromium() -> None:
    """CI must have the browser (`.ci/run` installs it and sets CI): there a missing one fails;
    elsewhere the test is skipped with the reason."""
    reason = browser_missing()
    if reason and os.environ.get("CI"):
        pytest.fail(f"CI is set but the browser test cannot run: {reason}")
    if reason:
        pytest.skip(reason)


@pytest.fixture
def served_project(chromium, tmp_path) -> Iterator[tuple[Server, Path]]:
    """``dagster dev`` serving a throwaway project (one 4-image catalog registered, sensors and
    schedule stopped); yields the server and the project root. Stopped with all its processes."""
    root = tmp_path / "project"
    env = make_project(root)
    prepare_instance(env)
    with dagster_dev(env, tmp_path / "dagster_dev.log") as server:
        yield server, root


@pytest.fixture
def browser(served_project, request, tmp_path):
    """Headless Chromium (Selenium). If the test fails, its screenshot and page source are saved
    in the test's tmp dir while the server still runs."""
    driver = start_browser(tmp_path / "chromium-profile", tmp_path / "chromedriver.log")
    try:
        yield driver
    finally:
        if request.node.stash.get(FAILED, False):
            driver.save_screenshot(str(tmp_path / "failure.png"))
            (tmp_path / "failure.html").write_text(driver.page_source)
            print(f"browser at {driver.current_url}; failure.png, failure.html and logs in {tmp_path}")
        driver.quit()
