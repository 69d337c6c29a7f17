"""Choose a dataset's members: read the sources' manifests, caption, filter, dedup and split.

Nothing here writes files. Order is stable everywhere: sources as the spec lists them, dates
ascending, rows in manifest (catalog) order; near-duplicates keep the earliest image in that order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

from diffusion_assets.datasets.load import LoadedSpec, has_word
from diffusion_assets.datasets.spec import DatasetSpec, Source
from diffusion_assets.files import sha256_bytes, sha256_file
from diffusion_assets.manifests import captions as cm
from diffusion_assets.manifests import generation as gm
from diffusion_assets.manifests.io import PART_FILE, partition_path, read_table

SPLITS = ("train", "validation")
_SHOWN = 5  # ids listed in an error message before "... and N more"


class DatasetBuildError(ValueError):
    """The spec is valid but its inputs are not ready; the message names what and the fix."""


@dataclass(frozen=True)
class Member:
    """One image of the dataset, with its final caption and split."""

    image_id: str
    catalog: str
    date: str
    entry_id: str
    prompt: str
    source_path: str
    source_sha256: str
    caption: str = ""
    split: str = "train"
    score: float | None = None
    prior: bool = False
    """From a ``prior: true`` source: a regularisation image, captioned without the trigger."""

    @property
    def file_name(self) -> str:
        """Path inside the version folder, e.g. ``train/<image_id>.png``."""
        return f"{self.split}/{self.image_id}.png"


@dataclass
class Selection:
    members: list[Member]
    partitions: list[tuple[str, str, int]]
    """``(catalog, date, images read)`` for every source partition."""
    filtered: int = 0
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    """``(dropped image_id, kept image_id)`` for each near-duplicate."""


def _ids(ids: list[str]) -> str:
    more = f" ... and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else ""
    return ", ".join(ids[:_SHOWN]) + more


def source_dates(data_root: Path, source: Source) -> list[str]:
    """The dates of ``source`` that have a generation manifest, ascending; raise if any is missing."""
    catalog_dir = partition_path(data_root, gm.KIND, {"catalog": source.catalog}).parent
    found = sorted(p.parent.name.removeprefix("date=") for p in catalog_dir.glob(f"date=*/{PART_FILE}"))
    wanted = found if source.dates == "all" else list(source.dates)
    if not found:
        raise DatasetBuildError(
            f"catalog '{source.catalog}' has no generation manifest under {catalog_dir}"
            f"\n    hint: materialize generated_images for a partition of catalog {source.catalog} first "
            "(is the catalog in prompts/?), or remove this source."
        )
    missing = [d for d in wanted if d not in found]
    if missing:
        raise DatasetBuildError(
            f"catalog '{source.catalog}' has no generation manifest for {', '.join(missing)} under {catalog_dir}"
            f"\n    hint: materialize generated_images for partition(s) "
            f"{', '.join(f'{source.catalog}|{d}' for d in missing)}, or change the spec's dates "
            f"(generated: {', '.join(found)})."
        )
    return wanted


def read_sources(spec: DatasetSpec, data_root: Path) -> tuple[list[Member], list[tuple[str, str, int]]]:
    """Every generated image of the spec's sources, in stable order, with its file checked."""
    members, partitions, broken = [], [], []
    for source in spec.sources:
        for date in source_dates(data_root, source):
            keys = {"catalog": source.catalog, "date": date}
            table = read_table(partition_path(data_root, gm.KIND, keys))
            rows = table.select(["image_id", "entry_id", "prompt", "path", "sha256"]).to_pylist()
            partitions.append((source.catalog, date, len(rows)))
            for row in rows:
                file = Path(data_root) / row["path"]
                if not file.is_file() or sha256_file(file) != row["sha256"]:
                    broken.append(row["image_id"])
                member = Member(
                    row["image_id"],
                    source.catalog,
                    date,
                    row["entry_id"],
                    row["prompt"],
                    row["path"],
                    row["sha256"],
                    prior=source.prior,
                )
                members.append(member)
    if broken:
        raise DatasetBuildError(
            f"{len(broken)} generated image(s) are missing or differ from their manifest sha256: {_ids(broken)}"
            "\n    hint: re-materialize generated_images for their partitions (it repairs changed files)."
        )
    return members, partitions


def attach_captions(members: list[Member], spec: DatasetSpec, data_root: Path) -> list[Member]:
    """Each member with its raw caption (and score): the prompt, or the caption manifest's row."""
    if spec.captions.source == "prompt":
        return [_replace(m, caption=m.prompt) for m in members]
    rows: dict[str, dict] = {}
    has_score = True
    for catalog, date in dict.fromkeys((m.catalog, m.date) for m in members):
        table = read_table(partition_path(data_root, cm.KIND, {"catalog": catalog, "date": date}))
        if table is None:
            continue
        has_score = has_score and "score" in table.column_names
        rows.update({r["image_id"]: r for r in table.to_pylist()})
    missing = [m for m in members if m.image_id not in rows]
    if missing:
        parts = ", ".join(dict.fromkeys(f"{m.catalog}|{m.date}" for m in missing))
        raise DatasetBuildError(
            f"{len(missing)} image(s) have no caption in the caption manifest: "
            f"{_ids([m.image_id for m in missing])}\n    hint: materialize the captions asset for partition(s) "
            f"{parts}, or set `captions.source: prompt` in the spec."
        )
    if spec.filters.min_caption_score is not None:
        unscored = [m.image_id for m in members if not has_score or rows[m.image_id].get("score") is None]
        if unscored:
            raise DatasetBuildError(
                f"filters.min_caption_score is set but {len(unscored)} caption(s) have no score: {_ids(unscored)}"
                "\n    hint: caption with a captioner that writes a `score` column, or set min_caption_score: null."
            )
    return [
        _replace(m, caption=rows[m.image_id]["caption"], score=rows[m.image_id].get("score")) for m in members
    ]


