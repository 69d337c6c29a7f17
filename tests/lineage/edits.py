"""What can happen to a PNG after generation: its pixels or its metadata edited, or the file moved."""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image

from diffusion_assets.generation.pngmeta import png_bytes, read_row


def edit_pixels(path: Path) -> None:
    """Flip one pixel, keeping the embedded row: the file still claims to be the same image."""
    with Image.open(path) as image:
        image = image.convert("RGB")
    r, g, b = image.getpixel((0, 0))
    image.putpixel((0, 0), (255 - r, g, b))
    path.write_bytes(png_bytes(image, read_row(path)))


def edit_metadata(path: Path) -> None:
    """Rewrite the embedded prompt, keeping every pixel."""
    with Image.open(path) as image:
        image = image.convert("RGB")
    path.write_bytes(png_bytes(image, read_row(path) | {"prompt": "something else"}))


def strip_metadata(path: Path) -> None:
    """Re-save the pixels with no text chunks (what many image tools do)."""
    with Image.open(path) as image:
        image.convert("RGB").save(path, format="PNG")


def move(path: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.move(path, folder / path.name))
