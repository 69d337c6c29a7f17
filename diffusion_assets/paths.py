"""Where inputs and outputs live. Environment variables override each default.

- ``DIFFUSION_ASSETS_ROOT``: the project (default: the checkout this package sits in, else cwd)
- ``DIFFUSION_ASSETS_PROMPTS``: prompt catalogs (default ``<root>/prompts``)
- ``DIFFUSION_ASSETS_DATASETS``: LoRA dataset specs (default ``<root>/lora_datasets``)
- ``DIFFUSION_ASSETS_DATA``: every output (default ``<root>/data``, git-ignored)
- ``DIFFUSION_ASSETS_MODELS``: offline model mirror, ``<models>/<hub id>`` (default ``<root>/models``)
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    if env := os.environ.get("DIFFUSION_ASSETS_ROOT"):
        return Path(env).resolve()
    checkout = Path(__file__).resolve().parents[1]
    return checkout if (checkout / "prompts").is_dir() else Path.cwd()


def prompts_dir() -> Path:
    return Path(os.environ.get("DIFFUSION_ASSETS_PROMPTS") or project_root() / "prompts")


def dataset_specs_dir() -> Path:
    return Path(os.environ.get("DIFFUSION_ASSETS_DATASETS") or project_root() / "lora_datasets")


def data_root() -> Path:
    return Path(os.environ.get("DIFFUSION_ASSETS_DATA") or project_root() / "data")


def models_dir() -> Path:
    return Path(os.environ.get("DIFFUSION_ASSETS_MODELS") or project_root() / "models")


def catalog_files(directory: Path | None = None) -> list[Path]:
    """YAML files in a folder (default ``prompts/``), sorted; the stem is the catalog or spec name."""
    directory = directory or prompts_dir()
    return sorted(p for p in directory.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))
