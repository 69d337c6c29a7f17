"""Stage 1: train a tiny ``AutoencoderKL`` on the shapes world (Kingma & Welling 2014; Rombach et al. 2022).

An untrained VAE decodes to mush (about 8 dB), so the latent diffusion model needs one trained here.
Success criterion: the checker reads every attribute from reconstructions as it does from originals.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL

from diffusion_assets.shapes.checker import read_image
from diffusion_assets.shapes.common import LossLog, psnr, setup_torch, to_tensor, to_uint8, warmup_cosine
from diffusion_assets.shapes.config import VaeConfig
from diffusion_assets.shapes.world import SIZE, STYLES, all_combos, make_dataset

EVAL_SEED_OFFSET = 1_000_003
"""Evaluation images use ``seed + offset``, so they never coincide with training images."""


def build_vae(config: VaeConfig) -> AutoencoderKL:
    """An untrained VAE; ``len(block_out_channels) - 1`` halvings of the 32x32 input."""
    n = len(config.block_out_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=config.block_out_channels,
        layers_per_block=config.layers_per_block,
        latent_channels=config.latent_channels,
        norm_num_groups=config.norm_num_groups,
        sample_size=SIZE,
    )


@torch.no_grad()
def encode(vae: AutoencoderKL, images: np.ndarray, batch_size: int = 256) -> torch.Tensor:
    """Posterior means of uint8 images, multiplied by ``scaling_factor`` (the diffusion model's input)."""
    chunks = [
        vae.encode(to_tensor(images[i : i + batch_size]).to(vae.device)).latent_dist.mean
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(chunks).cpu() * vae.config.scaling_factor


@torch.no_grad()
def reconstruct(vae: AutoencoderKL, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Encode to the posterior mean and decode again; uint8 in, uint8 out."""
    out = []
    for i in range(0, len(images), batch_size):
        x = to_tensor(images[i : i + batch_size]).to(vae.device)
        out.append(to_uint8(vae.decode(vae.encode(x).latent_dist.mean).sample))
    return np.concatenate(out)


def evaluate_vae(vae: AutoencoderKL, seed: int, per_combo: int = 2) -> dict[str, float]:
    """PSNR and the checker's exact-attribute rate on reconstructions, seen and held-out combos apart."""
    metrics: dict[str, float] = {}
    for split in ("seen", "held_out"):
        combos = all_combos(STYLES, split=split)
        images, attrs = make_dataset(seed + EVAL_SEED_OFFSET, per_combo * len(combos), combos)
        recon = reconstruct(vae, images)
        metrics[f"psnr_{split}"] = psnr(images, recon)
        metrics[f"attribute_accuracy_{split}"] = float(
            np.mean([read_image(r).attrs == a for r, a in zip(recon, attrs, strict=True)])
        )
    return metrics


def train_vae(
    out_dir: str | Path, config: VaeConfig, seed: int = 0, device: str = "cpu", threads: int = 1
) -> dict:
    """Train on every combo and style, save with ``save_pretrained`` to ``out_dir``, return metrics.

    The VAE is an unconditional image codec, like Stable Diffusion's (trained on generic images), so it
    sees the held-out colour x shape pairs too: held-out prompts test the text-conditioned parts (CLIP
    text tower and UNet), which never see them. Trained on seen pairs only, the checker misread 4 % of
    held-out reconstructions at this budget. Writes ``loss.csv`` and ``metrics.json`` beside the weights.
    """
    out = Path(out_dir)
    setup_torch(seed, threads)
    # 1. data: a fixed pool of images, every style (LoRAs decode outlines and stripes later)
    images, _ = make_dataset(seed, config.n_images, all_combos(STYLES))
    data = to_tensor(images)
    # 2. model and optimiser
    vae = build_vae(config).to(device)
    opt = torch.optim.AdamW(vae.parameters(), lr=config.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    losses = LossLog("vae")
    # 3. training loop: reconstruction MSE + a small KL that keeps the latents near N(0, I)
    for step in range(config.steps):
        for group in opt.param_groups:
            group["lr"] = config.lr * warmup_cosine(
                step, config.steps, warmup=min(100, config.steps // 10 + 1)
            )
        x = data[torch.randint(len(data), (config.batch_size,), generator=gen)].to(device)
        posterior = vae.encode(x).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen).to(device)
        recon = vae.decode(z).sample
        loss = torch.nn.functional.mse_loss(recon, x) + config.kl_weight * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % config.log_every == 0 or step == config.steps - 1:
            losses.add(step, loss.item())
    vae.eval()
    # 4. scale latents to std ``latent_std`` (Stable Diffusion's 0.18215 makes it 1; Rombach et al. 2022)
    vae.register_to_config(scaling_factor=1.0)
    raw = encode(vae, images[:2048])
    vae.register_to_config(scaling_factor=float(config.latent_std / raw.std()))
    # 5. evaluate and save
    metrics = {**losses.timing(), "parameters": sum(p.numel() for p in vae.parameters())}
    metrics |= evaluate_vae(vae, seed, config.eval_per_combo)
    metrics["loss_first"], metrics["loss_last"] = losses.first_last()
    vae.to("cpu").save_pretrained(out)
    losses.write_csv(out / "loss.csv")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
