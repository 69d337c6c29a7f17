"""Score a set of generated images: every per-image and per-variant number of a report.

Per image: CLIP-T, CLIP-I (when a reference set is given) and the shapes checker's verdict (when the plan
says ``checker="shapes"``). Per variant: KID and FD against the reference set, and diversity across seeds.
One CLIP model serves all of them, and each image is embedded once for CLIP-I and diversity.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from diffusion_assets.evaluation.generate import GeneratedImage, Variant
from diffusion_assets.evaluation.metrics import (
    ClipMetrics,
    clip_i,
    distribution_distances,
    diversity,
    reference_images,
    shapes_scores,
)
from diffusion_assets.evaluation.plan import EvaluationPlan


def score_images(
    plan: EvaluationPlan,
    variants: Sequence[Variant],
    images: Sequence[GeneratedImage],
    clip_source: str | Path,
    reference_dir: str | Path | None,
    *,
    device: str = "cpu",
    kid_subset_size: int = 50,
) -> tuple[list[dict], dict[str, dict]]:
    """``(per-image scores, per-variant set metrics keyed by variant label)``."""
    # 1. per-image CLIP-T and embeddings
    clip = ClipMetrics(clip_source, device)
    pictures = [Image.open(g.path).convert("RGB") for g in images]
    prompts = [plan.prompts[g.prompt_index].text for g in images]
    scores: list[dict] = [{"clip_t": value} for value in clip.clip_t(pictures, prompts)]
    features = clip.image_features(pictures)
    set_metrics: dict[str, dict] = {v.label: {} for v in variants}
    # 2. against the reference (training) set: CLIP-I per image, KID and FD per variant
    if reference_dir is not None:
        reference = [Image.open(p).convert("RGB") for p in reference_images(reference_dir)]
        similarity = clip_i(features, clip.image_features(reference)).tolist()
        for score, value in zip(scores, similarity, strict=True):
            score["clip_i"] = value
        per_variant = {
            v.label: [p for p, g in zip(pictures, images, strict=True) if g.variant == v] for v in variants
        }
        distances = distribution_distances(clip.features, reference, per_variant, subset_size=kid_subset_size)
        for label, values in distances.items():
            set_metrics[label] |= values
    # 3. diversity across seeds within each prompt
    for variant in variants:
        mine = [i for i, g in enumerate(images) if g.variant == variant]
        groups = [images[i].prompt_index for i in mine]
        set_metrics[variant.label]["diversity"] = diversity(features[mine], groups)
    # 4. the analytic shapes checker
    if plan.checker == "shapes":
        for score, picture, prompt in zip(scores, pictures, prompts, strict=True):
            score["shapes"] = shapes_scores(picture, prompt, plan.target_style)
    return scores, set_metrics
