"""A PNG as evidence: its bytes' hash, the manifest row embedded in it, and whether it was edited.

A file is only "the image a manifest row describes" if its sha256 matches the row's. When it does
not, the pixel hash tells a re-encode or metadata edit (same pixels) from an edited picture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from diffusion_assets.files import sha256_file
from diffusion_assets.generation.pngmeta import pixel_sha256, read_row
from diffusion_assets.lineage import LineageError


@dataclass
class PngFile:
    """One image file: where it is now, its hash, and the row it carries (None if not ours)."""

    path: Path
    sha256: str
    embedded: dict | None
    _pixels: str | None = field(default=None, repr=False)

    @property
    def pixel_sha256(self) -> str:
        """Decoded only when needed: hashing bytes is cheap, decoding a large PNG is not."""
        if self._pixels is None:
            with Image.open(self.path) as image:
                self._pixels = pixel_sha256(image)
        return self._pixels


def read_png(path: str | Path) -> PngFile:
    path = Path(path)
    try:
        embedded = read_row(path)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise LineageError(f"{path} is not a readable image: {exc}") from exc
    return PngFile(path, sha256_file(path), embedded)


def integrity(recorded: dict, file: PngFile | None, *, by_manifest: bool) -> dict:
    """Compare a file with its recorded row: status ``ok`` | ``modified`` | ``missing``.

    ``by_manifest=False`` means the only record is the PNG's own metadata, which cannot hold the file's
    hash (it is computed after writing): then only the pixels can be checked.
    """
    result = {
        "status": "missing",
        "checked": "file sha256" if by_manifest else "pixel sha256",
        "file_sha256": file.sha256 if file else None,
        "recorded_sha256": recorded.get("sha256") if by_manifest else None,
        "file_pixel_sha256": None,
        "recorded_pixel_sha256": recorded.get("pixel_sha256"),
        "change": None,
        "message": f"file missing: {recorded.get('path')} does not exist",
    }
    if file is None:
        return result
    if by_manifest and file.sha256 == recorded["sha256"]:
        return result | {"status": "ok", "message": "ok: file sha256 matches the manifest"}
    result["file_pixel_sha256"] = file.pixel_sha256
    pixels_same = file.pixel_sha256 == recorded.get("pixel_sha256")
    if not by_manifest:
        if pixels_same:
            message = "pixels match the embedded metadata (a PNG cannot record its own file sha256)"
            return result | {"status": "ok", "message": message}
        message = (
            f"MODIFIED after generation: pixel sha256 {file.pixel_sha256}, "
            f"embedded metadata says {recorded.get('pixel_sha256')} (pixels changed)"
        )
        return result | {"status": "modified", "change": "pixels", "message": message}
    change = "metadata" if pixels_same else "pixels"
    detail = "metadata-only change: pixels identical" if pixels_same else "pixels changed"
    message = (
        f"MODIFIED after generation: sha256 {file.sha256}, manifest says {recorded['sha256']} ({detail})"
    )
    return result | {"status": "modified", "change": change, "message": message}
