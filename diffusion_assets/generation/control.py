"""ControlNet conditioning images: Canny edges (OpenCV) and depth maps (a transformers estimator)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

CANNY_LOW, CANNY_HIGH = 100, 200  # the thresholds of the diffusers ControlNet docs


def canny_image(source: Image.Image, low: int = CANNY_LOW, high: int = CANNY_HIGH) -> Image.Image:
    """Canny edges of ``source`` as a 3-channel image (white edges on black)."""
    edges = cv2.Canny(np.asarray(source.convert("RGB")), low, high)
    return Image.fromarray(np.stack([edges] * 3, axis=-1))


def depth_image(source: Image.Image, estimator) -> Image.Image:
    """A depth map from a transformers ``depth-estimation`` pipeline, normalised to 0–255 RGB."""
    depth = np.asarray(estimator(source.convert("RGB"))["depth"], dtype=np.float32)
    span = float(depth.max() - depth.min()) or 1.0
    depth = ((depth - depth.min()) / span * 255.0).round().astype(np.uint8)
    return Image.fromarray(np.stack([depth] * 3, axis=-1))


def control_image(path: Path, preprocess: str | None, size: tuple[int, int], estimator=None) -> Image.Image:
    """Load ``path``, resize to the generation ``size`` (w, h) and apply ``preprocess``."""
    source = Image.open(path).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    if preprocess == "canny":
        return canny_image(source)
    if preprocess == "depth":
        if estimator is None:
            raise ValueError(
                "the depth preprocessor needs a depth estimator (the preset's depth_estimator_id)"
            )
        return depth_image(source, estimator).resize(size, Image.Resampling.BICUBIC)
    return source
