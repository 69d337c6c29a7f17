"""Weights hashes: which exact files made an image.

A folder's hash is the sha256 over ``relative path:file sha256`` lines of every file in it (docs
and images excepted). Files inside the Hugging Face cache are symlinks to ``blobs/<sha256>``, so
their hash is read from the blob name instead of re-reading gigabytes; other files are hashed once
and cached by (path, size, mtime).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from diffusion_assets.files import atomic_write_text, sha256_bytes, sha256_file

_SKIP_SUFFIXES = {".md", ".png", ".jpg", ".jpeg", ".webp", ".gitattributes", ".lock"}
_BLOB = re.compile(r"^[0-9a-f]{64}$")
_memory: dict[str, str] = {}


def _cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "diffusion_assets" / "weights_hashes.json"


def _file_hash(path: Path, disk: dict[str, str]) -> str:
    target = path.resolve()
    if _BLOB.match(target.name):  # a Hugging Face cache blob is named by its sha256
        return target.name
    stat = target.stat()
    key = f"{target}|{stat.st_size}|{stat.st_mtime_ns}"
    if key not in _memory:
        _memory[key] = disk.get(key) or sha256_file(target)
    disk[key] = _memory[key]
    return _memory[key]


def folder_hash(folder: str | os.PathLike) -> str:
    """Content hash of a model folder (or of a single weights file)."""
    folder = Path(folder)
    cache = _cache_file()
    try:
        disk = json.loads(cache.read_text()) if cache.is_file() else {}
    except (OSError, ValueError):
        disk = {}
    before = dict(disk)
    if folder.is_file():
        digest = _file_hash(folder, disk)
    else:
        files = sorted(
            p
            for p in folder.rglob("*")
            if p.is_file() and p.suffix.lower() not in _SKIP_SUFFIXES and not p.name.startswith(".")
        )
        lines = [f"{p.relative_to(folder).as_posix()}:{_file_hash(p, disk)}" for p in files]
        digest = sha256_bytes("\n".join(lines).encode())
    if disk != before:
        try:
            atomic_write_text(cache, json.dumps(disk))
        except OSError:
            pass  # the cache is an optimisation; a read-only home must not stop generation
    return digest


def short_hash(digest: str | None) -> str:
    """The 10-character form A1111 shows as ``Model hash``."""
    return (digest or "")[:10]