def _replace(member: Member, **changes) -> Member:
    return Member(**{**member.__dict__, **changes})


def final_caption(member: Member, spec: DatasetSpec) -> str:
    """Template, then trigger: ``phrase`` is added unless the text already contains the trigger word.

    Prior images never get the trigger: no word or phrase is added and ``{trigger}`` expands to "".
    """
    trigger = spec.trigger
    text = member.caption
    if spec.captions.template is not None:
        text = spec.captions.template.format(
            caption=member.caption,
            prompt=member.prompt,
            trigger="" if member.prior else trigger.word or "",
            entry_id=member.entry_id,
            catalog=member.catalog,
        )
    text = " ".join(text.split())
    if not member.prior and trigger.word and trigger.placement != "none" and not has_word(text, trigger.word):
        phrase = trigger.phrase or trigger.word
        text = f"{phrase}, {text}" if trigger.placement == "prefix" else f"{text.rstrip(' .,')}, {phrase}"
    if not text:
        raise DatasetBuildError(
            f"image {member.image_id} has an empty caption; check its caption or the template"
        )
    return text


def phash_bits(path: Path) -> np.ndarray:
    """The 64-bit perceptual hash (DCT of a 32² grayscale, Zauner 2010) as a bool vector."""
    with Image.open(path) as image:
        return imagehash.phash(image).hash.flatten()


def dedup(
    members: list[Member], data_root: Path, max_distance: int
) -> tuple[list[Member], list[tuple[str, str]]]:
    """Keep each image unless its phash is within ``max_distance`` bits of an image kept before it."""
    kept: list[Member] = []
    hashes = np.zeros((len(members), 64), dtype=bool)
    duplicates = []
    for member in members:
        bits = phash_bits(Path(data_root) / member.source_path)
        if kept:
            distances = (hashes[: len(kept)] != bits).sum(axis=1)
            nearest = int(distances.argmin())
            if distances[nearest] <= max_distance:
                duplicates.append((member.image_id, kept[nearest].image_id))
                continue
        hashes[len(kept)] = bits
        kept.append(member)
    return kept, duplicates


def split_score(seed: int, image_id: str) -> float:
    """A uniform number in [0, 1) from (seed, image_id): an image's split never depends on other images."""
    return int(sha256_bytes(f"{seed}:{image_id}".encode())[:16], 16) / 2**64


def assign_splits(members: list[Member], fraction: float, seed: int) -> list[Member]:
    """``validation`` when the split score is below ``fraction``.

    The trainer reads only ``train/``, so a one-image dataset keeps its image in train whatever its
    score. So that both splits exist, a dataset of two or more images whose hashing left one split
    empty moves the single nearest image across (only tiny datasets ever need this).
    """
    scores = {m.image_id: split_score(seed, m.image_id) for m in members}
    validation = {i for i, s in scores.items() if s < fraction}
    if len(members) == 1:
        validation = set()
    elif fraction > 0:
        if not validation:
            validation = {min(scores, key=scores.get)}
        elif len(validation) == len(members):
            validation.discard(max(scores, key=scores.get))
    return [_replace(m, split="validation" if m.image_id in validation else "train") for m in members]


def entry_pattern(glob: str) -> re.Pattern:
    """``*`` and ``?`` are wildcards; brackets are literal, since expanded ids use them (``grid[shape=circle]``)."""
    return re.compile(re.escape(glob).replace(r"\*", ".*").replace(r"\?", ".") + r"\Z")


def filter_entries(members: list[Member], globs: list[str]) -> list[Member]:
    """Members whose entry id matches a glob; a glob that matches no image is an error (a typo)."""
    patterns = {g: entry_pattern(g) for g in globs}
    unused = [g for g, p in patterns.items() if not any(p.match(m.entry_id) for m in members)]
    if unused:
        known = ", ".join(sorted({m.entry_id for m in members})[:_SHOWN])
        raise DatasetBuildError(
            f"filters.entries: {', '.join(repr(g) for g in unused)} match(es) no entry id in the sources"
            f"\n    hint: entry ids look like: {known}"
        )
    return [m for m in members if any(p.match(m.entry_id) for p in patterns.values())]


def select_members(loaded: LoadedSpec, data_root: Path) -> Selection:
    """The dataset's members, sorted by image id, with final captions and splits."""
    spec = loaded.spec
    # 1. read every source partition (checks each file against its manifest sha256)
    members, partitions = read_sources(spec, data_root)
    total = len(members)
    # 2. entry globs, then captions and the caption score
    if spec.filters.entries:
        members = filter_entries(members, spec.filters.entries)
    members = attach_captions(members, spec, data_root)
    if spec.filters.min_caption_score is not None:
        members = [m for m in members if m.score >= spec.filters.min_caption_score]
    filtered = total - len(members)
    # 3. near-duplicates, in source order so the earliest image wins
    duplicates: list[tuple[str, str]] = []
    if spec.filters.dedup_max_distance is not None:
        members, duplicates = dedup(members, data_root, spec.filters.dedup_max_distance)
    # 4. final captions and splits
    members = [_replace(m, caption=final_caption(m, spec)) for m in members]
    if not members:
        raise DatasetBuildError(f"dataset '{loaded.name}' is empty after filtering ({total} images read)")
    members = assign_splits(members, spec.split.validation_fraction, spec.split.seed)
    return Selection(sorted(members, key=lambda m: m.image_id), partitions, filtered, duplicates)
