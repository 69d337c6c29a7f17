"""Lab 2.6.1, "noise schedule affects quality": the same small UNet trained under several recipes.

Each recipe trains the shapes-world UNet (``shapes.train_unet``) on the same frozen VAE latents and
CLIP text tower, for the same number of steps and seed, then samples 20 DDIM steps and is scored with
the exact checker. The recipes separate the changes the NOTES prototype bundled together: the beta
schedule (linear, cosine, scaled-linear), the prediction target (ε vs v) and zero terminal SNR with
trailing timesteps (Lin et al. 2023).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from diffusion_assets.previews import image_grid
from diffusion_assets.shapes.assemble import assemble
from diffusion_assets.shapes.captions import caption
from diffusion_assets.shapes.config import UnetConfig
from diffusion_assets.shapes.evaluate import evaluate_pipeline, evaluation_prompts, generate, load_pipeline
from diffusion_assets.shapes.train_unet import train_unet
from diffusion_assets.shapes.world import to_pil
from diffusion_assets.theory.recipes import RECIPES


def compare_recipes(
    out_dir: Path,
    vae_dir: Path,
    clip_dir: Path,
    tokenizer_dir: Path,
    base: UnetConfig,
    recipes: dict[str, tuple[str, dict]] = RECIPES,
    *,
    seed: int = 0,
    threads: int = 2,
    eval_n: int = 32,
    grid_n: int = 12,
) -> list[dict]:
    """Train, assemble and score one UNet per recipe; returns one result dict per recipe."""
    results = []
    grid_targets = evaluation_prompts("seen", grid_n)
    for name, (description, fields) in recipes.items():
        work = Path(out_dir) / name
        # 1. train under the recipe (same data, steps and seed for every recipe)
        config = replace(base, **fields)
        metrics = train_unet(work / "unet_stage", vae_dir, clip_dir, config, seed=seed, threads=threads)
        # 2. the recipe's own sampler, 20 DDIM steps, scored by the exact checker
        folder = assemble(work / "pipeline", vae_dir, work / "unet_stage", tokenizer_dir, config)
        pipe = load_pipeline(folder)
        adherence = evaluate_pipeline(pipe, n=eval_n, steps=20, guidance=2.0)
        images = generate(pipe, [caption(t) for t in grid_targets], list(range(grid_n)), 20, 2.0, 0.0)
        grid = work / "samples.png"
        image_grid([to_pil(i) for i in images], cols=min(grid_n, 6), cell=64).save(grid)
        results.append(
            {
                "recipe": name,
                "description": description,
                "config": fields,
                "train_seconds": metrics["train_seconds"],
                "loss_last": metrics.get("loss_last"),
                "seen_all": adherence["seen_all"],
                "held_out_all": adherence["held_out_all"],
                "seen_colour": adherence["seen_colour"],
                "seen_background": adherence["seen_background"],
                "grid": str(grid),
            }
        )
    return results
