"""Atomic file writes and content hashes: the one implementation every stage uses."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

_CHUNK = 1 << 20
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # reading the umask means setting it; restored at once, at import


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def atomic_path(target: str | os.PathLike, durable: bool = True) -> Iterator[Path]:
    """Yield a temp path beside ``target``; on success rename it over ``target``.

    The rename is atomic on POSIX, so readers see either the old file or the complete new one,
    and an interrupted write leaves no partial file under the final name. With ``durable`` the data
    is fsynced before the rename, so a power loss cannot leave an empty file under that name either;
    files whose sha256 a manifest records (PNGs) may skip it, since a resumed run finds a torn one
    by its hash and writes it again. The file gets the usual permissions (0666 less the umask), not
    ``mkstemp``'s private 0600.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if durable:
            fd = os.open(tmp_path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_bytes(target: str | os.PathLike, data: bytes, durable: bool = True) -> Path:
    with atomic_path(target, durable) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_with(target: str | os.PathLike, writer: Callable[[Path], object]) -> Path:
    """Call ``writer(tmp_path)`` and atomically move the result to ``target``."""
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


class BusyError(RuntimeError):
    """Another process holds the lock on what this one was about to write."""


@contextmanager
def exclusive(lock_file: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (created if missing) or fail at once.

    Two runs of one partition would otherwise interleave their manifest rewrites. The lock is
    ``flock``: the kernel releases it when the holder exits, however it exits, so a killed run never
    leaves a stale lock behind.
    """
    path = Path(lock_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BusyError(
                f"{what} is being written by another process (it holds {path}); wait for that run to "
                "finish or cancel it, then run again (nothing was written)"
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
