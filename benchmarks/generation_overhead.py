"""Dagster's overhead over a plain diffusers loop, and throughput against batch size (CPU).

Generates the same N images twice in one run: (a) a plain diffusers loop (load once, one CPU
generator per image, save PNGs), (b) materializing the same catalog partition through Dagster
(`dg.materialize`, the real asset: catalog validation, weights hashing, PNG metadata, manifest,
checks). Prints the ratio (b)/(a), with the reproducibility check on and off, then images/s of
the plain loop at batch sizes 1, 4 and 8 and their ratio to batch 1.

    python benchmarks/generation_overhead.py [--n 64] [--model shapes-tiny|sd15-tiny] [--steps 20]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import dagster as dg  # noqa: E402
import torch  # noqa: E402
from diffusers import DiffusionPipeline  # noqa: E402

from diffusion_assets.defs.generation import GenerationConfig, generated_images  # noqa: E402
from diffusion_assets.defs.partitions import CATALOG_PARTITIONS_NAME, generation_key  # noqa: E402
from diffusion_assets.defs.resources import GpuResource, ProjectResource  # noqa: E402
from diffusion_assets.models.tiny import build_tiny  # noqa: E402
from diffusion_assets.seeds import cpu_generator, derive_seed  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATE = "2026-11-28"


def model_folder(name: str, scratch: Path) -> Path:
    if name == "shapes-tiny":
        folder = ROOT / "models" / "shapes-tiny"
        if not (folder / "model_index.json").is_file():
            raise SystemExit(f"{folder} is missing; use --model sd15-tiny or train shapes-tiny first")
        return folder
    return build_tiny("sd15", scratch / "sd15-tiny")


def prompts(n: int) -> list[str]:
    colours = ["red", "green", "blue", "yellow", "magenta", "cyan"]
    shapes = ["circle", "square", "triangle"]
    return [f"a {colours[i % 6]} {shapes[(i // 6) % 3]} on a gray background" for i in range(n)]


def clock() -> tuple[float, float]:
    """(wall, CPU) seconds: CPU time (all threads of this process) is robust to a shared machine."""
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = clock()
    return wall - start[0], cpu - start[1]


def plain_loop(folder: Path, n: int, batch: int, steps: int, size: int, out: Path) -> tuple[float, float]:
    start = clock()
    pipe = DiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    texts = prompts(n)
    for i in range(0, n, batch):
        chunk = texts[i : i + batch]
        gens = [cpu_generator(derive_seed(0, f"p{j}", 0, DATE)) for j in range(i, i + len(chunk))]
        images = pipe(
            chunk, num_inference_steps=steps, guidance_scale=2.0, width=size, height=size, generator=gens
        ).images
        for j, image in enumerate(images):
            image.save(out / f"{i + j}.png")
    return since(start)


def through_dagster(
    folder: Path, n: int, batch: int, steps: int, size: int, root: Path, verify: int, instance
) -> tuple[float, float]:
    """Materialize the partition on an existing instance (a deployment's instance outlives its runs)."""
    (root / "prompts").mkdir(parents=True, exist_ok=True)
    lines = "\n".join(f'  - id: p{i}\n    prompt: "{p}"' for i, p in enumerate(prompts(n)))
    (root / "prompts" / "bench.yaml").write_text(
        f"defaults: {{model: {folder}, steps: {steps}, guidance: 2.0, width: {size}, height: {size}}}\n"
        f"entries:\n{lines}\n"
    )
    project = ProjectResource(
        root=str(root), prompts=str(root / "prompts"), data=str(root / "data"), models=str(root / "models")
    )
    if not instance.has_dynamic_partition(CATALOG_PARTITIONS_NAME, "bench"):
        instance.add_dynamic_partitions(CATALOG_PARTITIONS_NAME, ["bench"])
    start = clock()
    result = dg.materialize(
        [generated_images],
        instance=instance,
        partition_key=str(generation_key("bench", DATE)),
        resources={"gpu": GpuResource(device="cpu", batch_size=batch), "project": project},
        run_config=dg.RunConfig({"generated_images": GenerationConfig(verify_batches=verify)}),
    )
    assert result.success
    return since(start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--model", default="shapes-tiny", choices=["shapes-tiny", "sd15-tiny"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="1 keeps CPU time free of thread spin-waits")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; N={args.n}, model={args.model}, "
        f"steps={args.steps}, {args.size}px, batch {args.batch}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        folder = model_folder(args.model, scratch)
        # warm-up: imports, kernels and file cache, so neither side pays them alone
        (scratch / "warm").mkdir()
        plain_loop(folder, args.batch, args.batch, 2, args.size, scratch / "warm")
        (scratch / "plain").mkdir()
        plain = plain_loop(folder, args.n, args.batch, args.steps, args.size, scratch / "plain")
        start = clock()
        with dg.instance_for_test() as instance:
            instance_cost = since(start)
            common = (folder, args.n, args.batch, args.steps, args.size)
            through_dagster(
                folder, args.batch, args.batch, 2, args.size, scratch / "dw", 0, instance
            )  # warm-up
            dag_fast = through_dagster(*common, scratch / "d0", 0, instance)
            dag_full = through_dagster(*common, scratch / "d1", 1, instance)
        print(
            f"(creating the test instance: {instance_cost[0]:.2f} s wall, {instance_cost[1]:.2f} s CPU; excluded)"
        )
        print(f"\n{args.n} images                      wall s   CPU s   CPU ratio to plain loop")
        for label, (wall, cpu) in [
            ("plain diffusers loop", plain),
            ("Dagster, checks without re-generation", dag_fast),
            ("Dagster, + reproducibility check (1 batch)", dag_full),
        ]:
            print(f"{label:42} {wall:7.2f} {cpu:7.2f}   {cpu / plain[1]:.3f}")
        print("goal: Dagster without re-generation <= 1.05 x the plain loop")
        print("\nbatch   images/CPU-s   ratio to batch 1   (goal at batch 8: >= 2.0)")
        base = None
        for batch in (1, 4, 8):
            out = scratch / f"b{batch}"
            out.mkdir()
            _, cpu = plain_loop(folder, args.n, batch, args.steps, args.size, out)
            rate = args.n / cpu
            base = base or rate
            print(f"{batch:5d}   {rate:12.2f}   {rate / base:.2f}")


if __name__ == "__main__":
    main()
