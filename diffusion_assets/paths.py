"""Where inputs and outputs live. Environment variables override each default.

- ``DIFFUSION_ASSETS_ROOT``: the project (default: the checkout this package sits in, else cwd)
- ``DIFFUSION_ASSETS_PROMPTS``: prompt catalogs (default ``<root>/prompts``)
- ``DIFFUSION_ASSETS_DATASETS``: LoRA dataset specs (default ``<root>/lora_datasets``)
- ``DIFFUSION_ASSETS_DATA``: every output (default ``<root>/data``, git-ignored)
- ``DIFFUSION_ASSETS_MODELS``: offline model mirror, ``<models>/<hub id>`` (default ``<root>/models``)
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
"""A file stem that can name a catalog or dataset partition (the same rule as catalog entry ids)."""


def project_root() -> Path:
    if env := os.environ.get("DIFFUSION_ASSETS_ROOT"):
        return Path(env).resolve()
    checkout = Path(__file__).resolve().parents[1]
    return checkout if (checkout / "prompts").is_dir() else Path.cwd()


def project_relative(path: str | os.PathLike, root: Path | None = None) -> str:
    """``path`` as a POSIX path relative to the project root (``project_root()`` unless ``root``),
    for what is recorded in manifests and embedded in PNGs: two clones of a project at different
    places record the same bytes. A path outside the project stays absolute (it names another place
    on purpose, and is the same on every machine that has it)."""
    resolved = Path(path).resolve()
    base = (root or project_root()).resolve()
    return resolved.relative_to(base).as_posix() if resolved.is_relative_to(base) else resolved.as_posix()


def prompts_dir() -> Path:
    return Path(os.environ.get("DIFFUSION_ASSETS_PROMPTS") or project_root() / "prompts")


def dataset_specs_dir() -> Path:
    return Path(os.environ.get("DIFFUSION_ASSETS_DATASETS") or project_root() / "lora_datasets")


def data_root() -> Path:
    return Path(os.environ.get("DIFFUSION_ASSETS_DATA") or project_root() / "data")


def models_dir() -> Path:
    return Path(os.environ.get("DIFFUSION_ASSETS_MODELS") or project_root() / "models")


def local_model_candidates(model_id: str, project_root: Path, models_dir: Path) -> list[Path]:
    """Where a local model id's folder may be, in the order looked: an absolute path as given;
    ``models/<name>`` (the project's own models, e.g. ``models/shapes-tiny``) first under
    ``models_dir`` (so ``DIFFUSION_ASSETS_MODELS`` moves them with the hub mirror), then under the
    project root; any other relative path under the project root."""
    path = Path(model_id).expanduser()
    if path.is_absolute():
        return [path]
    candidates = [Path(project_root) / path]
    if path.parts[:1] == ("models",):
        candidates.insert(0, Path(models_dir).joinpath(*path.parts[1:]))
    return list(dict.fromkeys(candidates))


def local_model_path(model_id: str, project_root: Path, models_dir: Path) -> Path:
    """The first of ``local_model_candidates`` that exists, else the first (for the error)."""
    candidates = local_model_candidates(model_id, project_root, models_dir)
    return next((c for c in candidates if c.exists()), candidates[0])


def catalog_files(directory: Path | None = None) -> list[Path]:
    """YAML files in a folder (default ``prompts/``), sorted; the stem is the catalog or spec name.

    Every such file, including ones that cannot name a partition: what registers partitions uses
    ``scan_catalog_files``, which leaves those out and says why.
    """
    directory = directory or prompts_dir()
    return sorted(p for p in directory.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))


@dataclass(frozen=True)
class CatalogFiles:
    """The YAML files of a folder that can name a partition, and the ones left out."""

    files: list[Path] = field(default_factory=list)
    """One file per name, sorted."""
    skipped: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """One message per problem, naming the files and the fix."""


def scan_catalog_files(directory: Path | None = None) -> CatalogFiles:
    """``catalog_files`` split into files whose stem can be a partition key and files left out.

    Left out, each with a problem: a stem outside ``NAME_PATTERN`` (``|`` separates the keys of a
    multi-partition) or with ``...`` (Dagster rejects it in keys), and a stem that two files share
    (``x.yaml`` and ``x.yml``): neither is used until one is renamed; a path that is not a regular file (a
    device, a FIFO: reading it never ends). Hidden files (editor locks and backups) are ignored.
    """
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for path in catalog_files(directory):
        if not path.name.startswith("."):
            by_stem[path.stem].append(path)
    scan = CatalogFiles()
    for stem, paths in sorted(by_stem.items()):
        irregular = [path for path in paths if not path.is_file()]  # a FIFO or /dev/zero never ends
        if irregular:
            scan.skipped.extend(paths)
            scan.problems.extend(
                f"{path}: not a regular file (a device, FIFO or folder); never read" for path in irregular
            )
        elif not re.fullmatch(NAME_PATTERN, stem) or "..." in stem:
            scan.skipped.extend(paths)
            scan.problems.extend(
                f"{path}: '{stem}' cannot name a partition (letters, digits, '_', '-', '.', starting with "
                f"a letter or digit); rename it to {_usable_name(stem)}{path.suffix}"
                for path in paths
            )
        elif len(paths) > 1:
            scan.skipped.extend(paths)
            scan.problems.append(
                f"{' and '.join(map(str, paths))} both name '{stem}'; neither is used until one is "
                "deleted or renamed"
            )
        else:
            scan.files.append(paths[0])
    return scan


def _usable_name(stem: str) -> str:
    name = re.sub(r"\.{3,}", ".", re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)).lstrip("_.-")
    return name or "catalog"
