"""Train every ``shapes-tiny`` stage in order and ship the result.

Stages, each a plain function from folders to a folder (the Dagster layer wraps each as an asset):
1. ``save_tokenizer``  -> ``<work>/tokenizer``
2. ``train_vae``       -> ``<work>/vae``
3. ``train_clip``      -> ``<work>/clip``          (needs the tokenizer)
4. ``train_unet``      -> ``<work>/unet_stage``    (needs vae and clip)
5. ``assemble``        -> ``out_dir``              (a StableDiffusionPipeline folder)
``finalize`` then copies the CLIP beside it and writes ``training_config.json``, ``metrics.json`` and
the loss curves (CSV and PNG) into ``out_dir``.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from diffusion_assets.shapes.assemble import assemble
from diffusion_assets.shapes.config import TrainConfig
from diffusion_assets.shapes.evaluate import evaluate_adherence
from diffusion_assets.shapes.tokenizer import save_tokenizer
from diffusion_assets.shapes.train_clip import train_clip
from diffusion_assets.shapes.train_unet import Callback, train_unet
from diffusion_assets.shapes.train_vae import train_vae

STAGES = ("vae", "clip", "unet")


def default_clip_dir(out_dir: str | Path) -> Path:
    """Where the evaluation CLIP ships: beside the pipeline, ``models/shapes-tiny`` -> ``models/shapes-tiny-clip``."""
    out = Path(out_dir)
    return out.with_name(out.name + "-clip")


def write_curves(out_dir: Path, stage_dirs: dict[str, Path]) -> Path:
    """Merge the stages' ``loss.csv`` into ``loss_curves.csv`` and plot ``loss_curves.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: list[list[str]] = []
    for stage in STAGES:
        with open(stage_dirs[stage] / "loss.csv") as f:
            rows.extend(list(csv.reader(f))[1:])
    with open(out_dir / "loss_curves.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["stage", "step", "loss", "seconds"])
        writer.writerows(rows)
    fig, axes = plt.subplots(1, len(STAGES), figsize=(4 * len(STAGES), 3))
    for ax, stage in zip(axes, STAGES, strict=True):
        steps = np.array([int(r[1]) for r in rows if r[0] == stage])
        losses = np.array([float(r[2]) for r in rows if r[0] == stage])
        ax.plot(steps, losses, alpha=0.4, label="logged")
        if len(losses) >= 20:  # the UNet's loss depends on the sampled timesteps: show a running mean
            window = len(losses) // 10
            ax.plot(steps[window - 1 :], np.convolve(losses, np.ones(window) / window, "valid"), label="mean")
            ax.legend()
        ax.set(title=stage, xlabel="step", ylabel="loss", yscale="log")
    fig.tight_layout()
    fig.savefig(out_dir / "loss_curves.png", dpi=80)
    plt.close(fig)
    return out_dir / "loss_curves.png"


def finalize(out_dir: Path, clip_dir: Path, work: Path, config: TrainConfig, metrics: dict) -> dict:
    """Copy the CLIP beside the pipeline; write config, metrics and curves next to the weights."""
    if clip_dir.exists():
        shutil.rmtree(clip_dir)
    shutil.copytree(work / "clip", clip_dir)
    stage_dirs = {"vae": work / "vae", "clip": work / "clip", "unet": work / "unet_stage"}
    write_curves(out_dir, stage_dirs)
    (out_dir / "training_config.json").write_text(json.dumps(config.to_dict(), indent=2))
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def train_shapes_tiny(
    out_dir: str | Path,
    config: TrainConfig | None = None,
    clip_dir: str | Path | None = None,
    work_dir: str | Path | None = None,
    evaluate: bool = True,
    callback: Callback | None = None,
    callback_every: int = 0,
) -> dict:
    """Train tokenizer, VAE, CLIP and UNet, assemble ``out_dir``, and return every stage's metrics.

    ``work_dir`` keeps the stage folders (default: a temporary folder, deleted afterwards);
    ``clip_dir`` defaults to ``default_clip_dir(out_dir)``. With ``evaluate``, the shipped folder is
    reloaded from disk and scored with ``evaluate_adherence`` (time not counted as training time).
    """
    config = config or TrainConfig.full()
    out = Path(out_dir)
    clip_out = Path(clip_dir) if clip_dir else default_clip_dir(out)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(work_dir) if work_dir else Path(tmp)
        common = {"seed": config.seed, "device": config.device, "threads": config.threads}
        # 1-4. the stages
        tokenizer_dir = save_tokenizer(work / "tokenizer")
        metrics = {"vae": train_vae(work / "vae", config.vae, **common)}
        metrics["clip"] = train_clip(work / "clip", tokenizer_dir, config.clip, **common)
        metrics["unet"] = train_unet(
            work / "unet_stage", work / "vae", work / "clip", config.unet, **common,
            callback=callback, callback_every=callback_every,
        )  # fmt: skip
        metrics["train_minutes"] = sum(metrics[s]["train_seconds"] for s in STAGES) / 60
        metrics["cpu_minutes"] = sum(metrics[s]["cpu_seconds"] for s in STAGES) / 60
        # 5. assemble, then evaluate what actually ships
        if out.exists():
            shutil.rmtree(out)
        assemble(out, work / "vae", work / "unet_stage", tokenizer_dir, config.unet)
        if evaluate:
            metrics["adherence"] = evaluate_adherence(
                out, n=config.eval_n, steps=config.eval_steps, guidance=config.eval_guidance
            )
        return finalize(out, clip_out, work, config, metrics)
