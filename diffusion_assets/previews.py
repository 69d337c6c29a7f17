"""Small previews for the Dagster UI: a thumbnail grid as a data URI and a Markdown table."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path

from PIL import Image


def image_grid(images: Sequence[Image.Image], cols: int, cell: int | None = None) -> Image.Image:
    """Tile ``images`` left to right, top to bottom (resized to ``cell`` pixels if given)."""
    if not images:
        raise ValueError("image_grid needs at least one image")
    w, h = (cell, cell) if cell else images[0].size
    rows = (len(images) + cols - 1) // cols
    grid = Image.new("RGB", (cols * w, rows * h), "white")
    for i, image in enumerate(images):
        tile = image.convert("RGB").resize((w, h), Image.Resampling.LANCZOS) if cell else image.convert("RGB")
        grid.paste(tile, ((i % cols) * w, (i // cols) * h))
    return grid


def thumbnail_markdown(paths: Sequence[Path], cols: int = 8, cell: int = 48, limit: int = 16) -> str:
    """One small PNG grid of the first ``limit`` images as an inline Markdown image (~10–30 kB)."""
    images = [Image.open(p) for p in list(paths)[:limit]]
    if not images:
        return "_no images_"
    buffer = io.BytesIO()
    image_grid(images, min(cols, len(images)), cell).save(buffer, format="PNG", optimize=True)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f"![thumbnails](data:image/png;base64,{encoded})"


def markdown_table(rows: Sequence[dict], columns: Sequence[str], limit: int = 10) -> str:
    """The first ``limit`` rows as a Markdown table (values shortened to 60 characters)."""
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join(
        "| " + " | ".join(str(r.get(c, ""))[:60].replace("|", "\\|") for c in columns) + " |\n"
        for r in list(rows)[:limit]
    )
    return head + body
