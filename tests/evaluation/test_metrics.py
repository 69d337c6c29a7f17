"""Metrics: CLIP-T through torchmetrics equals a direct cosine, KID/FD on small sets, diversity, shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import CLIPTokenizer

from diffusion_assets.evaluation.metrics import (
    ClipMetrics,
    distribution_distances,
    diversity,
    reference_images,
    shapes_scores,
    to_uint8_tensor,
)
from diffusion_assets.shapes.captions import ShapeAttrs, caption
from diffusion_assets.shapes.train_clip import embed_images, embed_text, tokenize
from diffusion_assets.shapes.world import STYLES, all_combos, sample, to_pil


@pytest.fixture(scope="module")
def clip(clip_dir) -> ClipMetrics:
    return ClipMetrics(clip_dir)


def world_images(n: int, styles=("outlined",), seed: int = 5) -> tuple[list, list[str]]:
    combos = all_combos(styles)
    samples = [sample(seed, i * 7, combos) for i in range(n)]
    return [to_pil(s.image) for s in samples], [caption(s.attrs) for s in samples]


def test_clip_t_equals_a_direct_cosine(clip, clip_dir):
    images, prompts = world_images(12, STYLES)
    # mismatched pairs too, so that both signs of the cosine occur
    prompts = prompts[6:] + prompts[:6]
    scores = clip.clip_t(images, prompts)
    with torch.no_grad():
        pixels = to_uint8_tensor(images).float() / 127.5 - 1  # the processor's rescale + normalise
        image_emb = embed_images(clip.model, pixels)
        text_emb = embed_text(clip.model, tokenize(CLIPTokenizer.from_pretrained(clip_dir), prompts))
    direct = (100 * (image_emb * text_emb).sum(-1)).clamp(min=0)
    assert torch.allclose(torch.tensor(scores), direct, atol=1e-3)
    assert 0 < sum(s > 0 for s in scores) < len(scores)


def test_image_features_are_unit_vectors_of_projection_size(clip):
    images, _ = world_images(3)
    features = clip.image_features(images)
    assert features.shape == (3, 16)
    assert torch.allclose(features.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_kid_and_fd_run_on_small_samples(clip):
    reference, _ = world_images(6, seed=1)
    same, _ = world_images(6, seed=1)
    other, _ = world_images(3, styles=("filled",), seed=2)
    out = distribution_distances(
        clip.features, reference, {"same": same, "other": other, "one": other[:1]}, subset_size=50, subsets=20
    )
    assert out["one"] == {"kid_mean": None, "kid_std": None, "fd": None}
    for name in ("same", "other"):
        assert all(math.isfinite(v) for v in out[name].values()), out
    assert abs(out["same"]["fd"]) < 1e-3
    assert out["other"]["fd"] > out["same"]["fd"] + 1e-3
    assert out["other"]["kid_std"] >= 0  # KID is unbiased, so a small-sample mean may fall below 0


def test_kid_is_reproducible(clip):
    reference, _ = world_images(6, seed=1)
    other, _ = world_images(4, styles=("filled",), seed=2)
    first = distribution_distances(clip.features, reference, {"x": other}, subset_size=3, subsets=10)
    again = distribution_distances(clip.features, reference, {"x": other}, subset_size=3, subsets=10)
    assert first == again


@pytest.mark.parametrize(
    ("vectors", "groups", "expected"),
    [
        ([[1, 0], [1, 0]], [0, 0], 0.0),
        ([[1, 0], [0, 1]], [0, 0], 1.0),
        ([[1, 0], [-1, 0], [0, 1], [0, 1]], [0, 0, 1, 1], 1.0),  # mean of 2.0 and 0.0
        ([[1, 0], [0, 1]], [0, 1], None),  # no prompt has two seeds
    ],
)
def test_diversity_is_mean_pairwise_cosine_distance(vectors, groups, expected):
    assert diversity(torch.tensor(vectors, dtype=torch.float32), groups) == expected


def test_shapes_scores_read_style_against_the_target():
    attrs = ShapeAttrs("red", "square", "black", "outlined")
    image = to_pil(sample(0, 0, [attrs]).image)
    plain = "a red square on a black background"
    assert shapes_scores(image, plain, "outlined") == {
        "colour": True,
        "shape": True,
        "background": True,
        "style": True,
        "all": True,
        "reading": {"colour": "red", "shape": "square", "background": "black", "style": "outlined"},
        "unreadable": None,
    }
    assert shapes_scores(image, plain, None)["style"] is False  # the prompt's own style is filled
    assert shapes_scores(image, "a photo of a cat", "outlined") is None


def test_reference_images_read_the_train_split(reference_dir, tmp_path):
    assert len(reference_images(reference_dir)) == 8
    assert len(reference_images(reference_dir, limit=3)) == 3
    with pytest.raises(FileNotFoundError, match="no images"):
        reference_images(tmp_path)


def test_missing_clip_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="shapes-tiny-clip"):
        ClipMetrics(tmp_path / "nothing-here")


def test_uint8_tensor_layout():
    image = to_pil(np.full((32, 32, 3), 7, dtype=np.uint8))
    tensor = to_uint8_tensor([image, image])
    assert tensor.shape == (2, 3, 32, 32) and tensor.dtype == torch.uint8
