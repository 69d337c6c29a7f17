"""Build one immutable, versioned LoRA training dataset from a spec in ``lora_datasets/``.

Layout: ``<data root>/datasets/<name>/<version>/`` holds ``train/`` and ``validation/`` (PNGs,
kohya ``.txt`` sidecars and an imagefolder ``metadata.jsonl`` each), ``README.md`` and
``sample_grid.png``; ``<data root>/datasets/<name>/LATEST`` names the newest build. The version is a
hash of the spec's dataset-shaping content and of every member's (image id, file sha256, caption,
split), so a rebuild of unchanged inputs is a no-op and any change makes a new folder.

Crash safety: a version folder is built under a temp name and renamed into place with its own copy
of its membership rows (``.members.parquet``, hidden so that imagefolder loaders and content hashes
ignore it); the membership manifest is written after the rename. A build killed in between leaves a
folder without a manifest, and the next build of the dataset adopts it from that copy
(``recover_builds``); temp folders of dead builds are removed. Builds of one dataset hold its lock
(``.locks/dataset_members/dataset=<name>.lock``), so those leftovers are never a live build's.

``LATEST`` follows the spec as it is when the build ends: a build whose spec was edited while it ran
(say to V2 and back to V1) builds again from the spec as it now is before it moves ``LATEST``, so
the slower of two edits never wins.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from diffusion_assets.datasets.card import GRID_FILE, render_card, sample_paths, write_sample_grid
from diffusion_assets.datasets.checks import refuse_untriggered
from diffusion_assets.datasets.load import LoadedSpec, load_spec
from diffusion_assets.datasets.members import SPLITS, DatasetBuildError, Member, Selection, select_members
from diffusion_assets.files import atomic_write_text, crash_point, exclusive, sha256_bytes, sweep_temp_files
from diffusion_assets.manifests import datasets as dm
from diffusion_assets.manifests.io import lock_path, partition_path, read_rows, read_table, write_table
from diffusion_assets.paths import project_relative

FORMAT_VERSION = 1
"""Bump when the folder layout or the image processing changes: every version changes with it."""

LATEST_FILE = "LATEST"
REBUILDS = 3
"""How often ``build_dataset`` builds again when the spec keeps changing under it, before it gives up."""
MEMBERS_FILE = ".members.parquet"
"""A version folder's own copy of its membership rows, from which a crashed build is adopted."""


@dataclass(frozen=True)
class BuildResult:
    """What a build produced (or found already built)."""

    name: str
    version: str
    folder: Path
    manifest_path: Path
    latest_path: Path
    created: bool
    """False when the version folder already existed and nothing was written to it."""
    total: int
    train: int
    validation: int
    deduplicated: int
    filtered: int
    spec_sha256: str
    members: list[Member] = field(repr=False)
    duplicates: list[tuple[str, str]] = field(repr=False)


def dataset_folder(data_root: Path, name: str, version: str | None = None) -> Path:
    """``<data root>/datasets/<name>`` or, with a version, that version's folder."""
    folder = Path(data_root) / "datasets" / name
    return folder / version if version else folder


def read_latest(data_root: Path, name: str) -> str | None:
    """The version ``LATEST`` points to, or None before the first build."""
    path = dataset_folder(data_root, name) / LATEST_FILE
    return path.read_text().strip() if path.is_file() else None


def dataset_version(loaded: LoadedSpec, members: list[Member]) -> str:
    """16 hex of sha256 over the format, the spec's dataset-shaping content and the sorted members."""
    content = {
        "format": FORMAT_VERSION,
        "spec": loaded.spec.version_content(),
        "members": sorted([m.image_id, m.source_sha256, m.caption, m.split] for m in members),
    }
    return sha256_bytes(json.dumps(content, sort_keys=True, separators=(",", ":")).encode())[:16]


def prepare_image(source: Path, resolution: int) -> Image.Image:
    """RGB, center-cropped to a square, resized to ``resolution``² with LANCZOS."""
    with Image.open(source) as image:
        image = image.convert("RGB")
    w, h = image.size
    if w != h:
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        image = image.crop((left, top, left + side, top + side))
    if image.size != (resolution, resolution):
        image = image.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return image


