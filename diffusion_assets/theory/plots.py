"""Figures for the theory report: schedule curves and forward-noising strips."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: assets run without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from diffusion_assets.theory.ddpm import q_sample  # noqa: E402
from diffusion_assets.theory.schedules import NoiseSchedule  # noqa: E402

LABEL_HEIGHT = 14
"""Height in pixels of the white label band under the frames of a noising strip."""


def plot_alphas_cumprod_and_snr(schedules: dict[str, NoiseSchedule], path: str | Path) -> Path:
    """Write a PNG with alpha_bar_t (left) and log SNR(t) (right) against t/T, one line per schedule."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax_ab, ax_snr) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for name, schedule in schedules.items():
        t = np.arange(schedule.num_timesteps) / schedule.num_timesteps
        ax_ab.plot(t, schedule.alphas_cumprod.numpy(), label=name)
        # A zero-terminal-SNR schedule has log SNR(T) = -inf; leave that point off the curve.
        log_snr = schedule.log_snr.numpy()
        ax_snr.plot(t, np.where(np.isfinite(log_snr), log_snr, np.nan), label=name)
    ax_ab.set(xlabel="t / T", ylabel=r"$\bar\alpha_t$", title=r"$\bar\alpha_t$ (Ho et al. 2020, Eq. 4)")
    ax_snr.set(
        xlabel="t / T",
        ylabel=r"$\log\,\bar\alpha_t / (1-\bar\alpha_t)$",
        title="log SNR(t) (Kingma et al. 2021)",
    )
    for ax in (ax_ab, ax_snr):
        ax.grid(alpha=0.3)
        ax.legend()
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    os.replace(tmp, path)  # readers never see a half-written file
    return path


def _to_tensor(image: Image.Image | torch.Tensor) -> torch.Tensor:
    """A PIL image as a (C, H, W) float tensor in [-1, 1]; tensors must already be (C, H, W) in [-1, 1]."""
    if isinstance(image, Image.Image):
        array = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
        return torch.from_numpy(array).permute(2, 0, 1)
    if image.ndim != 3:
        raise ValueError(f"Expected a (C, H, W) tensor in [-1, 1], got shape {tuple(image.shape)}.")
    return image.to(torch.float32)


def _to_pil(x: torch.Tensor) -> Image.Image:
    array = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)


def noising_strip(
    image: Image.Image | torch.Tensor,
    schedule: NoiseSchedule,
    timesteps: Sequence[int],
    generator: torch.Generator | None = None,
    scale: int = 1,
) -> Image.Image:
    """Forward-noised copies x_t ~ q(x_t|x_0) of one image at ``timesteps``, left to right, labelled "t=...".

    One noise draw is shared by all frames, so the strip shows a single trajectory of Eq. 4. Frame i
    occupies the box (i*W*scale, 0, (i+1)*W*scale, H*scale); the labels sit in a band beneath.
    """
    x0 = _to_tensor(image)
    noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
    _, height, width = x0.shape
    fw, fh = width * scale, height * scale
    strip = Image.new("RGB", (fw * len(timesteps), fh + LABEL_HEIGHT), "white")
    draw, font = ImageDraw.Draw(strip), ImageFont.load_default()
    for i, t in enumerate(timesteps):
        # Ho et al. 2020, Eq. 4
        frame = _to_pil(q_sample(schedule, x0, int(t), noise)).convert("RGB")
        strip.paste(frame.resize((fw, fh), Image.Resampling.NEAREST), (i * fw, 0))
        draw.text((i * fw + 1, fh + 1), f"t={int(t)}", fill="black", font=font)
    return strip


def default_timesteps(schedule: NoiseSchedule, count: int = 8) -> list[int]:
    """``count`` timesteps evenly spaced from 0 to T-1 inclusive."""
    return [int(t) for t in np.linspace(0, schedule.num_timesteps - 1, count).round()]


def save_noising_strips(
    image: Image.Image | torch.Tensor,
    schedules: dict[str, NoiseSchedule],
    out_dir: str | Path,
    timesteps: Sequence[int] | None = None,
    seed: int = 0,
    scale: int = 1,
) -> dict[str, Path]:
    """Write ``noising_<name>.png`` per schedule; every strip uses the same noise (seeded ``seed``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, schedule in schedules.items():
        generator = torch.Generator().manual_seed(seed)
        steps = default_timesteps(schedule) if timesteps is None else timesteps
        strip = noising_strip(image, schedule, steps, generator, scale)
        path = out_dir / f"noising_{name}.png"
        tmp = path.with_name(f".{path.name}.tmp")
        strip.save(tmp, format="PNG")
        os.replace(tmp, path)
        paths[name] = path
    return paths
