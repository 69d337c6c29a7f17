"""Stage 4: assemble the trained parts into a standard diffusers ``StableDiffusionPipeline`` folder."""

from __future__ import annotations

from pathlib import Path

from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from diffusion_assets.shapes.config import UnetConfig
from diffusion_assets.shapes.train_unet import sampling_scheduler


def build_pipeline(
    vae: AutoencoderKL,
    text_encoder: CLIPTextModel,
    tokenizer: CLIPTokenizer,
    unet: UNet2DConditionModel,
    config: UnetConfig,
) -> StableDiffusionPipeline:
    """An in-memory pipeline from trained parts; no safety checker (the world has nothing to filter)."""
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=sampling_scheduler(config),
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def assemble(
    out_dir: str | Path,
    vae_dir: str | Path,
    unet_stage_dir: str | Path,
    tokenizer_dir: str | Path,
    config: UnetConfig,
) -> Path:
    """Write a pipeline folder that ``DiffusionPipeline.from_pretrained(out_dir)`` loads offline.

    ``unet_stage_dir`` is the output of ``train_unet`` (its ``unet/`` and ``text_encoder/``).
    """
    stage = Path(unet_stage_dir)
    pipe = build_pipeline(
        AutoencoderKL.from_pretrained(vae_dir),
        CLIPTextModel.from_pretrained(stage / "text_encoder"),
        CLIPTokenizer.from_pretrained(tokenizer_dir),
        UNet2DConditionModel.from_pretrained(stage / "unet"),
        config,
    )
    pipe.save_pretrained(out_dir)
    return Path(out_dir)
