"""The Dagster UI in a real browser: a partition launched by clicks shows its images and checks.

Headless Debian Chromium (Selenium) against ``dagster dev -w workspace.yaml`` on a free localhost
port, serving a throwaway project with the shipped ``shapes-tiny`` model and one 4-image catalog.
Everything is found the way a user finds it: by visible text, roles and labels.
"""

from __future__ import annotations

import duckdb
import pytest

from tests.e2e.dagster_ui import CATALOG, CHECKS, DATE, DagsterUI

pytestmark = pytest.mark.slow

RUN_TIMEOUT_S = 600


def test_a_partition_launched_from_the_asset_graph_shows_its_images_and_checks(served_project, browser):
    server, root = served_project
    ui = DagsterUI(browser, server.url)
    partition = f"{CATALOG}|{DATE}"

    # 1. the asset graph: the description keeps its placeholders (bare ones vanish as HTML, issue 9)
    ui.open_asset_graph("generation")
    ui.select_asset("generated_images")
    ui.wait_for_text("data/images/<catalog>/<date>/")

    # 2. Materialize selected…: one catalog × date partition, launched, followed to success
    ui.launch_partition("generated_images", CATALOG, DATE)
    ui.open_launched_run()
    ui.wait_for_text(f"partition: {partition}")
    assert ui.wait_for_run_end(RUN_TIMEOUT_S) == "Success"

    # 3. the partition's materialization: the preview table lists the manifest's images
    ui.open_partition("generated_images", partition)
    manifest = root / "data" / "manifests" / "generation" / f"catalog={CATALOG}" / f"date={DATE}"
    image_ids = [
        r[0] for r in duckdb.sql(f"select image_id from read_parquet('{manifest}/*.parquet')").fetchall()
    ]
    assert len(image_ids) == 4
    preview = ui.metadata_row("preview")
    assert all(image_id in preview for image_id in image_ids), preview
    assert ui.metadata_row("thumbnails").strip() != "thumbnails", "the thumbnails entry shows no value"

    # 4. the three checks passed, and the status shown per partition is that partition's own
    ui.open_checks("generated_images")
    for check in CHECKS:
        ui.wait_for_text(f"{check}\nSucceeded")
    ui.click("//button[@role='tab' and normalize-space()='Partitions']")
    ui.wait_for_text("Passed (1)")
