"""Stage 2: train a tiny ``CLIPModel`` contrastively on the shapes world (Radford et al. 2021).

Its text tower then conditions the UNet (as CLIP's does in Stable Diffusion), and the whole model scores
images later (CLIP score, zero-shot retrieval). The world has only 162 captions, so a batch holds many
images of the same caption; instead of CLIP's in-batch InfoNCE, which would push duplicates apart, each
image is classified against every training caption and each caption in the batch against the batch's
images with all its matching images as positives.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor, CLIPTokenizer

from diffusion_assets.shapes.captions import caption
from diffusion_assets.shapes.common import LossLog, setup_torch, to_tensor, warmup_cosine
from diffusion_assets.shapes.config import ClipConfig
from diffusion_assets.shapes.world import SIZE, STYLES, all_combos, make_dataset

EVAL_SEED_OFFSET = 2_000_003


def build_clip(config: ClipConfig, tokenizer: CLIPTokenizer) -> CLIPModel:
    """An untrained CLIP whose text config matches the tokenizer's ids and length (NOTES pitfall)."""
    tower = {
        "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size,
        "num_attention_heads": config.heads,
    }
    text = tower | {
        "vocab_size": len(tokenizer),
        "num_hidden_layers": config.text_layers,
        "max_position_embeddings": tokenizer.model_max_length,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    vision = tower | {
        "num_hidden_layers": config.vision_layers,
        "image_size": SIZE,
        "patch_size": config.patch_size,
    }
    return CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=config.projection_dim))


def image_processor() -> CLIPImageProcessorPil:
    """Maps a 32x32 RGB image to [-1, 1], exactly the range the vision tower was trained on."""
    return CLIPImageProcessorPil(
        size={"shortest_edge": SIZE},
        crop_size={"height": SIZE, "width": SIZE},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )


def tokenize(tokenizer: CLIPTokenizer, texts: list[str]) -> torch.Tensor:
    """Input ids padded to ``model_max_length``, as StableDiffusionPipeline pads prompts."""
    return tokenizer(
        texts,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids


def embed_text(model: CLIPModel, input_ids: torch.Tensor) -> torch.Tensor:
    """L2-normalised projected text embeddings (pooled at the end-of-text token)."""
    pooled = model.text_model(input_ids=input_ids).pooler_output
    return F.normalize(model.text_projection(pooled), dim=-1)


def embed_images(model: CLIPModel, pixels: torch.Tensor) -> torch.Tensor:
    """L2-normalised projected image embeddings; ``pixels`` in [-1, 1]."""
    pooled = model.vision_model(pixel_values=pixels).pooler_output
    return F.normalize(model.visual_projection(pooled), dim=-1)


@torch.no_grad()
def evaluate_clip(model: CLIPModel, tokenizer: CLIPTokenizer, seed: int, per_caption: int = 2) -> dict:
    """Zero-shot caption retrieval: top-1 over all 162 captions, and over the 54 filled ones."""
    model.eval()
    device = next(model.parameters()).device
    metrics = {}
    for name, styles in (("all_styles", STYLES), ("filled", ("filled",))):
        everything = all_combos(styles)
        texts = embed_text(model, tokenize(tokenizer, [caption(a) for a in everything]).to(device))
        for split in ("seen", "held_out"):
            combos = all_combos(styles, split=split)
            images, attrs = make_dataset(seed + EVAL_SEED_OFFSET, per_caption * len(combos), combos)
            predicted = (embed_images(model, to_tensor(images).to(device)) @ texts.T).argmax(1).cpu()
            truth = torch.tensor([everything.index(a) for a in attrs])
            metrics[f"retrieval_{name}_{split}"] = float((predicted == truth).float().mean())
            metrics[f"n_captions_{name}"] = len(everything)
    return metrics


def train_clip(
    out_dir: str | Path,
    tokenizer_dir: str | Path,
    config: ClipConfig,
    seed: int = 0,
    device: str = "cpu",
    threads: int = 1,
) -> dict:
    """Train on seen combos of every style; save model, tokenizer and processor into ``out_dir``."""
    out = Path(out_dir)
    setup_torch(seed, threads)
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)
    # 1. data: images of seen combos, labelled by their index among the seen captions
    combos = all_combos(STYLES, split="seen")
    images, attrs = make_dataset(seed, config.n_images, combos)
    data = to_tensor(images)
    labels = torch.tensor([combos.index(a) for a in attrs])
    caption_ids = tokenize(tokenizer, [caption(a) for a in combos]).to(device)
    # 2. model and optimiser
    model = build_clip(config, tokenizer).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(seed)
    losses = LossLog("clip")
    # 3. training loop
    for step in range(config.steps):
        for group in opt.param_groups:
            group["lr"] = config.lr * warmup_cosine(
                step, config.steps, warmup=min(50, config.steps // 10 + 1)
            )
        pick = torch.randint(len(data), (config.batch_size,), generator=gen)
        image_emb = embed_images(model, data[pick].to(device))
        text_emb = embed_text(model, caption_ids)
        logits = model.logit_scale.exp().clamp(max=100) * image_emb @ text_emb.T  # (batch, captions)
        target = labels[pick].to(device)
        # image -> caption: classify against every training caption
        loss_image = F.cross_entropy(logits, target)
        # caption -> image: each caption present in the batch, all its images as positives
        present = target.unique()
        positives = (target[None, :] == present[:, None]).float()
        log_probs = logits.T[present].log_softmax(dim=1)
        loss_text = -(positives * log_probs).sum(1).div(positives.sum(1)).mean()
        loss = (loss_image + loss_text) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % config.log_every == 0 or step == config.steps - 1:
            losses.add(step, loss.item())
    # 4. evaluate and save a folder that CLIPModel / CLIPProcessor.from_pretrained read back
    metrics = {**losses.timing(), "parameters": sum(p.numel() for p in model.parameters())}
    metrics |= evaluate_clip(model, tokenizer, seed, config.eval_per_caption)
    metrics["loss_first"], metrics["loss_last"] = losses.first_last()
    model.to("cpu").save_pretrained(out)
    CLIPProcessor(image_processor=image_processor(), tokenizer=tokenizer).save_pretrained(out)
    losses.write_csv(out / "loss.csv")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def load_clip(folder: str | Path) -> tuple[CLIPModel, CLIPProcessor]:
    """The trained CLIP and its processor, from a folder written by ``train_clip``."""
    return CLIPModel.from_pretrained(folder).eval(), CLIPProcessor.from_pretrained(folder)
