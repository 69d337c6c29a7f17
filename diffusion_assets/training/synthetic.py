"""A small imagefolder LoRA dataset drawn from the shapes world, for tests and benchmarks.

Images come from ``shapes.world`` (exact labels, a pure function of seed and index), captions from
``shapes.captions`` (with the style's trigger phrase, e.g. "in sks outline style"), laid out as the
trainer reads them: ``<dir>/train/<image_id>.png`` plus ``metadata.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path

from diffusion_assets.files import sha256_bytes
from diffusion_assets.shapes import world
from diffusion_assets.shapes.captions import caption


def write_shapes_dataset(folder: str | Path, n: int = 16, seed: int = 0, style: str = "outlined") -> Path:
    """Write ``n`` shapes-world images in ``style`` with their captions; return ``folder``."""
    train = Path(folder) / "train"
    train.mkdir(parents=True, exist_ok=True)
    combos = world.all_combos(styles=(style,), split="seen")
    lines = []
    for index in range(n):
        sample = world.sample(seed, index, combos)
        image_id = sha256_bytes(f"shapes|{seed}|{style}|{index}".encode())[:20]
        world.to_pil(sample.image).save(train / f"{image_id}.png")
        lines.append(
            json.dumps({"file_name": f"{image_id}.png", "text": caption(sample.attrs), "image_id": image_id})
        )
    (train / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return Path(folder)
