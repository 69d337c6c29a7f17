"""Fast start: the code location, `validate` and `lineage` import no model stack.

Every run launched from the UI, every step process and every code-server reload imports
``diffusion_assets.definitions``; torch, diffusers and transformers alone cost ~10 CPU s there
(issue 9), so they load inside the asset bodies, resources and commands that use them. Each case
runs in a fresh interpreter and reads ``sys.modules``, so an import that creeps back fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_catalog
from tests.lineage.conftest import chain  # noqa: F401  (the fixture: a real generated chain)

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "diffusers", "transformers", "peft", "torchmetrics", "matplotlib", "accelerate", "cv2")
"""Modules whose import costs seconds; none may load before a step needs a model."""

PROBE = """
import json, sys
{body}
print("LOADED=" + json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))
"""


def _loaded(body: str, env: dict | None = None) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(body=body)],
        cwd=ROOT,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = [x for x in result.stdout.splitlines() if x.startswith("LOADED=")]
    assert line, f"probe failed:\n{result.stdout}\n{result.stderr}"
    return set(json.loads(line[0].removeprefix("LOADED=")))


def test_definitions_import_no_model_stack():
    loaded = _loaded("import diffusion_assets.definitions as d; assert d.defs.resolve_asset_graph()")
    assert "dagster" in loaded  # the probe really imported the code location
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_loading_the_code_location_prints_no_warning():
    """A first start is quiet: with every warning shown (``-W default``, deprecations included),
    importing and resolving the code location writes nothing to stderr. Dagster 1.13's beta/preview
    notices for features the project uses are silenced where they are raised; deprecated
    arguments are not used at all."""
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "default",
            "-c",
            "import diffusion_assets.definitions as d; d.defs.resolve_asset_graph()",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_validate_needs_no_torch(project):
    write_catalog(
        project,
        "grid",
        "seed: 1\nvariables: {c: [red, blue]}\ndefaults: {model: sd15}\nentries: [{id: a, prompt: 'a {c} x'}]",
    )
    body = (
        "from diffusion_assets.cli import main\n"
        f"code = main(['validate', {str(project / 'prompts' / 'grid.yaml')!r}])\n"
        "assert code == 0, code"
    )
    loaded = _loaded(body)
    assert "diffusion_assets" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


@pytest.mark.parametrize("how", ["png", "image_id", "dataset"])
def test_lineage_needs_no_torch(chain, how):  # noqa: F811
    target = {
        "png": [str(chain.png(0))],
        "image_id": [chain.rows[1]["image_id"]],
        "dataset": ["--dataset", "style"],
    }[how]
    body = (
        "from diffusion_assets.cli import main\n"
        f"code = main(['lineage', *{target!r}, '--data', {str(chain.data)!r}])\n"
        "assert code == 0, code"
    )
    loaded = _loaded(body)
    assert "duckdb" in loaded or "pyarrow" in loaded  # it really read the manifests
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
