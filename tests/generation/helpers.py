"""Helpers for generation tests: a provider on the tiny mirror and a one-call partition run."""

from __future__ import annotations

import os
from pathlib import Path

from diffusion_assets.generation.partition import RunInfo, generate_partition
from diffusion_assets.models.loading import LoadOptions
from diffusion_assets.models.provider import ModelProvider

DATE = "2026-11-28"


def provider(project: Path, batch_size: int = 4) -> ModelProvider:
    """A CPU provider over the tiny offline mirror the ``project`` fixture points at."""
    return ModelProvider(
        LoadOptions(device="cpu"),
        models_dir=Path(os.environ["DIFFUSION_ASSETS_MODELS"]),
        project_root=project,
        batch_size=batch_size,
    )


def run_partition(project: Path, catalog: Path, prov: ModelProvider, run_id: str = "run-1", **kw):
    run = RunInfo(run_id, f"{catalog.stem}|{DATE}", "test")
    return generate_partition(catalog, DATE, project / "data", prov, run, **kw)
