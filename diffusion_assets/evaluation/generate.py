"""Generate an evaluation plan's images: per (prompt, seed, weight) for an adapter, or per model.

Each pipeline is loaded once; each image gets its own fresh CPU ``torch.Generator`` (``seeds.cpu_generator``),
and images are batched in plan order with the same layout at every weight, so weight 0 reproduces the
base model's images byte for byte (NOTES: a different batch layout changes a few uint8 values). Weight 0
runs with the LoRA disabled, i.e. it *is* the base model; other weights go through ``set_adapters``.
PNGs land in ``<out_dir>/images/<variant>/p<prompt>-s<seed>.png``, written atomically.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import DiffusionPipeline
from PIL import Image

from diffusion_assets.evaluation.plan import EvaluationPlan, ModelComparisonPlan
from diffusion_assets.files import atomic_path, sha256_file
from diffusion_assets.generation.schedulers import scheduler_config_json
from diffusion_assets.models.loading import pipeline_class
from diffusion_assets.seeds import cpu_generator

ADAPTER_NAME = "evaluated"


@dataclass(frozen=True)
class Variant:
    """One column of the report: a model at an adapter weight (``weight=None``: no adapter loaded)."""

    label: str
    model: str
    weight: float | None

    @property
    def slug(self) -> str:
        """A folder name for the variant's images."""
        if self.weight is not None:
            return f"weight-{self.weight:.2f}"
        return "model-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", self.model)


@dataclass(frozen=True)
class GeneratedImage:
    """One generated PNG and where it sits in the plan."""

    variant: Variant
    prompt_index: int
    seed_index: int
    path: Path
    sha256: str
    recipe: dict = field(default_factory=dict, compare=False)
    """How it was made, for its manifest row (``manifests.evaluation`` "recipe" columns): steps,
    guidance, scheduler class and canonical config, size, batch id/size/index, extra call kwargs."""


def weight_variants(model: str, weights: Sequence[float]) -> list[Variant]:
    """The columns of an adapter report: ``w=0`` (baseline), ``w=0.5``, ``w=1``."""
    return [Variant(f"w={w:g}", model, float(w)) for w in weights]


def load_pipeline(
    folder: str | Path, device: str = "cpu", dtype: torch.dtype = torch.float32
) -> DiffusionPipeline:
    """A diffusers pipeline from a local folder, progress bars off; fails naming the folder if incomplete."""
    folder = Path(folder)
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(
            f"no diffusers pipeline at {folder} (model_index.json missing); pass a folder written by "
            "save_pretrained, e.g. models/shapes-tiny (`diffusion-assets train-shapes-tiny`)"
        )
    class_name = json.loads((folder / "model_index.json").read_text())["_class_name"]
    pipe = pipeline_class(class_name).from_pretrained(folder, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load_adapter(pipe: DiffusionPipeline, adapter_path: str | Path, name: str = ADAPTER_NAME) -> None:
    """Load a LoRA ``.safetensors`` diffusers reads (kohya or diffusers layout; or a folder holding one) under ``name``."""
    path = Path(adapter_path)
    if not path.exists():
        raise FileNotFoundError(f"adapter {path} not found; train it first (the `adapters` asset)")
    pipe.load_lora_weights(str(path), adapter_name=name)


def set_weight(pipe: DiffusionPipeline, weight: float, name: str = ADAPTER_NAME) -> None:
    """Weight 0 disables the LoRA (exactly the base model); any other weight scales it."""
    if weight == 0:
        pipe.disable_lora()
    else:
        pipe.enable_lora()
        pipe.set_adapters([name], [float(weight)])


@torch.no_grad()
def generate_variant(
    pipe: DiffusionPipeline,
    plan: EvaluationPlan,
    variant: Variant,
    out_dir: str | Path,
    *,
    steps: int,
    guidance: float,
    batch_size: int = 8,
    call_kwargs: dict | None = None,
) -> list[GeneratedImage]:
    """Every (prompt, seed) cell of ``plan`` with ``pipe`` as it is configured now."""
    folder = Path(out_dir) / "images" / variant.slug
    cells = plan.cells()
    results: list[GeneratedImage] = []
    made = {
        "steps": steps,
        "guidance_scale": guidance,
        "scheduler_class": type(pipe.scheduler).__name__,
        "scheduler_config": scheduler_config_json(pipe.scheduler),
        "pipeline_class": type(pipe).__name__,
        "dtype": str(pipe.dtype).removeprefix("torch."),
        "call_kwargs": json.dumps(call_kwargs or {}, sort_keys=True),
        "batch_size": batch_size,
    }
    for start in range(0, len(cells), batch_size):
        batch = cells[start : start + batch_size]
        batch_id = f"{variant.slug}/{start // batch_size:04d}"
        images = pipe(
            prompt=[plan.prompts[p].text for p, _ in batch],
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=[cpu_generator(plan.seeds[s]) for _, s in batch],
            output_type="pil",
            **(call_kwargs or {}),
        ).images
        for index, ((p, s), image) in enumerate(zip(batch, images, strict=True)):
            path = save_png(image, folder / f"p{p:03d}-s{s:03d}.png")
            recipe = {
                **made,
                "width": image.width,
                "height": image.height,
                "batch_id": batch_id,
                "batch_index": index,
            }
            results.append(GeneratedImage(variant, p, s, path, sha256_file(path), recipe))
    return results


def save_png(image: Image.Image, path: Path) -> Path:
    """Write ``image`` as PNG atomically."""
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def generate_for_adapter(
    base_dir: str | Path,
    adapter_path: str | Path,
    plan: EvaluationPlan,
    out_dir: str | Path,
    *,
    model_name: str,
    steps: int,
    guidance: float,
    device: str = "cpu",
    batch_size: int = 8,
    call_kwargs: dict | None = None,
) -> tuple[list[Variant], list[GeneratedImage]]:
    """The plan at every adapter weight, from one loaded pipeline."""
    pipe = load_pipeline(base_dir, device)
    load_adapter(pipe, adapter_path)
    variants = weight_variants(model_name, plan.weights)
    images: list[GeneratedImage] = []
    for variant in variants:
        set_weight(pipe, float(variant.weight or 0.0))
        images += generate_variant(
            pipe,
            plan,
            variant,
            out_dir,
            steps=steps,
            guidance=guidance,
            batch_size=batch_size,
            call_kwargs=call_kwargs,
        )
    return variants, images


def generate_for_models(
    comparison: ModelComparisonPlan,
    out_dir: str | Path,
    *,
    steps: int,
    guidance: float,
    device: str = "cpu",
    batch_size: int = 8,
    call_kwargs: dict | None = None,
) -> tuple[list[Variant], list[GeneratedImage]]:
    """The plan's prompts x seeds for each model in turn (one pipeline in memory at a time)."""
    variants: list[Variant] = []
    images: list[GeneratedImage] = []
    slugs = [Variant(name, name, None).slug for name, _ in comparison.models]
    if len(set(slugs)) != len(slugs):
        raise ValueError(
            f"model names {[n for n, _ in comparison.models]} share image folders {slugs}; rename them"
        )
    for name, folder in comparison.models:
        variant = Variant(name, name, None)
        pipe = load_pipeline(folder, device)
        images += generate_variant(
            pipe,
            comparison.plan,
            variant,
            out_dir,
            steps=steps,
            guidance=guidance,
            batch_size=batch_size,
            call_kwargs=call_kwargs,
        )
        variants.append(variant)
        del pipe
    return variants, images
