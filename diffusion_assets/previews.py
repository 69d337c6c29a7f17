"""Small previews for the Dagster UI: a thumbnail grid as a file, a small one as a data URI, a Markdown
table. What goes into metadata stays small: it is stored in the event log on every materialization."""

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


INLINE_PREVIEW_BYTES = 4096
"""Largest inline thumbnail (base64 characters) kept in a materialization's metadata. Dagster stores
metadata in every materialization event and again in the latest-materialization record, and base64
PNG does not compress, so the full grid goes to a file and the event log keeps at most this much."""


def _grid_png(paths: Sequence[Path], cols: int, cell: int | None) -> bytes:
    images = [Image.open(p) for p in paths]
    buffer = io.BytesIO()
    image_grid(images, min(cols, len(images)), cell).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def write_thumbnail_grid(
    paths: Sequence[Path], target: Path, cols: int = 8, cell: int = 64, limit: int = 64
) -> Path | None:
    """Write a PNG grid of the first ``limit`` images (``cell`` pixels square, ``cols`` per row) to
    ``target`` atomically; None (and nothing written) when there are no images."""
    from diffusion_assets.files import atomic_write_bytes  # noqa: PLC0415

    paths = list(paths)[:limit]
    if not paths:
        return None
    return atomic_write_bytes(target, _grid_png(paths, cols, cell), durable=False)


def thumbnail_markdown(
    paths: Sequence[Path],
    cols: int = 8,
    cell: int = 32,
    limit: int = 8,
    max_chars: int = INLINE_PREVIEW_BYTES,
) -> str:
    """The first ``limit`` images as one small inline Markdown image (a base64 PNG data URI) of at most
    ``max_chars`` characters; a grid that does not fit is shrunk (fewer images, then smaller cells)
    and, if it never fits, replaced by a note naming the grid file's metadata entry."""
    paths = list(paths)[:limit]
    if not paths:
        return "_no images_"
    while paths and cell >= 8:
        encoded = base64.b64encode(_grid_png(paths, cols, cell)).decode()
        markdown = f"![thumbnails](data:image/png;base64,{encoded})"
        if len(markdown) <= max_chars:
            return markdown
        if len(paths) > 1:
            paths = paths[: len(paths) // 2]
        else:
            cell //= 2
    return "_preview too large for the event log: see the grid file_"


def markdown_table(rows: Sequence[dict], columns: Sequence[str], limit: int = 10) -> str:
    """The first ``limit`` rows as a Markdown table (values shortened to 60 characters)."""
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join(
        "| " + " | ".join(str(r.get(c, ""))[:60].replace("|", "\\|") for c in columns) + " |\n"
        for r in list(rows)[:limit]
    )
    return head + body
