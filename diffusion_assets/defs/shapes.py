"""The shapes world's own models, trained by the project: VAE, CLIP, UNet, then the shapes-tiny pipeline.

Each stage writes a folder under data/shapes_world/; ``shapes_tiny`` assembles them into the
diffusers folder the ``shapes-tiny`` preset loads (models/shapes-tiny, plus models/shapes-tiny-clip).
Materializing the group retrains the shipped weights.
"""

import json
from typing import Literal

import dagster as dg
from pydantic import Field

from diffusion_assets.shapes.config import TrainConfig

from .resources import ProjectResource

SHAPES_CODE_VERSION = "shapes-tiny-v1"


class ShapesTrainingConfig(dg.Config):
    """`full` is the shipped recipe (about 20 CPU minutes in all); `quick` checks the mechanics."""

    recipe: Literal["full", "quick"] = Field("full", description="full | quick")
    seed: int = Field(0, description="Training seed: the same seed gives the same weights.")
    threads: int = Field(2, gt=0, description="torch CPU threads.")
    overrides: list[str] = Field(default_factory=list, description='e.g. ["unet.steps=6000"]')

    def train_config(self) -> TrainConfig:
        base = TrainConfig.full() if self.recipe == "full" else TrainConfig.quick()
        config = base.with_overrides(self.overrides)
        return TrainConfig.from_dict({**config.to_dict(), "seed": self.seed, "threads": self.threads})


def _common(config: TrainConfig) -> dict:
    return {"seed": config.seed, "device": config.device, "threads": config.threads}


def _result(metrics: dict, folder) -> dg.MaterializeResult:
    flat = {k: v for k, v in metrics.items() if isinstance(v, int | float | str)}
    return dg.MaterializeResult(metadata={**flat, "folder": dg.MetadataValue.path(str(folder))})


@dg.asset(group_name="shapes_world", code_version=SHAPES_CODE_VERSION, kinds={"pytorch"})
def shapes_vae(config: ShapesTrainingConfig, project: ProjectResource) -> dg.MaterializeResult:
    """A tiny AutoencoderKL (32² RGB → 8²×4 latents) trained on the shapes world; reports PSNR and
    whether the exact checker still reads every attribute from its reconstructions."""
    from diffusion_assets.shapes.train_vae import train_vae  # noqa: PLC0415

    train = config.train_config()
    folder = project.data_dir() / "shapes_world" / "vae"
    return _result(train_vae(folder, train.vae, **_common(train)), folder)


@dg.asset(group_name="shapes_world", code_version=SHAPES_CODE_VERSION, kinds={"pytorch", "transformers"})
def shapes_clip(config: ShapesTrainingConfig, project: ProjectResource) -> dg.MaterializeResult:
    """A tiny CLIPModel (text and vision towers) trained contrastively, with a tokenizer built offline;
    reports zero-shot caption retrieval over every caption of the world."""
    from diffusion_assets.shapes.tokenizer import save_tokenizer  # noqa: PLC0415
    from diffusion_assets.shapes.train_clip import train_clip  # noqa: PLC0415

    train = config.train_config()
    work = project.data_dir() / "shapes_world"
    tokenizer = save_tokenizer(work / "tokenizer")
    return _result(train_clip(work / "clip", tokenizer, train.clip, **_common(train)), work / "clip")


@dg.asset(
    group_name="shapes_world",
    deps=[shapes_vae, shapes_clip],
    code_version=SHAPES_CODE_VERSION,
    kinds={"pytorch"},
)
def shapes_unet(config: ShapesTrainingConfig, project: ProjectResource) -> dg.MaterializeResult:
    """A tiny text-conditioned UNet2DConditionModel on the VAE's latents, conditioned on the CLIP text
    tower: zero-terminal-SNR betas, v-prediction, trailing timesteps, EMA (Lin et al. 2023)."""
    from diffusion_assets.shapes.train_unet import train_unet  # noqa: PLC0415

    train = config.train_config()
    work = project.data_dir() / "shapes_world"
    metrics = train_unet(work / "unet_stage", work / "vae", work / "clip", train.unet, **_common(train))
    return _result(metrics, work / "unet_stage")


@dg.asset(
    group_name="shapes_world", deps=[shapes_unet], code_version=SHAPES_CODE_VERSION, kinds={"diffusers"}
)
def shapes_tiny(config: ShapesTrainingConfig, project: ProjectResource) -> dg.MaterializeResult:
    """The `shapes-tiny` preset: the stages assembled into a StableDiffusionPipeline folder at
    models/shapes-tiny (CLIP beside it), scored for prompt adherence with the exact checker."""
    from diffusion_assets.shapes.assemble import assemble  # noqa: PLC0415
    from diffusion_assets.shapes.evaluate import evaluate_adherence  # noqa: PLC0415
    from diffusion_assets.shapes.train import default_clip_dir, finalize  # noqa: PLC0415

    train = config.train_config()
    work = project.data_dir() / "shapes_world"
    out = project.models_dir() / "shapes-tiny"
    assemble(out, work / "vae", work / "unet_stage", work / "tokenizer", train.unet)
    metrics = {
        stage: json.loads((work / folder / "metrics.json").read_text())
        for stage, folder in (("vae", "vae"), ("clip", "clip"), ("unet", "unet_stage"))
    }
    metrics["adherence"] = evaluate_adherence(
        out, n=train.eval_n, steps=train.eval_steps, guidance=train.eval_guidance
    )
    finalize(out, default_clip_dir(out), work, train, metrics)
    adherence = metrics["adherence"]
    return dg.MaterializeResult(
        metadata={
            "folder": dg.MetadataValue.path(str(out)),
            "adherence_seen": adherence["seen_all"],
            "adherence_held_out": adherence["held_out_all"],
            "adherence": dg.MetadataValue.json(adherence),
        }
    )
