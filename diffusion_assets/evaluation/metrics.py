"""Image metrics for evaluation reports: CLIP-T, CLIP-I, KID, Fréchet distance, diversity, shapes adherence.

CLIP-T goes through torchmetrics' own ``CLIPScore`` (``max(100 cos(E_I, E_T), 0)``, Hessel et al. 2021),
the supported way to give it a local CLIP in torchmetrics 1.9: ``model_name_or_path`` accepts a callable
returning ``(model, processor)`` (a folder path is rejected unless its name contains "openai", "jinaai" or
"zer0int"). Under transformers 5, ``get_image_features``/``get_text_features`` return output objects, so
the model is wrapped (``FeatureOutputs``) to hand torchmetrics their ``.pooler_output`` (the projected
embedding). tests/evaluation checks the result against a direct cosine computation.

KID (Bińkowski et al. 2018) and Fréchet distance (Heusel et al. 2017) are torchmetrics'
``KernelInceptionDistance`` / ``FrechetInceptionDistance`` with a custom ``feature`` module: the CLIP
vision tower's L2-normalised projected embedding (``ClipImageFeatures``) instead of Inception. CLIP-I and
diversity use the same embeddings. With tens of images, FD is biased upward and KID is noisy: compare
numbers within one report (same plan, same reference set), not across reports.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.multimodal.clip_score import CLIPScore
from transformers import CLIPModel, CLIPProcessor

from diffusion_assets.shapes.captions import parse_caption
from diffusion_assets.shapes.checker import agreement, read_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def load_clip_model(source: str | Path, device: str = "cpu") -> tuple[CLIPModel, CLIPProcessor]:
    """A CLIP model and processor from a local folder or a hub id (offline: from the local cache only)."""
    try:
        model = CLIPModel.from_pretrained(str(source)).eval().to(device)
        processor = CLIPProcessor.from_pretrained(str(source))
    except (OSError, ValueError) as error:
        raise FileNotFoundError(
            f"CLIP model {source!r} could not be loaded (looked for a local folder, then the Hugging Face "
            f"cache). Train the shapes CLIP with `python benchmarks/train_shapes_tiny.py` (writes "
            f"models/shapes-tiny-clip) or fetch a hub model with `hf download {source}`. Cause: {error}"
        ) from error
    return model, processor


class FeatureOutputs(torch.nn.Module):
    """A CLIP model whose ``get_*_features`` return tensors, as torchmetrics expects (transformers 5 fix)."""

    def __init__(self, model: CLIPModel) -> None:
        super().__init__()
        self.model = model
        self.config = model.config

    @staticmethod
    def _tensor(out) -> torch.Tensor:
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    def get_image_features(self, *args, **kwargs) -> torch.Tensor:
        return self._tensor(self.model.get_image_features(*args, **kwargs))

    def get_text_features(self, *args, **kwargs) -> torch.Tensor:
        return self._tensor(self.model.get_text_features(*args, **kwargs))


class ClipImageFeatures(torch.nn.Module):
    """uint8 (N, 3, H, W) images -> L2-normalised CLIP image embeddings (N, d) on the CPU: the ``feature``
    module given to torchmetrics' KID and FID in place of Inception."""

    def __init__(self, model: CLIPModel, processor: CLIPProcessor) -> None:
        super().__init__()
        self.model = FeatureOutputs(model)
        self.processor = processor
        self.num_features = int(model.config.projection_dim)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        device = next(self.model.parameters()).device
        pixels = self.processor(images=list(images.cpu()), return_tensors="pt")["pixel_values"]
        features = self.model.get_image_features(pixel_values=pixels.to(device)).float()
        return F.normalize(features, dim=-1).cpu()  # torchmetrics' KID/FD states live on the CPU


def to_uint8_tensor(images: Sequence[Image.Image]) -> torch.Tensor:
    """PIL images (one size) as a uint8 (N, 3, H, W) tensor."""
    return torch.from_numpy(np.stack([np.asarray(i.convert("RGB")) for i in images])).permute(0, 3, 1, 2)


