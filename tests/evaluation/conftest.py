"""Fixtures: a tiny SD 1.5 and a random LoRA for it, a tiny CLIP, a shapes reference set, one report."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import torch

from diffusion_assets.evaluation.plan import EvaluationPlan, shapes_plan

STEPS = 2
GUIDANCE = 2.0
BATCH = 4
CREATED_AT = datetime(2026, 11, 30, tzinfo=UTC)


def quick_plan(**overrides) -> EvaluationPlan:
    """3 prompts (trigger, no_trigger, held_out) x 2 seeds x weights 0, 0.5, 1: 18 images."""
    return shapes_plan(**{"style": "outlined", "n_seen": 1, "n_held_out": 1, "n_seeds": 2, **overrides})


@pytest.fixture(scope="session")
def sd15_dir(tmp_path_factory) -> Path:
    from diffusion_assets.models.tiny import build_tiny

    return build_tiny("sd15", tmp_path_factory.mktemp("sd15"))


def write_lora(sd15_dir: Path, out_dir: Path, std: float) -> Path:
    """A rank-4 LoRA on the UNet's attention projections; ``std=0`` keeps lora_B zero (a no-op)."""
    from diffusers import DiffusionPipeline, StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = DiffusionPipeline.from_pretrained(sd15_dir).unet
    torch.manual_seed(0)
    config = LoraConfig(
        r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=["to_q", "to_k", "to_v", "to_out.0"]
    )
    unet.add_adapter(config)
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if "lora_B" in name:
                param.normal_(0, std)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionPipeline.save_lora_weights(out_dir, unet_lora_layers=layers)
    return out_dir / "pytorch_lora_weights.safetensors"


@pytest.fixture(scope="session")
def lora_path(sd15_dir, tmp_path_factory) -> Path:
    """A random LoRA with a visible effect, and a loss.parquet beside it as the trainer writes."""
    from diffusion_assets.training.result import write_loss

    folder = tmp_path_factory.mktemp("lora")
    path = write_lora(sd15_dir, folder, std=0.5)
    write_loss(
        folder / "loss.parquet",
        [{"step": i, "loss": 1 / i, "lr": 1e-3, "seconds": 0.1} for i in range(1, 31)],
    )
    return path


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    """A random tiny CLIP (shapes tokenizer, 32x32 vision tower) saved as CLIPModel + CLIPProcessor."""
    from transformers import CLIPProcessor

    from diffusion_assets.shapes.config import ClipConfig
    from diffusion_assets.shapes.tokenizer import build_tokenizer
    from diffusion_assets.shapes.train_clip import build_clip, image_processor

    folder = tmp_path_factory.mktemp("tiny-clip")
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    model = build_clip(
        ClipConfig(hidden_size=32, intermediate_size=64, heads=2, projection_dim=16), tokenizer
    )
    model.save_pretrained(folder)
    CLIPProcessor(image_processor=image_processor(), tokenizer=tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def reference_dir(tmp_path_factory) -> Path:
    """An 8-image outlined shapes dataset in imagefolder layout (the adapter's 'training images')."""
    from diffusion_assets.training.synthetic import write_shapes_dataset

    return write_shapes_dataset(tmp_path_factory.mktemp("outline"), n=8, seed=0, style="outlined")


@pytest.fixture(scope="session")
def adapter_report(sd15_dir, lora_path, clip_dir, reference_dir, tmp_path_factory):
    """One evaluation of the random LoRA, shared by the read-only report tests."""
    from diffusion_assets.datasets.spec import Evaluation
    from diffusion_assets.evaluation import RunSettings, evaluate_adapter

    out = tmp_path_factory.mktemp("report")
    settings = RunSettings(
        steps=STEPS, guidance=GUIDANCE, batch_size=BATCH, kid_subset_size=4, relative_to=out
    )
    return evaluate_adapter(
        sd15_dir,
        lora_path,
        clip_dir,
        reference_dir,
        quick_plan(),
        out,
        settings,
        thresholds=Evaluation(),
        adapter_id="lora-under-test",
        dataset_version="v1",
        created_at=CREATED_AT,
    )
