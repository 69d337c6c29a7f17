"""Encode a dataset once: VAE posteriors and text embeddings, cached as one safetensors file.

The base model is frozen and no text-encoder LoRA is trained, so every training step would compute the
same VAE posterior and the same caption embedding; diffusers' text-to-image LoRA example recomputes both
every step. Here they are computed once per (dataset version, base weights hash, resolution) and stored in
``<cache root>/<dataset version>-<weights hash[:16]>-<res>px/cache.safetensors``, written atomically, so a
resumed run or a later run with other hyperparameters reuses them.

The posterior's **mean and standard deviation** (unscaled, float32) are stored, not one sample: the
trainer either uses the mean (``latents="mean"``, deterministic) or draws ``mean + std * n`` each step with
its own seeded generator (``latents="sample"``), which is what re-encoding every step gives, without
running the encoder.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from diffusion_assets.files import atomic_write_with
from diffusion_assets.training.dataset import Example, load_pixels
from diffusion_assets.training.families import Family, encode_posterior, encode_text

CACHE_FILE = "cache.safetensors"
CACHE_FORMAT = "1"
"""Bumped when the file's layout changes; part of its metadata and checked on load."""


@dataclass(frozen=True)
class EncodedDataset:
    """A dataset's cached encodings, in ``image_ids`` order."""

    path: Path
    image_ids: tuple[str, ...]
    latent_mean: torch.Tensor
    latent_std: torch.Tensor
    text: dict[str, torch.Tensor]
    built: bool
    """True when this call ran the encoders; False when it read an existing cache."""
    seconds: float = 0.0


def cache_dir_for(
    cache_root: str | Path,
    dataset_version: str,
    base_weights_hash: str,
    resolution: int,
    max_sequence_length: int | None = None,
) -> Path:
    """The cache folder of one (dataset version, base weights, resolution[, Flux T5 length])."""
    version = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset_version).strip("._") or "unversioned"
    suffix = f"-t5_{max_sequence_length}" if max_sequence_length else ""
    return Path(cache_root) / f"{version}-{base_weights_hash[:16]}-{resolution}px{suffix}"


def run_cache_dir(
    cache_root: str | Path, dataset_version: str, base_weights_hash: str, config, family: str
) -> Path:
    """``cache_dir_for`` of one training run: a Flux cache is keyed by its T5 length too."""
    t5_length = config.max_sequence_length if family == "flux" else None
    return cache_dir_for(cache_root, dataset_version, base_weights_hash, config.resolution, t5_length)


def load_or_encode(
    pipe,
    family: Family,
    examples: list[Example],
    cache_dir: Path,
    resolution: int,
    fingerprint: str,
    max_sequence_length: int | None = None,
    batch_size: int = 16,
) -> EncodedDataset:
    """Read the cache in ``cache_dir``, or encode ``examples`` with ``pipe``'s VAE and text encoders and write it.

    Raises:
        ValueError: the cache exists but was built from a different ``metadata.jsonl`` (the dataset was
            edited without a new version) or with another layout.
    """
    path = Path(cache_dir) / CACHE_FILE
    ids = tuple(e.image_id for e in examples)
    if path.is_file():
        return _read(path, ids, fingerprint)
    start = time.perf_counter()
    means, stds, texts = [], [], []
    with torch.no_grad():
        for first in range(0, len(examples), batch_size):
            chunk = examples[first : first + batch_size]
            pixels = torch.stack([load_pixels(e.path, resolution) for e in chunk])
            mean, std = encode_posterior(pipe.vae, pixels)
            means.append(mean)
            stds.append(std)
            texts.append(
                {
                    k: v.float().cpu()
                    for k, v in encode_text(
                        pipe, family, [e.caption for e in chunk], max_sequence_length
                    ).items()
                }
            )
    tensors = {"latent_mean": torch.cat(means), "latent_std": torch.cat(stds)}
    for key in texts[0]:
        tensors[f"text.{key}"] = torch.cat([t[key] for t in texts])
    metadata = {
        "format": CACHE_FORMAT,
        "image_ids": json.dumps(list(ids)),
        "metadata_sha256": fingerprint,
        "family": family.name,
        "resolution": str(resolution),
    }
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    atomic_write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    return _split(path, ids, tensors, built=True, seconds=time.perf_counter() - start)


def _read(path: Path, ids: tuple[str, ...], fingerprint: str) -> EncodedDataset:
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    fix = f"give the dataset a new version, or delete {path.parent} to rebuild it"
    if metadata.get("format") != CACHE_FORMAT:
        raise ValueError(
            f"{path} has cache format {metadata.get('format')!r}, expected {CACHE_FORMAT}: {fix}"
        )
    if metadata.get("metadata_sha256") != fingerprint or tuple(json.loads(metadata["image_ids"])) != ids:
        raise ValueError(
            f"{path} was encoded from a different train/metadata.jsonl under the same dataset version: {fix}"
        )
    return _split(path, ids, tensors, built=False)


def _split(
    path: Path, ids: tuple[str, ...], tensors: dict[str, torch.Tensor], built: bool, seconds: float = 0.0
) -> EncodedDataset:
    text = {k.removeprefix("text."): v for k, v in tensors.items() if k.startswith("text.")}
    return EncodedDataset(path, ids, tensors["latent_mean"], tensors["latent_std"], text, built, seconds)
