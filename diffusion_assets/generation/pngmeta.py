"""PNG metadata: an A1111-style ``parameters`` chunk for other tools, and our full manifest row.

The ``parameters`` text follows AUTOMATIC1111's format (prompt, ``Negative prompt:``, then
``Key: value`` pairs), which sd-parsers, ComfyUI, InvokeAI and civitai read. The ``diffusion_assets``
chunk is the image's manifest row as JSON, so lineage survives even without the Parquet manifests.

The embedded row leaves out the four fields that describe one execution rather than the image
(``RUN_FIELDS``: run id, timestamp, duration, peak memory; they stay in the manifest). That keeps
a regenerated PNG byte-identical to the original, so ``sha256sum`` can compare re-materializations.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from diffusion_assets.files import atomic_write_bytes, sha256_bytes
from diffusion_assets.generation.infotext import a1111_parameters

ROW_CHUNK = "diffusion_assets"
RUN_FIELDS = ("dagster_run_id", "created_at", "duration_s", "peak_memory_bytes")


def embedded_json(row: dict) -> str:
    """The ``diffusion_assets`` chunk's text: the row without ``RUN_FIELDS``, keys sorted."""
    return json.dumps({k: v for k, v in row.items() if k not in RUN_FIELDS}, sort_keys=True, default=str)


def png_bytes(image: Image.Image, row: dict) -> bytes:
    """Encode ``image`` as PNG with both metadata chunks (deterministic for the same inputs)."""
    info = PngInfo()
    info.add_text("parameters", a1111_parameters(row))
    info.add_itxt(ROW_CHUNK, embedded_json(row))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def pixel_sha256(image: Image.Image) -> str:
    """Hash of the decoded RGB pixels and size: equal images hash equal whatever their metadata."""
    rgb = image.convert("RGB")
    return sha256_bytes(f"{rgb.width}x{rgb.height}|".encode() + rgb.tobytes())


def write_png(path: Path, image: Image.Image, row: dict) -> str:
    """Write the PNG atomically; return the sha256 of the file's bytes (which the manifest keeps, so
    a PNG torn by a power loss is found and regenerated: no fsync per image)."""
    data = png_bytes(image, row)
    atomic_write_bytes(path, data, durable=False)
    return sha256_bytes(data)


def read_row(path: str | Path) -> dict | None:
    """The manifest row embedded in a PNG written by this project, or None."""
    with Image.open(path) as image:
        text = image.info.get(ROW_CHUNK) or getattr(image, "text", {}).get(ROW_CHUNK)
    return json.loads(text) if text else None