class ClipMetrics:
    """One loaded CLIP, used for every CLIP-based number of a report."""

    def __init__(self, source: str | Path, device: str = "cpu") -> None:
        self.source = str(source)
        self.device = device
        self.model, self.processor = load_clip_model(source, device)
        wrapped = FeatureOutputs(self.model)
        self._clip_score = CLIPScore(model_name_or_path=lambda: (wrapped, self.processor))
        self.features = ClipImageFeatures(self.model, self.processor)

    @torch.no_grad()
    def clip_t(self, images: Sequence[Image.Image], prompts: Sequence[str]) -> list[float]:
        """Per-image CLIPScore of each image with its prompt (one torchmetrics update per pair)."""
        scores = []
        for image, prompt in zip(images, prompts, strict=True):
            self._clip_score.update(to_uint8_tensor([image])[0].to(self.device), prompt)
            scores.append(float(self._clip_score.compute()))
            self._clip_score.reset()
        return scores

    def image_features(self, images: Sequence[Image.Image], batch_size: int = 64) -> torch.Tensor:
        """L2-normalised image embeddings (N, d) on CPU."""
        chunks = [
            self.features(to_uint8_tensor(images[i : i + batch_size])).cpu()
            for i in range(0, len(images), batch_size)
        ]
        return torch.cat(chunks)


def clip_i(features: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per generated image, the mean cosine similarity to every reference image (features normalised)."""
    return (features @ reference.T).mean(dim=1)


def diversity(features: torch.Tensor, groups: Sequence[int]) -> float | None:
    """Mean pairwise cosine distance within each group (a prompt's seeds), averaged over groups of >= 2."""
    per_group = []
    labels = torch.as_tensor(list(groups))
    for group in labels.unique():
        member = features[labels == group]
        n = len(member)
        if n < 2:
            continue
        similarity = member @ member.T
        per_group.append(float((1 - similarity).sum() / (n * (n - 1))))  # the diagonal adds 1 - 1 = 0
    return float(np.mean(per_group)) if per_group else None


def distribution_distances(
    extractor: ClipImageFeatures,
    reference: Sequence[Image.Image],
    generated: dict[str, Sequence[Image.Image]],
    subset_size: int = 50,
    subsets: int = 100,
    seed: int = 0,
) -> dict[str, dict[str, float | None]]:
    """KID mean/std and Fréchet distance of each generated set against ``reference``, in CLIP space.

    The reference is embedded once (``reset_real_features=False``). KID's subset size is capped at the
    smaller set; its subsets are drawn from a seeded RNG, so the numbers are reproducible. A set with fewer
    than 2 images gets None.
    """
    with warnings.catch_warnings():  # "will save all extracted features": known, and small here
        warnings.simplefilter("ignore", UserWarning)
        kid = KernelInceptionDistance(
            feature=extractor, subsets=subsets, subset_size=2, reset_real_features=False
        )
    fd = FrechetInceptionDistance(feature=extractor, reset_real_features=False)
    real = to_uint8_tensor(reference)
    kid.update(real, real=True)
    fd.update(real, real=True)
    out: dict[str, dict[str, float | None]] = {}
    for name, images in generated.items():
        if len(images) < 2 or len(reference) < 2:
            out[name] = {"kid_mean": None, "kid_std": None, "fd": None}
            continue
        fake = to_uint8_tensor(images)
        kid.update(fake, real=False)
        fd.update(fake, real=False)
        kid.subset_size = min(subset_size, len(reference), len(images))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            kid_mean, kid_std = kid.compute()
        out[name] = {"kid_mean": float(kid_mean), "kid_std": float(kid_std), "fd": float(fd.compute())}
        kid.reset()
        fd.reset()
    return out


def shapes_scores(image: Image.Image, prompt: str, target_style: str | None) -> dict | None:
    """The shapes checker's verdict on one image: colour/shape/background/all against the prompt,
    ``style`` = read as ``target_style`` (the prompt's own style when None), and ``reading``: what the
    checker read (``{"colour", "shape", "background", "style"}``, None when it found no shape), which
    leakage compares across adapter weights; ``unreadable``: why it could not read the image (None if
    it could; an unreadable image misses every attribute). None if the prompt is not a shapes caption."""
    try:
        expected = parse_caption(prompt)
    except ValueError:
        return None
    read = read_image(image)
    seen = read.attrs
    hits = agreement(seen, expected)
    if target_style is not None:
        hits["style"] = seen is not None and seen.style == target_style
    hits["reading"] = None if seen is None else dict(asdict(seen))
    hits["unreadable"] = read.unreadable
    return hits


def reference_images(folder: str | Path, limit: int | None = 512) -> list[Path]:
    """The reference (training) images: an imagefolder dataset's ``train/`` split, else every image file
    under ``folder``, in sorted order; the first ``limit``."""
    folder = Path(folder)
    split = folder / "train"
    root = split if (split / "metadata.jsonl").is_file() else folder
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no images under {root}; pass the adapter's dataset version folder")
    return paths[:limit] if limit else paths
