"""Atomic writes: all or nothing under the final name, ordinary permissions, no temp files left."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from diffusion_assets.files import atomic_write_bytes, atomic_write_with, sha256_file


def test_a_write_replaces_the_whole_file_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "deep" / "a.bin"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.bin"]


def test_a_failed_writer_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"old")

    def half_then_fail(tmp):
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        atomic_write_with(target, half_then_fail)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_files_get_0666_less_the_umask_not_mkstemps_0600(tmp_path, monkeypatch, umask):
    monkeypatch.setattr("diffusion_assets.files._UMASK", umask)
    target = atomic_write_bytes(tmp_path / "a.png", b"x")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~umask


def test_sha256_file_reads_in_chunks(tmp_path):
    path = atomic_write_bytes(tmp_path / "big", b"ab" * (1 << 20))
    assert sha256_file(path) == hashlib.sha256(b"ab" * (1 << 20)).hexdigest()


@pytest.mark.parametrize(("durable", "fsyncs"), [(True, 1), (False, 0)])
def test_durable_writes_reach_the_disk_before_the_rename(tmp_path, monkeypatch, durable, fsyncs):
    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd) or real_fsync(fd))
    atomic_write_bytes(tmp_path / "m.parquet", b"x", durable=durable)
    assert len(calls) == fsyncs
