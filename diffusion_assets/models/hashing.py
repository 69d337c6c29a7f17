"""Weights hashes: which exact files made an image.

A folder's hash is the sha256 over ``relative path:file sha256`` lines of every file in it (docs,
images and hidden files or folders excepted). A file's sha256 is found, cheapest first:

1. in the Hugging Face cache, files are symlinks to ``blobs/<sha256>``: the blob's name;
2. in an ``hf download --local-dir`` folder, huggingface_hub's own record of the download
   (``.cache/huggingface/download/<file>.metadata``: commit, etag, timestamp), whose etag is the
   file's sha256 for LFS files, trusted by huggingface_hub's own rule (the file's mtime is not
   newer than the record);
3. in the hash cache: one small file per (real path, size, mtime_ns, inode), in
   ``DIFFUSION_ASSETS_HASH_CACHE`` (default ``$XDG_CACHE_HOME/diffusion_assets/weights_hashes``).
   Point it at a volume that every pod or container shares (beside a shared Hugging Face cache)
   and a multi-GB file is read once per file, not once per run. Each entry is written atomically
   under its own name, so any number of processes read and write the cache at once without a lock:
   two writers of one entry write the same bytes, and a reader sees a whole entry or none;
4. otherwise the file is read (``files.sha256_file``) and the result stored in the cache.

``python -m diffusion_assets.models.hashing <folder>...`` prints each folder's hash and fills the
cache, for a pod or image step that warms it once.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from diffusion_assets.files import atomic_write_text, sha256_bytes, sha256_file

_SKIP_SUFFIXES = {".md", ".png", ".jpg", ".jpeg", ".webp", ".gitattributes", ".lock"}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_memory: dict[str, str] = {}


def cache_dir() -> Path:
    """Where file hashes are cached: ``DIFFUSION_ASSETS_HASH_CACHE``, else the user's cache."""
    if env := os.environ.get("DIFFUSION_ASSETS_HASH_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "diffusion_assets" / "weights_hashes"


def _hf_local_dir_sha256(path: Path) -> str | None:
    """The sha256 huggingface_hub recorded when it downloaded ``path`` into a ``--local-dir``
    folder, if the file has not changed since (huggingface_hub's ``read_download_metadata`` rule,
    read here without its lock file so read-only folders work)."""
    for root in path.parents:
        record = (
            root / ".cache" / "huggingface" / "download" / f"{path.relative_to(root).as_posix()}.metadata"
        )
        if record.is_file():
            try:
                _commit, etag, timestamp = record.read_text().splitlines()[:3]
                fresh = path.stat().st_mtime - 1 <= float(timestamp)
            except (OSError, ValueError):
                return None
            return etag.strip() if fresh and _SHA256.match(etag.strip()) else None
    return None


def _cache_entry(target: Path, stat: os.stat_result) -> Path:
    key = f"{target}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ino}"
    return cache_dir() / sha256_bytes(key.encode())


def _cached_sha256(target: Path, stat: os.stat_result) -> str | None:
    try:
        entry = json.loads(_cache_entry(target, stat).read_text())
    except (OSError, ValueError):
        return None
    digest = entry.get("sha256") if isinstance(entry, dict) else None
    return digest if isinstance(digest, str) and _SHA256.match(digest) else None


def _store(target: Path, stat: os.stat_result, digest: str) -> None:
    entry = {"path": str(target), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino}
    try:
        atomic_write_text(_cache_entry(target, stat), json.dumps({**entry, "sha256": digest}))
    except OSError:
        pass  # the cache is an optimisation: a read-only or full volume must not stop a run


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of one file's bytes, from the cheapest source that knows it (module docstring).

    Raises ``FileNotFoundError`` when the file is missing.
    """
    target = Path(path).resolve()
    if _SHA256.match(target.name):  # a Hugging Face cache blob is named by its sha256
        return target.name
    stat = target.stat()
    key = f"{target}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ino}"
    if key not in _memory:
        digest = _hf_local_dir_sha256(Path(path).absolute()) or _cached_sha256(target, stat)
        if digest is None:
            digest = sha256_file(target)
            _store(target, stat, digest)
        _memory[key] = digest
    return _memory[key]


def _hashed_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() not in _SKIP_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def folder_hash(folder: str | os.PathLike) -> str:
    """Content hash of a model folder (or the sha256 of a single weights file), hex."""
    folder = Path(folder)
    if folder.is_file():
        return file_sha256(folder)
    lines = [f"{p.relative_to(folder).as_posix()}:{file_sha256(p)}" for p in _hashed_files(folder)]
    return sha256_bytes("\n".join(lines).encode())


def short_hash(digest: str | None) -> str:
    """The 10-character form A1111 shows as ``Model hash``."""
    return (digest or "")[:10]


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        print(f"{folder_hash(argument)}  {argument}")
