"""The dataset card: ``README.md`` (Hugging Face card with a loading config) and ``sample_grid.png``."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from diffusion_assets.datasets.load import LoadedSpec
from diffusion_assets.datasets.members import SPLITS, Member, Selection
from diffusion_assets.previews import image_grid

GRID_FILE = "sample_grid.png"
GRID_LIMIT = 16
_TOKEN = re.compile(r"[\w'-]+")


def caption_stats(captions: Sequence[str], trigger_word: str | None, top: int = 10) -> dict:
    """Words per caption (mean, max), the ``top`` most common tokens, and how many captions hold the trigger."""
    tokens = [_TOKEN.findall(c.lower()) for c in captions]
    counts = Counter(t for words in tokens for t in words)
    with_trigger = sum(trigger_word.lower() in words for words in tokens) if trigger_word else 0
    return {
        "captions": len(captions),
        "mean_words": round(sum(map(len, tokens)) / len(tokens), 2) if tokens else 0.0,
        "max_words": max(map(len, tokens), default=0),
        "unique_captions": len(set(captions)),
        "common_tokens": counts.most_common(top),
        "with_trigger": with_trigger,
    }


def write_sample_grid(paths: Sequence[Path], target: Path, resolution: int) -> Path:
    """The first ``GRID_LIMIT`` images tiled 8 wide; cells at least 64 px so tiny images stay visible."""
    images = []
    for path in list(paths)[:GRID_LIMIT]:
        with Image.open(path) as image:
            images.append(image.convert("RGB"))
    image_grid(images, min(8, len(images)), max(resolution, 64)).save(target, format="PNG")
    return target


def _front_matter(splits: Sequence[str]) -> str:
    """HF card metadata so ``load_dataset(folder)`` picks the imagefolder loader, not the .txt sidecars."""
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    for split in splits:
        lines += [f"  - split: {split}", f'    path: ["{split}/*.png", "{split}/metadata.jsonl"]']
    return "\n".join(lines + ["---", ""])


def render_card(loaded: LoadedSpec, version: str, selection: Selection, has_grid: bool) -> str:
    """The Markdown card: counts, caption statistics, trigger, sources, filters and how to load it."""
    spec, members = loaded.spec, selection.members
    by_split = {s: [m for m in members if m.split == s] for s in SPLITS}
    splits = [s for s in SPLITS if by_split[s]]
    stats = caption_stats([m.caption for m in members], spec.trigger.word)
    trigger = spec.trigger
    lines = [
        _front_matter(splits),
        f"# {loaded.name} (version {version})",
        "",
        spec.description or "_No description._",
        "",
        f"Built from `{loaded.path}` (sha256 `{loaded.sha256[:12]}`). Images are {spec.resolution}² PNGs; "
        "each has its caption in `metadata.jsonl` and in a kohya-style `.txt` sidecar.",
        "",
        "## Splits",
        "",
        "| split | images |",
        "|---|---|",
        *(f"| {s} | {len(by_split[s])} |" for s in SPLITS),
        f"| total | {len(members)} |",
        "",
        f"Dropped: {selection.filtered} by filters, "
        + (
            f"{len(selection.duplicates)} near-duplicates (phash distance ≤ {spec.filters.dedup_max_distance})."
            if spec.filters.dedup_max_distance is not None
            else "none as near-duplicates (dedup is off)."
        ),
        "",
        "## Captions",
        "",
        f"- source: `{spec.captions.source}`, template: `{spec.captions.template or '{caption}'}`",
        f"- trigger word: `{trigger.word}`, placement: `{trigger.placement}`"
        + (f", phrase: `{trigger.phrase}`" if trigger.phrase else "")
        + f"; {stats['with_trigger']} of {stats['captions']} captions contain it",
        f"- words per caption: mean {stats['mean_words']}, max {stats['max_words']}; "
        f"{stats['unique_captions']} distinct captions",
        "- most common tokens: " + ", ".join(f"`{t}` ({n})" for t, n in stats["common_tokens"]),
        "",
        "## Sources",
        "",
        "| catalog | date | images read |",
        "|---|---|---|",
        *(f"| {c} | {d} | {n} |" for c, d, n in selection.partitions),
        "",
    ]
    if has_grid:
        lines += ["## Samples", "", f"![samples]({GRID_FILE})", ""]
    lines += [
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        f'ds = load_dataset("imagefolder", data_dir="{loaded.name}/{version}")',
        "```",
        "",
    ]
    return "\n".join(lines)


def sample_paths(folder: Path, members: Sequence[Member]) -> list[Path]:
    """Train images first, then validation, in id order: the images the grid shows."""
    ordered = sorted(members, key=lambda m: (m.split != "train", m.image_id))
    return [folder / m.file_name for m in ordered[:GRID_LIMIT]]
