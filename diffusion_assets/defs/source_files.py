"""The files behind `prompt_catalog` and `lora_dataset_spec`, read the same way everywhere.

The catalog sensor, the dataset spec sensor and `diffusion-assets sync-partitions` give every file
whose name can be a partition key a partition, valid or not, and record an observation of it: its
content hash as the partition's data version, whether it is valid and every named error, so an
invalid file shows its errors on its own partition. The `catalog_valid` / `spec_valid` checks
validate a partition's file again, on demand. The instance's partitions and recorded hashes are read with one query
each per tick, never one per file (1,000 `has_dynamic_partition` calls took 83 s on SQLite).
"""

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import dagster as dg

from diffusion_assets.catalog.load import load_catalog
from diffusion_assets.datasets.load import load_spec
from diffusion_assets.files import sha256_file
from diffusion_assets.paths import scan_catalog_files
from diffusion_assets.yaml_input import load_error_message

from .partitions import DATA_VERSION_TAG, lora_dataset_spec, partitioned_check, prompt_catalog
from .resources import ProjectResource

_CHUNK = 500
"""Storage ids per query: SQLite limits the variables of one statement."""


@dataclass(frozen=True)
class SourceFolder:
    """A watched folder of YAML files: the asset whose partitions they are, and their on-demand check."""

    asset: dg.AssetSpec
    check: dg.AssetCheckSpec
    noun: str

    @property
    def partitions_name(self) -> str:
        return self.asset.partitions_def.name


CATALOGS = SourceFolder(
    prompt_catalog,
    partitioned_check(
        "catalog_valid",
        "prompt_catalog",
        prompt_catalog.partitions_def,
        description="Validates the catalog file again and lists every error with its file, entry, field and "
        "fix. The catalog sensor records each file's errors on its observation; run this after fixing a file "
        "the catalog refers to (a control image, a local model folder).",
    ),
    "catalog",
)
DATASET_SPECS = SourceFolder(
    lora_dataset_spec,
    partitioned_check(
        "spec_valid",
        "lora_dataset_spec",
        lora_dataset_spec.partitions_def,
        description="Validates the dataset spec again and lists every error with its field and fix. The "
        "dataset spec sensor records each file's errors on its observation.",
    ),
    "dataset spec",
)


@dataclass(frozen=True)
class SourceFile:
    """One file as it reads now."""

    name: str
    """The file stem: its partition key."""
    path: Path
    sha256: str
    problems: str | None = None
    """Every named error (``load_error_message``), or None when the file is valid."""

    @property
    def valid(self) -> bool:
        return self.problems is None


def read_source_file(path: Path, load: Callable[[Path], object], sha256: str | None = None) -> SourceFile:
    """Hash and validate one file; whatever ``load`` raises becomes the file's problems.

    Raises:
        OSError: the file cannot be read (deleted or unreadable since the folder was scanned).
    """
    digest = sha256 or sha256_file(path)
    try:
        load(path)
    except Exception as exc:  # one bad file never blocks the others
        return SourceFile(path.stem, path, digest, load_error_message(path, exc))
    return SourceFile(path.stem, path, digest)


def _problems_md(file: SourceFile) -> dg.MetadataValue:
    return dg.MetadataValue.md(f"```\n{file.problems}\n```" if file.problems else "none")


def file_observation(folder: SourceFolder, file: SourceFile) -> dg.AssetObservation:
    """The observation of one file: its content hash as data version, whether it is valid, and every
    named error. (Dagster 1.13 stores one runless check evaluation per partition only, so the
    sensor records validity here; the `catalog_valid` / `spec_valid` check validates again in a run.)"""
    return dg.AssetObservation(
        asset_key=folder.asset.key,
        partition=file.name,
        tags={DATA_VERSION_TAG: file.sha256},
        metadata={
            "path": dg.MetadataValue.path(str(file.path)),
            "valid": file.valid,
            "problems": _problems_md(file),
        },
    )


def recorded_hashes(
    instance: dg.DagsterInstance, folder: SourceFolder, names: Iterable[str] | None = None
) -> dict[str, str]:
    """Partition → the content hash last recorded for it by ``file_observation`` (which records
    ``valid``); ``names`` limits the partitions read. Two queries in all."""
    key = folder.asset.key
    latest = instance.get_latest_storage_id_by_partition(key, dg.DagsterEventType.ASSET_OBSERVATION)
    wanted = list(latest.values()) if names is None else [latest[n] for n in names if n in latest]
    hashes = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        records = instance.fetch_observations(
            dg.AssetRecordsFilter(asset_key=key, storage_ids=chunk), limit=len(chunk)
        ).records
        for record in records:
            observation = record.asset_observation
            if observation is not None and "valid" in observation.metadata:
                hashes[record.partition_key] = observation.tags.get(DATA_VERSION_TAG)
    return hashes


def unrecorded(
    instance: dg.DagsterInstance, folder: SourceFolder, files: list[SourceFile]
) -> list[SourceFile]:
    """The files whose content hash is not the one the instance last recorded for their partition."""
    if not files:
        return []
    recorded = recorded_hashes(instance, folder, [f.name for f in files])
    return [f for f in files if recorded.get(f.name) != f.sha256]


class Change(NamedTuple):
    """A valid file's new content: its name, sha256 and how many contents it has had so far."""

    name: str
    digest: str
    number: int


