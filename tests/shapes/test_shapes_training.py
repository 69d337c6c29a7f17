"""Training mechanics on the quick config: losses fall, folders are complete, the pipeline reloads offline."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from diffusion_assets.shapes.config import TrainConfig, VaeConfig
from diffusion_assets.shapes.train import train_shapes_tiny
from diffusion_assets.shapes.train_vae import train_vae

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    metrics = train_shapes_tiny(root / "shapes-tiny", TrainConfig.quick(), work_dir=root / "work")
    return root, metrics


@pytest.mark.parametrize("stage", ["vae", "clip", "unet"])
def test_loss_decreases(trained, stage):
    _, metrics = trained
    assert metrics[stage]["loss_last"] < metrics[stage]["loss_first"]


def test_folders_hold_weights_config_and_curves(trained):
    root, metrics = trained
    out = root / "shapes-tiny"
    for name in (
        "model_index.json",
        "training_config.json",
        "metrics.json",
        "loss_curves.csv",
        "loss_curves.png",
    ):
        assert (out / name).is_file(), name
    assert (
        TrainConfig.from_dict(json.loads((out / "training_config.json").read_text())) == TrainConfig.quick()
    )
    stages = {line.split(",")[0] for line in (out / "loss_curves.csv").read_text().splitlines()[1:]}
    assert stages == {"vae", "clip", "unet"}
    clip = root / "shapes-tiny-clip"
    assert (clip / "model.safetensors").is_file() and (clip / "processor_config.json").is_file()
    assert set(metrics["adherence"]) >= {"seen_all", "held_out_all"}


def test_scheduler_follows_the_zero_snr_recipe(trained):
    root, _ = trained
    config = json.loads((root / "shapes-tiny" / "scheduler" / "scheduler_config.json").read_text())
    assert config["prediction_type"] == "v_prediction"
    assert config["rescale_betas_zero_snr"] is True
    assert config["timestep_spacing"] == "trailing"
    assert config["steps_offset"] == 1


def test_pipeline_reloads_offline_and_generates_32px(trained, monkeypatch):
    from diffusers import DiffusionPipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root, _ = trained
    pipe = DiffusionPipeline.from_pretrained(root / "shapes-tiny")
    assert pipe.safety_checker is None
    pipe.set_progress_bar_config(disable=True)
    image = pipe(
        "a red circle on a gray background",
        num_inference_steps=2,
        guidance_scale=2.0,
        generator=torch.Generator().manual_seed(0),
    ).images[0]
    assert image.size == (32, 32)


def test_clip_reloads_with_its_processor(trained):
    from transformers import CLIPModel, CLIPProcessor

    root, _ = trained
    model = CLIPModel.from_pretrained(root / "shapes-tiny-clip")
    processor = CLIPProcessor.from_pretrained(root / "shapes-tiny-clip")
    inputs = processor(
        text=["a red circle on a gray background"],
        images=[np.zeros((32, 32, 3), dtype=np.uint8)],
        return_tensors="pt",
        padding="max_length",
    )
    assert float(inputs["pixel_values"].min()) == -1.0
    assert model(**inputs).logits_per_image.shape == (1, 1)


def test_overrides_change_one_field():
    config = TrainConfig.quick().with_overrides(["unet.steps=7", "seed=3", "unet.block_out_channels=(8, 16)"])
    assert (config.unet.steps, config.seed, config.unet.block_out_channels) == (7, 3, (8, 16))
    with pytest.raises(KeyError, match="no field"):
        TrainConfig.quick().with_overrides(["unet.stepz=7"])


def test_a_stage_is_deterministic_by_seed(tmp_path):
    config = replace(VaeConfig(), n_images=32, steps=3, batch_size=4, eval_per_combo=1)
    train_vae(tmp_path / "a", config, seed=5)
    train_vae(tmp_path / "b", config, seed=5)
    a = load_file(tmp_path / "a" / "diffusion_pytorch_model.safetensors")
    b = load_file(tmp_path / "b" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_evaluate_adherence_scores_seen_and_held_out_apart(trained):
    from diffusion_assets.shapes.evaluate import evaluate_adherence

    root, _ = trained
    scores = evaluate_adherence(root / "shapes-tiny", n=2, steps=2, seeds=[4, 5])
    assert scores["seen_n"] == 2 and scores["held_out_n"] == 2
    assert 0.0 <= scores["seen_all"] <= scores["seen_colour"] <= 1.0


def test_evaluation_fails_loudly(trained, tmp_path):
    from diffusion_assets.shapes.evaluate import evaluate_adherence, evaluation_prompts

    root, _ = trained
    with pytest.raises(ValueError, match="one seed per sample"):
        evaluate_adherence(root / "shapes-tiny", n=3, seeds=[1])
    with pytest.raises(FileNotFoundError, match="train_shapes_tiny"):
        evaluate_adherence(tmp_path)
    targets = evaluation_prompts("held_out", 10)
    assert targets[0] == targets[9] and len(set(targets)) == 9
