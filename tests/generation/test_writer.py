"""The writer pool (issue 9 item 9): PNGs written while the next batch generates are the bytes a
serial write gives, batches are indexed in order and only when complete, and a write's error reaches
the caller."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from diffusion_assets.generation.partition import _write_image
from diffusion_assets.generation.writer import BatchWriter


def images(n: int, size: int = 256) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


def rows(n: int) -> list[dict]:
    fields = {"prompt": "a red circle", "negative_prompt": "", "steps": 4, "sampler": "Euler", "seed": 7}
    fields |= {"guidance_scale": 2.0, "width": 256, "height": 256, "model_weights_hash": "ab" * 32}
    fields |= {"preset": "shapes-tiny", "refiner_model_id": None, "lora_path": None}
    return [{"image_id": f"img{i}", "path": f"images/img{i}.png", **fields, "seed": i} for i in range(n)]


def test_pooled_writes_are_byte_identical_to_serial_writes_and_indexed_in_order(tmp_path):
    pictures = images(6)
    serial = [_write_image(tmp_path / "serial", dict(r), im) for r, im in zip(rows(6), pictures, strict=True)]
    settled: list[list[str]] = []
    threads: set[str] = set()

    def write(item):
        threads.add(threading.current_thread().name)
        return _write_image(tmp_path / "pooled", *item)

    with BatchWriter(write, lambda done: settled.append([r["image_id"] for r in done])) as writer:
        batch_rows = [dict(r) for r in rows(6)]
        for start in (0, 3):
            writer.submit(list(zip(batch_rows[start : start + 3], pictures[start : start + 3], strict=True)))
    assert settled == [["img0", "img1", "img2"], ["img3", "img4", "img5"]]
    assert all(name.startswith("png-writer") for name in threads)
    for row in serial:
        pooled = tmp_path / "pooled" / row["path"]
        assert pooled.read_bytes() == (tmp_path / "serial" / row["path"]).read_bytes()
    assert [r["sha256"] for r in serial] == [r["sha256"] for r in batch_rows]


def test_a_batch_is_indexed_only_after_the_next_one_is_submitted_or_on_close(tmp_path):
    settled: list[int] = []
    writer = BatchWriter(lambda x: x, lambda done: settled.append(len(done)))
    writer.submit([1, 2])
    assert settled == []  # batch 1 is still being written while batch 2 generates
    writer.submit([3])
    assert settled == [2]
    writer.close()
    assert settled == [2, 1]


def test_a_failed_write_raises_in_the_caller(tmp_path):
    def write(item):
        raise OSError(f"disk full writing {item}")

    with pytest.raises(OSError, match="disk full writing a"), BatchWriter(write, lambda done: None) as writer:
        writer.submit(["a"])


def test_when_the_caller_fails_nothing_more_is_indexed(tmp_path):
    settled: list[int] = []
    with (
        pytest.raises(KeyboardInterrupt),
        BatchWriter(lambda x: x, lambda d: settled.append(len(d))) as writer,
    ):
        writer.submit([1])
        raise KeyboardInterrupt
    assert settled == []


def test_the_pool_size_comes_from_the_environment(monkeypatch):
    from diffusion_assets.generation.writer import WRITER_THREADS_ENV, writer_threads

    monkeypatch.setenv(WRITER_THREADS_ENV, "3")
    assert writer_threads() == 3
    monkeypatch.setenv(WRITER_THREADS_ENV, "0")
    with pytest.raises(ValueError, match="DIFFUSION_ASSETS_WRITER_THREADS='0': expected a positive integer"):
        writer_threads()
