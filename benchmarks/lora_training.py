"""LoRA training throughput: diffusers' example loop against this project's cached trainer.

Trains the same LoRA (rank, alpha, learning rate, batch, steps, attention targets) on the same dataset
and base model twice in one run, each way in its own child process so its peak memory is its own:

(a) the loop of diffusers' ``examples/text_to_image/train_text_to_image_lora.py``, re-implemented:
    PNG decode + resize/crop + tokenize in the data loader, then **VAE-encode and text-encode every
    step**, ``latent_dist.sample()``, noise and timesteps from the global RNG, AdamW, grad clipping;
(b) ``diffusion_assets.training.train_lora`` with cached posteriors and embeddings (``latents="sample"``
    draws from the cached posterior, the same distribution as (a)), no validation, one final checkpoint.

Each way runs ``--repeats`` times, alternating a/b so a busy spell on a shared machine hits both; medians
are reported. Steps/s counts step time only (data + encode + forward/backward/step), after ``--warmup`` steps, for both
ways; (b)'s one-off cache build is printed separately, with end-to-end seconds. Peak memory is the child
process's max RSS (``resource.getrusage``), or CUDA max allocated on a GPU: tracemalloc cannot see
PyTorch's allocations.

    python benchmarks/lora_training.py [--base models/shapes-tiny] [--steps 300] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, help="diffusers SD folder (default: a tiny sd15 from configs)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=10, help="first steps left out of steps/s")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for tiny models)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of each way, alternating; medians reported"
    )
    parser.add_argument("--way", choices=["a", "b"], help=argparse.SUPPRESS)
    parser.add_argument("--run", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def peak_memory(device: str) -> int:
    import resource  # noqa: PLC0415

    if torch.device(device).type == "cuda":
        return int(torch.cuda.max_memory_allocated())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def read_dataset(folder: Path) -> list[tuple[bytes, str]]:
    """(PNG bytes, caption) rows: what ``datasets``' imagefolder keeps in Arrow and decodes per access."""
    lines = (folder / "train" / "metadata.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return [((folder / "train" / r["file_name"]).read_bytes(), r["text"]) for r in rows]


def example_loop(args: argparse.Namespace, base: Path, dataset: Path) -> dict:
    """Way (a): the diffusers example's per-step work, without accelerate."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel  # noqa: PLC0415
    from diffusers.optimization import get_scheduler  # noqa: PLC0415
    from diffusers.training_utils import cast_training_params  # noqa: PLC0415
    from peft import LoraConfig  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415
    from transformers import CLIPTextModel, CLIPTokenizer  # noqa: PLC0415

    start = time.perf_counter()
    torch.manual_seed(0)
    # 1. models, frozen; LoRA on the UNet's attention projections
    tokenizer = CLIPTokenizer.from_pretrained(base, subfolder="tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(base, subfolder="text_encoder").to(args.device)
    vae = AutoencoderKL.from_pretrained(base, subfolder="vae").to(args.device)
    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
    noise_scheduler = DDPMScheduler.from_pretrained(base, subfolder="scheduler")
    for model in (text_encoder, vae, unet):
        model.requires_grad_(False)
    unet.add_adapter(
        LoraConfig(
            r=args.rank,
            lora_alpha=args.rank,
            init_lora_weights="gaussian",
            target_modules=["to_k", "to_q", "to_v", "to_out.0"],
        )
    )
    unet.to(args.device)
    cast_training_params(unet, dtype=torch.float32)
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
    lr_scheduler = get_scheduler("constant", optimizer=optimizer)
    # 2. data: decode, resize + centre crop, normalise and tokenize on every access
    rows = read_dataset(dataset)
    res = args.resolution

    def transform(png: bytes) -> torch.Tensor:
        image = Image.open(io.BytesIO(png)).convert("RGB")
        scale = res / min(image.size)
        image = image.resize(
            (round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR
        )
        left, top = (image.width - res) // 2, (image.height - res) // 2
        image = image.crop((left, top, left + res, top + res))
        return torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)

    def collate(batch: list[tuple[bytes, str]]) -> dict:
        ids = tokenizer(
            [c for _, c in batch],
            max_length=tokenizer.model_max_length,
            padding="max_length",
            truncation=True,
            return_tensors="pt",
        ).input_ids
        return {"pixel_values": torch.stack([transform(png) for png, _ in batch]), "input_ids": ids}

    loader = torch.utils.data.DataLoader(rows, batch_size=args.batch_size, shuffle=True, collate_fn=collate)
    # 3. the loop
    step_seconds: list[float] = []
    unet.train()
    while len(step_seconds) < args.steps:
        tick = time.perf_counter()
        for batch in loader:
            latents = vae.encode(batch["pixel_values"].to(args.device)).latent_dist.sample()
            latents = latents * vae.config.scaling_factor
            noise = torch.randn_like(latents)
            timesteps = torch.randint(
                0, noise_scheduler.config.num_train_timesteps, (latents.shape[0],), device=latents.device
            )
            noisy = noise_scheduler.add_noise(latents, noise, timesteps)
            encoder_hidden_states = text_encoder(batch["input_ids"].to(args.device), return_dict=False)[0]
            if noise_scheduler.config.prediction_type == "v_prediction":
                target = noise_scheduler.get_velocity(latents, noise, timesteps)
            else:
                target = noise
            pred = unet(noisy, timesteps, encoder_hidden_states, return_dict=False)[0]
            loss = torch.nn.functional.mse_loss(pred.float(), target.float(), reduction="mean")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad()
            if torch.device(args.device).type == "cuda":
                torch.cuda.synchronize()
            step_seconds.append(time.perf_counter() - tick)
            tick = time.perf_counter()
            if len(step_seconds) == args.steps:
                break
    timed = step_seconds[args.warmup :]
    return {
        "steps_per_second": len(timed) / sum(timed),
        "end_to_end_seconds": time.perf_counter() - start,
        "cache_seconds": 0.0,
        "peak_memory_bytes": peak_memory(args.device),
    }


def cached_trainer(args: argparse.Namespace, base: Path, dataset: Path, work: Path) -> dict:
    """Way (b): this project's trainer, cache built cold in this process."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    from diffusion_assets.training.config import LoraLineage, LoraTrainConfig  # noqa: PLC0415
    from diffusion_assets.training.lora import train_lora  # noqa: PLC0415

    config = LoraTrainConfig(
        rank=args.rank,
        alpha=args.rank,
        learning_rate=1e-4,
        steps=args.steps,
        batch_size=args.batch_size,
        resolution=args.resolution,
        latents="sample",
        checkpoint_every=0,
    )
    lineage = LoraLineage(dataset="bench", dataset_version="bench-1", base_model_id=str(base))
    start = time.perf_counter()
    result = train_lora(
        dataset, base, work / "out", config, lineage, cache_root=work / "cache", device=args.device
    )
    seconds = pq.read_table(result.loss_path).column("seconds").to_pylist()[args.warmup :]
    return {
        "steps_per_second": len(seconds) / sum(seconds),
        "end_to_end_seconds": time.perf_counter() - start,
        "cache_seconds": result.cache_seconds,
        "peak_memory_bytes": result.peak_memory_bytes,
    }


def child(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    work = args.work
    base, dataset = Path((work / "base.txt").read_text()), work / "dataset"
    if args.way == "a":
        figures = example_loop(args, base, dataset)
    else:
        figures = cached_trainer(args, base, dataset, work / f"b{args.run}")
    print("RESULT " + json.dumps(figures), flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.way:
        child(args)
        return
    from diffusion_assets.training.synthetic import write_shapes_dataset  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="lora-bench-") as tmp:
        work = Path(tmp)
        # 1. the shared inputs: a base model and a shapes-world dataset
        if args.base is None:
            from diffusion_assets.models.tiny import build_tiny  # noqa: PLC0415

            base = build_tiny("sd15", work / "sd15-tiny")
        else:
            base = args.base.resolve()
        (work / "base.txt").write_text(str(base))
        write_shapes_dataset(work / "dataset", n=args.images, seed=0, style="outlined")
        # 2. each way in its own process
        runs: dict[str, list[dict]] = {"a": [], "b": []}
        passthrough = list(argv if argv is not None else sys.argv[1:])
        for run in range(args.repeats):
            for way in ("a", "b"):  # alternating, so a slow spell on a shared machine hits both
                command = [sys.executable, __file__, *passthrough, "--way", way, "--work", str(work)]
                done = subprocess.run([*command, "--run", str(run)], capture_output=True, text=True, cwd=ROOT)
                line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
                if done.returncode or line is None:
                    raise SystemExit(f"way {way} failed:\n{done.stderr[-4000:]}")
                runs[way].append(json.loads(line.removeprefix("RESULT ")))
    # 3. report medians over runs (peak memory: the largest)
    print(
        f"base: {args.base or 'tiny sd15 from configs'}; {args.images} images at {args.resolution}px, "
        f"batch {args.batch_size}, rank {args.rank}, {args.steps} steps ({args.warmup} warm-up), "
        f"{args.threads} threads, {args.device}, {args.repeats} runs of each way"
    )
    labels = {"a": "(a) diffusers example loop", "b": "(b) cached train_lora"}
    median = {}
    for way, figures in runs.items():
        median[way] = statistics.median(f["steps_per_second"] for f in figures)
        each = ", ".join(f"{f['steps_per_second']:.1f}" for f in figures)
        print(
            f"{labels[way]:28s} {median[way]:7.2f} steps/s (runs: {each})   "
            f"end-to-end {statistics.median(f['end_to_end_seconds'] for f in figures):6.1f} s "
            f"(cache {max(f['cache_seconds'] for f in figures):.2f} s)   "
            f"peak {max(f['peak_memory_bytes'] for f in figures) / 2**20:7.1f} MiB"
        )
    print(f"speed-up (b)/(a): {median['b'] / median['a']:.2f}x  (goal >= 1.2x)")


if __name__ == "__main__":
    main()
