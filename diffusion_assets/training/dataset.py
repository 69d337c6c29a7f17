"""Read a LoRA dataset in Hugging Face ``imagefolder`` layout.

``<dir>/train/metadata.jsonl`` lists one image per line with ``file_name``, ``text`` (the caption) and
``image_id``; the images sit beside it. An optional ``validation/`` split has the same layout; the trainer
reads only ``train/`` (validation images are rendered from ``LoraTrainConfig.validation_prompts``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from diffusion_assets.files import sha256_file


@dataclass(frozen=True)
class Example:
    """One training image and its caption."""

    image_id: str
    path: Path
    caption: str


def read_split(dataset_dir: str | Path, split: str = "train") -> list[Example]:
    """The examples of one split, in ``metadata.jsonl`` order.

    Raises:
        FileNotFoundError: the split has no ``metadata.jsonl`` or names a missing image.
        ValueError: a line lacks ``file_name``/``text``/``image_id``, or an ``image_id`` repeats.
    """
    folder = Path(dataset_dir) / split
    meta = folder / "metadata.jsonl"
    if not meta.is_file():
        raise FileNotFoundError(
            f"{meta} not found: a LoRA dataset is an imagefolder with {split}/metadata.jsonl "
            "(lines of file_name, text, image_id) beside its images"
        )
    examples: list[Example] = []
    for number, line in enumerate(meta.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        missing = {"file_name", "text", "image_id"} - row.keys()
        if missing:
            raise ValueError(f"{meta}:{number} lacks {sorted(missing)}")
        path = folder / row["file_name"]
        if not path.is_file():
            raise FileNotFoundError(f"{meta}:{number} names {row['file_name']}, which is not in {folder}")
        examples.append(Example(str(row["image_id"]), path, str(row["text"])))
    ids = [e.image_id for e in examples]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{meta}: image_id values repeat; each line must name a distinct image")
    if not examples:
        raise ValueError(f"{meta} lists no images")
    return examples


def split_fingerprint(dataset_dir: str | Path, split: str = "train") -> str:
    """sha256 of the split's ``metadata.jsonl``: stored with the cache to catch a dataset edited in place."""
    return sha256_file(Path(dataset_dir) / split / "metadata.jsonl")


def load_pixels(path: Path, resolution: int) -> torch.Tensor:
    """An image as a (3, res, res) float tensor in [-1, 1]: shorter side resized (bilinear), centre-cropped.

    The same transform as diffusers' text-to-image example with ``--center_crop`` and no flip; random
    crops and flips would make cached latents stale, so the trainer does not offer them.
    """
    image = Image.open(path).convert("RGB")
    scale = resolution / min(image.size)
    if scale != 1:
        size = (max(resolution, round(image.width * scale)), max(resolution, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BILINEAR)
    left, top = (image.width - resolution) // 2, (image.height - resolution) // 2
    image = image.crop((left, top, left + resolution, top + resolution))
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def tag_frequency(captions: list[str]) -> dict[str, int]:
    """kohya's ``ss_tag_frequency`` counts for one dataset folder: ``{tag: count}``.

    The rule of sd-scripts' ``BaseDataset.set_tag_frequency`` (``library/train_util.py``): every
    caption split on ``,``, each tag stripped and lower-cased, empty tags skipped, and *every*
    occurrence counted (a tag twice in one caption counts 2). Sorted by count, then tag.
    """
    counts: dict[str, int] = {}
    for caption in captions:
        for tag in caption.split(","):
            tag = tag.strip().lower()
            if tag:
                counts[tag] = counts.get(tag, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