@dataclass
class FolderTick:
    """One sensor tick's view of a watched folder."""

    cursor: dict[str, dict]
    """name → {"sha256": last content seen, "changes": contents seen so far, "valid": bool}."""
    first: bool
    """No cursor yet (a fresh instance or a reset cursor): take stock, request nothing."""
    changed: list[Change] = field(default_factory=list)
    """Valid files new or edited since the previous tick; always empty on a first tick."""
    new_partitions: list[str] = field(default_factory=list)
    """Files, valid or not, with no partition in the instance (new, or deleted in the UI)."""
    events: list = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    """Every invalid file on this tick: failed to load, unreadable, or a name that cannot be a key."""

    def cursor_json(self) -> str:
        return json.dumps(self.cursor, sort_keys=True)


def _read_cursor(cursor: str | None) -> dict[str, dict]:
    state = json.loads(cursor) if cursor else {}
    # cursors written before change numbers were kept hold the bare hash
    return {k: {"sha256": v, "changes": 0} if isinstance(v, str) else v for k, v in state.items()}


def compare_folder(
    context: dg.SensorEvaluationContext, folder: SourceFolder, directory: Path, load: Callable[[Path], object]
) -> FolderTick:
    """Compare a folder's files with the cursor and with the instance's partitions.

    A file is validated when its content is new to the cursor or its partition is missing from the
    instance (a user can delete dynamic partitions in the UI); its observation is recorded unless
    the instance already holds that hash. Each problem is logged when found, and every invalid file
    is named once more at the end of every tick.
    """
    scan = scan_catalog_files(directory)
    tick = FolderTick(cursor=_read_cursor(context.cursor), first=context.cursor is None)
    registered = set(context.instance.get_dynamic_partitions(folder.partitions_name))
    for problem in scan.problems:
        context.log.error(problem)
    tick.invalid.extend(path.name for path in scan.skipped)
    to_record = []
    for path in scan.files:
        name = path.stem
        try:
            digest = sha256_file(path)
        except OSError as exc:  # deleted or unreadable since the scan; the next tick looks again
            context.log.error(f"{path}: cannot be read ({exc})")
            tick.invalid.append(path.name)
            continue
        seen = tick.cursor.get(name, {})
        edited = seen.get("sha256") != digest
        if not edited and name in registered and "valid" in seen:
            if not seen["valid"]:
                tick.invalid.append(path.name)
            continue
        file = read_source_file(path, load, digest)
        # the change number keeps a revert (A→B→A) apart from the first A: run keys are never reused
        number = seen.get("changes", 0) + edited
        tick.cursor[name] = {"sha256": digest, "changes": number, "valid": file.valid}
        if not file.valid:
            context.log.error(file.problems)
            tick.invalid.append(path.name)
        if name not in registered:
            tick.new_partitions.append(name)
        if edited and file.valid and not tick.first:
            tick.changed.append(Change(name, digest, number))
        to_record.append(file)
    tick.events = [file_observation(folder, f) for f in unrecorded(context.instance, folder, to_record)]
    if tick.invalid:
        context.log.warning(invalid_message(folder, tick.invalid))
    return tick


def invalid_message(folder: SourceFolder, invalid: Iterable[str]) -> str:
    """One line naming every invalid file and where its errors are."""
    names = list(invalid)
    return (
        f"{len(names)} invalid file(s), never run until edited or renamed: {', '.join(names)} (errors: "
        f"each one's `{folder.asset.key.to_user_string()}` partition, and this tick's log)"
    )


def sensor_result(folder: SourceFolder, tick: FolderTick, requests: list[dg.RunRequest]) -> dg.SensorResult:
    """The tick's partitions, events, cursor and requests; without requests, a skip message that
    says why (a first tick takes stock) and names every invalid file."""
    notes = []
    if tick.first:
        notes.append(f"first tick: {len(tick.cursor)} {folder.noun} file(s) registered, nothing requested")
    if tick.invalid:
        notes.append(invalid_message(folder, tick.invalid))
    add = folder.asset.partitions_def.build_add_request(tick.new_partitions) if tick.new_partitions else None
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[add] if add else [],
        asset_events=tick.events,
        cursor=tick.cursor_json(),
        skip_reason="; ".join(notes) if notes and not requests else None,
    )


def _check_result(folder: SourceFolder, name: str, directory: Path, load: Callable[[Path], object]):
    path = next((p for p in scan_catalog_files(directory).files if p.stem == name), None)
    try:
        if path is None:
            raise FileNotFoundError(f"no usable file named {name}.yaml in {directory}")
        file = read_source_file(path, load)
    except OSError as exc:  # the partition stays (and its outputs); the file is gone or unreadable
        file = SourceFile(name, directory / f"{name}.yaml", "", f"{exc} (renamed or deleted?)")
    return dg.AssetCheckResult(
        asset_key=folder.asset.key,
        check_name=folder.check.name,
        passed=file.valid,
        description="valid" if file.valid else file.problems.splitlines()[0],
        metadata={"file": dg.MetadataValue.path(str(file.path)), "problems": _problems_md(file)},
    )


@dg.multi_asset_check(specs=[CATALOGS.check])
def catalog_valid(context: dg.AssetCheckExecutionContext, project: ProjectResource):
    """Validates `prompts/<catalog>.yaml` again and records every named error."""
    yield _check_result(CATALOGS, context.partition_key, project.prompts_dir(), load_catalog)


@dg.multi_asset_check(specs=[DATASET_SPECS.check])
def spec_valid(context: dg.AssetCheckExecutionContext, project: ProjectResource):
    """Validates `lora_datasets/<dataset>.yaml` again and records every named error."""
    yield _check_result(DATASET_SPECS, context.partition_key, project.datasets_dir(), load_spec)
