"""Prompt adherence of a shapes pipeline, scored by the analytic checker.

Sample ``i`` of a split uses the ``i``-th caption of that split (cycling in ``all_combos`` order) and
``seeds[i]`` on its own CPU ``torch.Generator``, so a score is reproducible and comparable across models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline

from diffusion_assets.shapes.captions import ShapeAttrs, caption
from diffusion_assets.shapes.checker import adherence, aggregate
from diffusion_assets.shapes.world import all_combos


def evaluation_prompts(split: str, n: int, style: str = "filled") -> list[ShapeAttrs]:
    """The ``n`` targets of a split (``"seen"`` or ``"held_out"``), cycling over its combos."""
    combos = all_combos((style,), split=split)
    return [combos[i % len(combos)] for i in range(n)]


@torch.no_grad()
def generate(
    pipe: DiffusionPipeline,
    prompts: list[str],
    seeds: list[int],
    steps: int = 20,
    guidance: float = 2.0,
    guidance_rescale: float = 0.0,
    batch_size: int = 32,
) -> list[np.ndarray]:
    """uint8 HxWx3 images, one CPU generator per image (diffusers' reproducibility advice)."""
    images: list[np.ndarray] = []
    for i in range(0, len(prompts), batch_size):
        out = pipe(
            prompt=prompts[i : i + batch_size],
            num_inference_steps=steps,
            guidance_scale=guidance,
            guidance_rescale=guidance_rescale,
            generator=[torch.Generator("cpu").manual_seed(s) for s in seeds[i : i + batch_size]],
            output_type="np",
        ).images
        images.extend((np.asarray(out) * 255).round().clip(0, 255).astype(np.uint8))
    return images


def evaluate_pipeline(
    pipe: DiffusionPipeline,
    n: int = 64,
    steps: int = 20,
    guidance: float = 2.0,
    seeds: list[int] | None = None,
    guidance_rescale: float = 0.0,
    splits: tuple[str, ...] = ("seen", "held_out"),
) -> dict[str, float]:
    """Adherence rates per split: ``{split}_{all|colour|shape|background}`` plus ``{split}_n``."""
    seeds = list(range(n)) if seeds is None else list(seeds)
    if len(seeds) != n:
        raise ValueError(f"need one seed per sample: n={n} but {len(seeds)} seeds")
    metrics: dict[str, float] = {"steps": steps, "guidance": guidance, "guidance_rescale": guidance_rescale}
    for split in splits:
        targets = evaluation_prompts(split, n)
        images = generate(pipe, [caption(t) for t in targets], seeds, steps, guidance, guidance_rescale)
        rates = aggregate([adherence(image, target) for image, target in zip(images, targets, strict=True)])
        metrics |= {f"{split}_{key}": value for key, value in rates.items() if key != "style"}
    return metrics


def load_pipeline(folder: str | Path) -> DiffusionPipeline:
    """Load a pipeline folder on CPU, progress bars off; fails loudly if the folder is incomplete."""
    if not (Path(folder) / "model_index.json").is_file():
        raise FileNotFoundError(
            f"no diffusers pipeline at {folder} (model_index.json missing); "
            "train one with `python benchmarks/train_shapes_tiny.py`"
        )
    pipe = DiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def evaluate_adherence(
    pipeline_folder: str | Path,
    n: int = 64,
    steps: int = 20,
    guidance: float = 2.0,
    seeds: list[int] | None = None,
    guidance_rescale: float = 0.0,
) -> dict[str, float]:
    """Load ``pipeline_folder`` and score ``n`` seen and ``n`` held-out prompts (see ``evaluate_pipeline``)."""
    return evaluate_pipeline(load_pipeline(pipeline_folder), n, steps, guidance, seeds, guidance_rescale)
