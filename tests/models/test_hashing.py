"""Weight hashes are computed once per file and reused by every later process through the shared
hash cache (or huggingface_hub's own records), never trusted after the file changed, and safe with
several processes writing the cache at once."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diffusion_assets.models import hashing
from diffusion_assets.models.hashing import folder_hash

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "hash-cache"
    monkeypatch.setenv("DIFFUSION_ASSETS_HASH_CACHE", str(directory))
    monkeypatch.setattr(hashing, "_memory", {})
    return directory


def _model(folder: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def _in_new_process(code: str, cache: Path, reads_allowed: bool = True) -> str:
    """Run ``code`` in a fresh interpreter (a new pod, as far as the hash cache knows). With
    ``reads_allowed=False`` any attempt to hash file bytes raises."""
    guard = (
        ""
        if reads_allowed
        else (
            "import diffusion_assets.models.hashing as h\n"
            "def _refuse(path): raise AssertionError(f'read {path}')\n"
            "h.sha256_file = _refuse\n"
        )
    )
    env = dict(os.environ, DIFFUSION_ASSETS_HASH_CACHE=str(cache))
    result = subprocess.run(
        [sys.executable, "-c", guard + code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_new_process_reuses_the_hash_without_reading_the_file(tmp_path, cache):
    folder = _model(tmp_path / "m", {"unet/w.safetensors": b"w" * 4096, "model_index.json": b"{}"})
    code = f"from diffusion_assets.models.hashing import folder_hash; print(folder_hash({str(folder)!r}))"
    first = _in_new_process(code, cache)
    assert _in_new_process(code, cache, reads_allowed=False) == first == folder_hash(folder)
    entries = [json.loads(p.read_text()) for p in cache.iterdir()]
    assert sorted(e["size"] for e in entries) == [2, 4096]


def test_a_changed_file_is_hashed_again(tmp_path, cache):
    weights = _model(tmp_path / "m", {"w.bin": b"a" * 100}) / "w.bin"
    before = folder_hash(weights)
    weights.write_bytes(b"b" * 100)
    assert folder_hash(weights) == hashlib.sha256(b"b" * 100).hexdigest() != before


def test_a_file_replaced_with_the_same_size_and_mtime_is_hashed_again(tmp_path, cache):
    # what `cp -p` / `rsync -t` of another checkpoint over this one does: only the inode differs
    weights = _model(tmp_path / "m", {"w.bin": b"a" * 100}) / "w.bin"
    folder_hash(weights)
    stat = weights.stat()
    replacement = tmp_path / "new.bin"
    replacement.write_bytes(b"c" * 100)
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, weights)
    assert weights.stat().st_mtime_ns == stat.st_mtime_ns and weights.stat().st_size == stat.st_size
    assert folder_hash(weights) == hashlib.sha256(b"c" * 100).hexdigest()


def test_processes_filling_the_cache_at_once_lose_no_entry(tmp_path, cache):
    files = {f"part-{i:02d}.bin": bytes([i]) * 2048 for i in range(24)}
    folder = _model(tmp_path / "m", files)
    start = time.time() + 3  # all workers hash and write together
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, time; from diffusion_assets.models.hashing import folder_hash\n"
                f"time.sleep(max(0, {start} - time.time()))\n"
                f"for name in sorted({list(files)!r})[{k}::4]: folder_hash({str(folder)!r} + '/' + name)",
            ],
            env=dict(os.environ, DIFFUSION_ASSETS_HASH_CACHE=str(cache)),
            cwd=ROOT,
        )
        for k in range(4)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0] * 4
    entries = {
        json.loads(p.read_text())["path"]: json.loads(p.read_text())["sha256"] for p in cache.iterdir()
    }
    assert entries == {str(folder / n): hashlib.sha256(d).hexdigest() for n, d in files.items()}


def test_a_read_only_cache_still_hashes(tmp_path, monkeypatch):
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x")  # a cache "directory" that cannot be created
    monkeypatch.setenv("DIFFUSION_ASSETS_HASH_CACHE", str(blocked / "cache"))
    monkeypatch.setattr(hashing, "_memory", {})
    weights = _model(tmp_path / "m", {"w.bin": b"z"}) / "w.bin"
    assert folder_hash(weights) == hashlib.sha256(b"z").hexdigest()


def _hf_local_dir(folder: Path, name: str, data: bytes, etag: str, timestamp: float) -> Path:
    """A file as `hf download --local-dir` leaves it, with huggingface_hub's download record."""
    _model(folder, {name: data})
    record = folder / ".cache" / "huggingface" / "download" / f"{name}.metadata"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(f"{'0' * 40}\n{etag}\n{timestamp}\n")
    return folder / name


def test_hf_local_dir_downloads_are_not_read_and_their_records_are_not_hashed(tmp_path, cache):
    data = b"lfs weights" * 100
    folder = tmp_path / "sdxl"
    _hf_local_dir(folder, "unet/w.safetensors", data, hashlib.sha256(data).hexdigest(), time.time() + 5)
    code = f"from diffusion_assets.models.hashing import folder_hash; print(folder_hash({str(folder)!r}))"
    digest = _in_new_process(code, cache, reads_allowed=False)
    plain = _model(tmp_path / "plain", {"unet/w.safetensors": data})
    assert digest == folder_hash(plain)  # .cache/huggingface/... is not part of the model's hash


def test_a_file_edited_after_its_hf_download_is_read(tmp_path, cache):
    data = b"original"
    weights = _hf_local_dir(tmp_path / "m", "w.bin", data, hashlib.sha256(data).hexdigest(), time.time() - 60)
    weights.write_bytes(b"edited!!")  # newer than huggingface_hub's record: the record is stale
    assert folder_hash(weights) == hashlib.sha256(b"edited!!").hexdigest()


def test_hub_cache_blobs_are_named_by_their_hash(tmp_path, cache):
    blob = tmp_path / "blobs" / hashlib.sha256(b"q").hexdigest()
    _model(tmp_path / "blobs", {blob.name: b"not even q"})  # the name is trusted, as the hub does
    (tmp_path / "snap").mkdir()
    (tmp_path / "snap" / "w.safetensors").symlink_to(blob)
    assert folder_hash(tmp_path / "snap" / "w.safetensors") == blob.name
    assert not cache.exists()
