"""Validation images during training: one PNG per (prompt, seed), each from its own CPU generator.

diffusers' training examples draw every validation image from one shared generator, so image k depends on
images 0..k-1 and adding a prompt changes all later images. Here each image gets
``seeds.cpu_generator(seed)``, so the file for (prompt, seed) at step n is the same whatever else is
rendered, and the same seed at another step shows only what training changed.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch

from diffusion_assets.files import atomic_write_with
from diffusion_assets.seeds import cpu_generator
from diffusion_assets.training.families import Family


def validation_filename(prompt: str, seed: int) -> str:
    """``<prompt slug>-<prompt sha256[:8]>-seed<seed>.png``: stable whatever the other prompts are."""
    slug = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:40] or "prompt"
    digest = hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:8]
    return f"{slug}-{digest}-seed{int(seed)}.png"


def render_validation(
    pipe,
    family: Family,
    folder: str | Path,
    prompts: tuple[str, ...],
    seeds: tuple[int, ...],
    *,
    resolution: int,
    steps: int,
    guidance: float | None,
    lora_scale: float,
    call_kwargs: dict | None = None,
) -> list[Path]:
    """Render every (prompt, seed) with the pipeline's current adapter at ``lora_scale`` into ``folder``."""
    denoiser = getattr(pipe, family.denoiser)
    was_training = denoiser.training
    denoiser.eval()
    paths = []
    try:
        for prompt in prompts:
            for seed in seeds:
                kwargs = dict(call_kwargs or {})
                if guidance is not None:
                    kwargs["guidance_scale"] = guidance
                with torch.no_grad():
                    image = pipe(
                        prompt,
                        height=resolution,
                        width=resolution,
                        num_inference_steps=steps,
                        generator=cpu_generator(seed),
                        **{family.scale_kwarg: {"scale": lora_scale}},
                        **kwargs,
                    ).images[0]
                path = Path(folder) / validation_filename(prompt, seed)
                atomic_write_with(path, lambda tmp, image=image: image.save(tmp, format="PNG"))
                paths.append(path)
    finally:
        denoiser.train(was_training)
    return paths