def write_folder(
    folder: Path, loaded: LoadedSpec, selection: Selection, version: str, data_root: Path
) -> None:
    """Write every file of a version into ``folder`` (a temp folder the caller renames)."""
    members = selection.members
    for split in SPLITS:
        split_members = [m for m in members if m.split == split]
        if not split_members:
            continue
        (folder / split).mkdir(parents=True)
        lines = []
        for m in split_members:
            image = prepare_image(Path(data_root) / m.source_path, loaded.spec.resolution)
            image.save(folder / m.file_name, format="PNG")
            (folder / m.file_name).with_suffix(".txt").write_text(m.caption + "\n", encoding="utf-8")
            row = {"file_name": Path(m.file_name).name, "text": m.caption, "image_id": m.image_id}
            lines.append(json.dumps(row, ensure_ascii=False))
        (folder / split / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_sample_grid(sample_paths(folder, members), folder / GRID_FILE, loaded.spec.resolution)
    (folder / "README.md").write_text(
        render_card(loaded, version, selection, has_grid=True), encoding="utf-8"
    )


def _write_atomically(
    target: Path, loaded: LoadedSpec, selection: Selection, version: str, data_root: Path, rows: list[dict]
) -> bool:
    """Build in a hidden temp folder beside ``target`` and rename it; False if ``target`` appeared meanwhile."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", suffix=".tmp", dir=target.parent))
    try:
        write_folder(tmp, loaded, selection, version, data_root)
        write_table(tmp / MEMBERS_FILE, rows, dm.SCHEMA)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        crash_point("before-rename", target)
        try:
            os.rename(tmp, target)
        except OSError:
            if target.is_dir():  # a concurrent build of the same version won: same content
                return False
            raise
        crash_point("after-rename", target)
        return True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def recover_builds(data_root: Path, name: str) -> list[str]:
    """Remove dead builds' temp folders and files, and index every version folder of ``name`` that has
    no membership manifest from its own ``.members.parquet`` (a build killed after its rename).
    Returns the versions adopted. Call it holding the dataset's lock."""
    root = dataset_folder(data_root, name)
    sweep_temp_files(root)
    adopted = []
    for folder in sorted(p for p in root.glob("*") if p.is_dir() and not p.name.startswith(".")):
        manifest = partition_path(data_root, dm.KIND, {"dataset": name, "dataset_version": folder.name})
        sweep_temp_files(manifest.parent)
        if read_table(manifest) is None and (folder / MEMBERS_FILE).is_file():
            write_table(manifest, [_with_partition(r) for r in read_rows(folder / MEMBERS_FILE)], dm.SCHEMA)
            adopted.append(folder.name)
    # the layout before the hive key was named dataset_version (manifests/…/dataset=<name>/version=<v>):
    # its versions were adopted above from their own members files, so the old partitions go
    for stale in partition_path(data_root, dm.KIND, {"dataset": name}).parent.glob("version=*"):
        shutil.rmtree(stale)
    return adopted


def _with_partition(row: dict) -> dict:
    """A member row of a version built before rows carried ``catalog`` and ``date``: both are read
    from its ``source_path`` (``images/<catalog>/<date>/<image_id>.png``)."""
    if row.get("catalog") and row.get("date"):
        return row
    _, catalog, date, _ = Path(row["source_path"]).parts
    return {**row, "catalog": catalog, "date": date}


def membership_rows(loaded: LoadedSpec, members: list[Member], run_id: str | None) -> list[dict]:
    now = datetime.now(UTC)
    return [
        {
            "image_id": m.image_id,
            "catalog": m.catalog,
            "date": m.date,
            "split": m.split,
            "caption": m.caption,
            "file_name": m.file_name,
            "source_path": m.source_path,
            "source_sha256": m.source_sha256,
            "spec_file": project_relative(loaded.path),
            "spec_sha256": loaded.sha256,
            "dagster_run_id": run_id,
            "created_at": now,
        }
        for m in members
    ]


def build_dataset(spec_path: str | Path, data_root: str | Path, run_id: str | None = None) -> BuildResult:
    """Build (or find) the dataset version a spec describes, index it and point ``LATEST`` at it.

    Raises:
        DatasetSpecError: the spec is invalid (nothing is read or written).
        DatasetBuildError: inputs are missing (generation or caption partitions, image files), or a
            caption would lack the trigger (or a prior caption hold it): nothing is written.
    """
    data_root = Path(data_root)
    # 1. validate the spec (nothing is read or written when it is invalid)
    loaded = load_spec(spec_path)
    lock = lock_path(data_root, dm.KIND, {"dataset": loaded.name})
    with exclusive(lock, f"dataset {loaded.name}"):
        for _ in range(REBUILDS):
            result = _build(loaded, data_root, run_id)
            # 5. LATEST follows the spec as it is now: one edited during the build is built again
            now = load_spec(spec_path)
            if now.sha256 == loaded.sha256:
                if read_latest(data_root, loaded.name) != result.version:
                    atomic_write_text(result.latest_path, result.version + "\n")
                return result
            loaded = now
    raise DatasetBuildError(
        f"{spec_path} changed {REBUILDS} times while its dataset was being built; LATEST was left as it "
        "was: stop editing it, then build again"
    )


def _build(loaded: LoadedSpec, data_root: Path, run_id: str | None) -> BuildResult:
    # 2. what a killed build left, then the members (reads manifests and images)
    recover_builds(data_root, loaded.name)
    selection = select_members(loaded, data_root)
    members = selection.members
    refuse_untriggered(str(loaded.path), members, loaded.spec.trigger.word)
    # 3. the version names the content; an existing version folder is never touched again
    version = dataset_version(loaded, members)
    folder = dataset_folder(data_root, loaded.name, version)
    rows = membership_rows(loaded, members, run_id)
    created = (
        False if folder.is_dir() else _write_atomically(folder, loaded, selection, version, data_root, rows)
    )
    # 4. the membership manifest is written once per version (a no-op rebuild repairs it if missing)
    manifest = partition_path(data_root, dm.KIND, {"dataset": loaded.name, "dataset_version": version})
    if created or read_table(manifest) is None:
        write_table(manifest, rows, dm.SCHEMA)
    latest = dataset_folder(data_root, loaded.name) / LATEST_FILE  # moved by build_dataset
    return BuildResult(
        name=loaded.name,
        version=version,
        folder=folder,
        manifest_path=manifest,
        latest_path=latest,
        created=created,
        total=len(members),
        train=sum(m.split == "train" for m in members),
        validation=sum(m.split == "validation" for m in members),
        deduplicated=len(selection.duplicates),
        filtered=selection.filtered,
        spec_sha256=loaded.sha256,
        members=members,
        duplicates=selection.duplicates,
    )
