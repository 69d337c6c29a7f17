"""Find a preset's files on this machine without loading anything: for checks at validation time.

Validation must not import torch, diffusers or transformers (``tests/test_fast_start.py``), yet some
checks need what is inside a model folder: its tokenizers (how many tokens a prompt is), its scheduler
config (how a refiner splits the steps) and the names and shapes of its weights (whether a LoRA fits).
This module looks the folder up in the order ``models.loading.locate`` does, reads JSON only, and says
where it looked when a folder is not there, so the caller can warn instead of guessing.
"""

from __future__ import annotations

import functools
import json
import struct
from dataclasses import dataclass
from pathlib import Path

from diffusion_assets import paths
from diffusion_assets.models.presets import Preset

SAFETENSORS_MAX_HEADER = 16 << 20
"""Largest safetensors JSON header read (16 MiB; the format allows 100 MB, real LoRAs use kilobytes)."""


@dataclass(frozen=True)
class Found:
    """A model folder, or ``None`` with every place looked (for the warning)."""

    folder: Path | None
    looked: tuple[str, ...]

    def where(self) -> str:
        return ", ".join(self.looked)


def model_folder(preset: Preset, role: str = "base") -> Found:
    """The folder of ``preset``'s ``role`` weights (``base`` or ``refiner``) on this machine.

    Order: a local preset's folder (the models folder, then the project root, as ``model_id`` reads
    ``models/<name>``); a hub id under ``<models dir>/<hub id>`` (the offline mirror), then the Hugging
    Face cache. Nothing is downloaded.
    """
    model_id = preset.model_id if role == "base" else preset.refiner_id
    if model_id is None:
        return Found(None, ())
    if preset.local and role == "base":
        candidates = paths.local_model_candidates(model_id, paths.project_root(), paths.models_dir())
        for candidate in candidates:
            if candidate.is_dir():
                return Found(candidate, ())
        return Found(None, tuple(map(str, candidates)))
    mirror = paths.models_dir() / model_id
    if mirror.is_dir():
        return Found(mirror, ())
    cached = _hf_cache_snapshot(model_id, preset.revision)
    if cached is not None:
        return Found(cached, ())
    return Found(None, (str(mirror), f"the Hugging Face cache ({_hf_cache_dir()})"))


def _hf_cache_dir() -> str:
    from huggingface_hub.constants import HF_HUB_CACHE  # noqa: PLC0415 - light, only when needed

    return HF_HUB_CACHE


def _hf_cache_snapshot(model_id: str, revision: str | None) -> Path | None:
    try:
        from huggingface_hub import snapshot_download  # noqa: PLC0415

        return Path(snapshot_download(model_id, revision=revision, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached is the normal case; the caller says where it looked
        return None


def read_json(path: Path) -> dict | None:
    """A small JSON file's object, or None when it is missing or unreadable."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


class NotSafetensors(ValueError):
    """A file that is not in the safetensors format (the message says what it is instead)."""


@functools.lru_cache(maxsize=64)
def _cached_header(path: str, mtime_ns: int, size: int) -> dict:
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise NotSafetensors("the file is shorter than a safetensors header")
        (length,) = struct.unpack("<Q", head)
        if length > SAFETENSORS_MAX_HEADER or length + 8 > size:
            if head[:2] == b"PK" or head[:1] == b"\x80":
                raise NotSafetensors("it is a pickle (a zip or pickle stream), not safetensors")
            raise NotSafetensors(
                f"its first 8 bytes do not give a safetensors header length (got {length:,})"
            )
        try:
            header = json.loads(handle.read(length))
        except ValueError as exc:
            raise NotSafetensors(f"its header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise NotSafetensors("its header is not a JSON object")
    return header


def safetensors_header(path: Path) -> dict:
    """The JSON header of a safetensors file: ``{tensor name: {dtype, shape, data_offsets}}`` plus
    ``__metadata__`` (format: https://github.com/huggingface/safetensors#format). Only the header is
    read, however large the file.

    Raises:
        OSError: the file cannot be read.
        NotSafetensors: the bytes are not a safetensors header.
    """
    info = Path(path).stat()
    return _cached_header(str(path), info.st_mtime_ns, info.st_size)


def weight_shapes(component: Path) -> dict[str, tuple[int, ...]] | None:
    """``{parameter name: shape}`` of a model folder's component (``unet``, ``text_encoder``, ...), read
    from its safetensors headers (sharded files through their ``.index.json``); None when the component
    has no safetensors weights."""
    files: list[Path] = []
    for stem in ("diffusion_pytorch_model", "model"):
        single = component / f"{stem}.safetensors"
        index = read_json(component / f"{stem}.safetensors.index.json")
        if single.is_file():
            files = [single]
        elif index and isinstance(index.get("weight_map"), dict):
            files = [component / name for name in dict.fromkeys(index["weight_map"].values())]
        if files:
            break
    if not files:
        return None
    shapes: dict[str, tuple[int, ...]] = {}
    for file in files:
        try:
            header = safetensors_header(file)
        except (OSError, NotSafetensors):
            return None
        shapes.update({name: tuple(meta["shape"]) for name, meta in header.items() if name != "__metadata__"})
    return shapes
