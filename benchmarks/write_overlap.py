"""Does writing PNGs keep up with the GPU? (issue 9 item 9)

A stand-in pipeline sleeps a fixed time per 1024² image (0.6 s: Flux-schnell on an H200, the fastest
measured in ``benchmarks/results/gpu_h200.md``) and returns fixed 1024² images (smooth gradients plus
noise, so zlib does real work). Three paths over the same batches, in the same run:

- ``stand-in alone``: the sleeps, nothing written (the throughput the GPU would give);
- ``serial writes``: the sleeps, then each batch's PNGs hashed, encoded and written in the loop;
- ``writer pool``: the project's write path (``generation.writer.BatchWriter`` with
  ``generation.partition._write_image`` and a manifest write per batch), overlapping the sleeps.

Reports wall time and throughput ratio against the stand-in alone. Goal: writer pool >= 0.95x.
Run: .venv/bin/python benchmarks/write_overlap.py [--images 32] [--batch 4] [--seconds-per-image 0.6]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffusion_assets.generation.partition import _write_image  # noqa: E402
from diffusion_assets.generation.writer import BatchWriter, writer_threads  # noqa: E402
from diffusion_assets.manifests.io import write_table  # noqa: E402


def fixed_images(n: int, size: int = 1024) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size]
    out = []
    for i in range(n):
        base = np.stack([(x + 7 * i) % 256, (y + 3 * i) % 256, (x + y) % 256], axis=-1)
        noise = rng.integers(-12, 13, base.shape)
        out.append(Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)))
    return out


def row(i: int) -> dict:
    return {
        "image_id": f"img{i:04d}", "path": f"images/img{i:04d}.png", "prompt": "a red circle",
        "negative_prompt": "", "steps": 4, "sampler": "Euler", "seed": i, "guidance_scale": 0.0,
        "width": 1024, "height": 1024, "model_weights_hash": "ab" * 32, "preset": "flux-schnell",
        "refiner_model_id": None, "lora_path": None,
    }  # fmt: skip


def stand_in(batch: list[int], seconds: float, pictures: list[Image.Image]) -> list[Image.Image]:
    time.sleep(seconds * len(batch))
    return [pictures[i % len(pictures)] for i in batch]


def run(path: str, batches: list[list[int]], seconds: float, pictures: list[Image.Image], out: Path) -> float:
    rows: dict[str, dict] = {}

    def index(written: list[dict]) -> None:
        rows.update((r["image_id"], r) for r in written)
        table_rows = [{k: v for k, v in r.items() if v is not None} for r in rows.values()]
        write_table(out / "manifest.parquet", table_rows, pa.Table.from_pylist(table_rows).schema)

    start = time.perf_counter()
    if path == "stand-in alone":
        for batch in batches:
            stand_in(batch, seconds, pictures)
    elif path == "serial writes":
        for batch in batches:
            images = stand_in(batch, seconds, pictures)
            index([_write_image(out, row(i), im) for i, im in zip(batch, images, strict=True)])
    else:
        with BatchWriter(lambda item: _write_image(out, *item), index) as writer:
            for batch in batches:
                images = stand_in(batch, seconds, pictures)
                writer.submit([(row(i), im) for i, im in zip(batch, images, strict=True)])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds-per-image", type=float, default=0.6)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    pictures = fixed_images(8)
    batches = [list(range(i, min(i + args.batch, args.images))) for i in range(0, args.images, args.batch)]
    paths = ["stand-in alone", "serial writes", "writer pool"]
    times: dict[str, list[float]] = {p: [] for p in paths}
    for _ in range(args.repeats):  # interleaved, medians
        for p in paths:
            with tempfile.TemporaryDirectory() as tmp:
                times[p].append(run(p, batches, args.seconds_per_image, pictures, Path(tmp)))
    base = float(np.median(times["stand-in alone"]))
    print(
        f"{args.images} images of 1024², batch {args.batch}, stand-in {args.seconds_per_image} s/image, "
        f"{writer_threads()} writer threads, medians of {args.repeats}"
    )
    print("| path | wall s | images/s | throughput vs stand-in alone |")
    print("|---|---|---|---|")
    for p in paths:
        t = float(np.median(times[p]))
        print(f"| {p} | {t:.2f} | {args.images / t:.3f} | {base / t:.3f}x |")


if __name__ == "__main__":
    main()
