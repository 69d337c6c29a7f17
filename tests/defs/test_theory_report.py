"""The theory report asset: curves, strips and a (quick) schedule comparison in one HTML page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import dagster as dg
from PIL import Image

from diffusion_assets.defs.resources import ProjectResource
from diffusion_assets.defs.theory import TheoryReportConfig, theory_report

ROOT = Path(__file__).resolve().parents[2]


def test_quick_theory_report(project, monkeypatch):
    monkeypatch.setenv("DIFFUSION_ASSETS_ROOT", str(ROOT))  # the shipped shapes-tiny VAE and CLIP
    config = TheoryReportConfig(steps=4, recipes=["cosine-eps", "scaled-linear-v-zsnr"], eval_n=2, threads=1)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [theory_report],
            instance=instance,
            resources={"project": ProjectResource()},
            run_config=dg.RunConfig({"theory_report": config}),
        )
    assert result.success
    page = Path(result.get_asset_materialization_events()[0].materialization.metadata["report"].value)
    assert page == project / "data" / "reports" / "theory" / "report.html"
    text = page.read_text()
    for src in re.findall(r"src='([^']+)'|src=\"([^\"]+)\"", text):
        assert (page.parent / (src[0] or src[1])).is_file()
    comparison = json.loads((page.parent / "comparison.json").read_text())
    assert [r["recipe"] for r in comparison] == ["cosine-eps", "scaled-linear-v-zsnr"]
    assert all(0 <= r["seen_all"] <= 1 for r in comparison)
    assert (
        Image.open(page.parent / "noising_cosine.png").width
        > Image.open(page.parent / "noising_cosine.png").height
    )
    # 9 timesteps side by side: the strip is much wider than tall
