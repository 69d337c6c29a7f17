"""Atomic file writes and content hashes: the one implementation every stage uses."""

from __future__ import annotations

import fcntl
import fnmatch
import hashlib
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

_CHUNK = 1 << 20
CRASH_ENV = "DIFFUSION_ASSETS_CRASH_AT"
PAUSE_ENV = "DIFFUSION_ASSETS_PAUSE_AT"
PAUSE_GATE_ENV = "DIFFUSION_ASSETS_PAUSE_GATE"
RECORD_WAIT = 120.0
"""Seconds a short read-modify-write of a shared manifest waits for another writer's lock."""
TEMP_PATTERN = ".*.tmp"
"""What ``atomic_path`` (and the dataset build's temp folder) names a write in progress."""
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
        crash_point("before-rename", target)
        os.replace(tmp_path, target)
        crash_point("after-rename", target)
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


def crash_point(event: str, path: str | os.PathLike) -> None:
    """Test hook: SIGKILL, or pause, this process at a named point between two writes.

    ``DIFFUSION_ASSETS_CRASH_AT=<event>:<glob>`` kills the process the first time ``event``
    (``before-rename`` or ``after-rename``: an atomic write's temp file is complete / has just been
    renamed into place; ``lock-busy``: ``exclusive`` found its lock file taken) happens to a path
    matching ``glob`` (``fnmatch`` on the whole path, e.g. ``after-rename:*.png``). ``DIFFUSION_ASSETS_PAUSE_AT=<event>:<glob>`` with
    ``DIFFUSION_ASSETS_PAUSE_GATE=<file>`` instead creates ``<file>.paused`` and waits (up to 10 min)
    until ``<file>`` exists, once: the race tests hold one real writer in the window they test while
    another process writes. Unset, each costs one environment lookup.
    """
    if _hook_matches(CRASH_ENV, event, path):
        os.kill(os.getpid(), signal.SIGKILL)
    if _hook_matches(PAUSE_ENV, event, path):
        del os.environ[PAUSE_ENV]  # once
        gate = Path(os.environ[PAUSE_GATE_ENV])
        gate.with_name(gate.name + ".paused").write_text(f"{event} {path}\n")
        deadline = time.monotonic() + 600
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.02)


def _hook_matches(variable: str, event: str, path: str | os.PathLike) -> bool:
    """``$variable`` is ``<event>:<glob>`` and names this event and a glob matching ``path``."""
    spec = os.environ.get(variable)
    return (
        bool(spec) and spec.partition(":")[0] == event and fnmatch.fnmatch(str(path), spec.partition(":")[2])
    )


def sweep_temp_files(*folders: str | os.PathLike) -> list[Path]:
    """Remove the temp files and folders (``.<name>.*.tmp``) that dead writers left in ``folders``.

    Only call it while holding the ``exclusive`` lock that every writer of these folders holds, so
    that no live writer's temp file is removed. Returns what was removed.
    """
    removed = []
    for folder in folders:
        for path in sorted(Path(folder).glob(TEMP_PATTERN)) if Path(folder).is_dir() else []:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


class BusyError(RuntimeError):
    """Another process holds the lock on what this one was about to write."""

    def __init__(self, message: str, holder: str = "unknown"):
        super().__init__(message)
        self.holder = holder
        """Who holds it, as the holder wrote it (pid, host, run)."""


_held: dict[Path, int] = {}
_held_guard = threading.Lock()


@contextmanager
def exclusive(lock_file: str | os.PathLike, what: str, holder: str = "", wait: float = 0.0) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (created if missing); fail at once, or after ``wait`` s.

    Two runs of one partition would otherwise interleave their manifest rewrites: those take it
    with ``wait=0`` and the second fails at once, naming the holder. A short read-modify-write of a
    file that several runs legitimately update (the adapters and evaluations manifests) takes it
    with a ``wait``, so the writers queue instead. The lock is ``flock``: the kernel releases it
    when the holder exits, however it exits, so a killed run never leaves a stale lock behind. The
    holder writes who it is (pid, host and ``holder``, e.g. a run id) into the file, so the error
    another process gets names it. It is held per process: the process that holds it may take it
    again (``diffusion-assets materialize`` takes a partition's lock before its run starts, and the
    run's step takes it again inside). ``flock`` holds on one host (and on NFS v4 where the server
    supports it); lock files live under ``<data root>/.locks`` (``manifests.io.lock_path``), never in
    a folder a user may remove under a running writer.

    Raises:
        BusyError: another process holds the lock (after ``wait`` seconds); nothing was written.
    """
    path = Path(lock_file).resolve()
    with _held_guard:
        if path in _held:
            _held[path] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _held_guard:
                _held[path] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                crash_point("lock-busy", path)
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                handle.seek(0)
                who = handle.read().strip() or "unknown"
                waited = f" for {wait:g} s" if wait else ""
                raise BusyError(
                    f"{what} is being written by another process ({who}; it holds {path}){waited}; wait "
                    "for that run to finish or cancel it, then run again (nothing was written)",
                    who,
                ) from exc
        handle.truncate(0)
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}{', ' + holder if holder else ''}\n")
        handle.flush()
        with _held_guard:
            _held[path] = 1
        try:
            yield
        finally:
            with _held_guard:
                del _held[path]
            fcntl.flock(handle, fcntl.LOCK_UN)
