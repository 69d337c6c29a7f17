"""``ModelProvider``: loads each model once per process and reports the machine for manifests."""

from __future__ import annotations

import functools
import json
import platform
import resource
import sys
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import torch

from diffusion_assets.models.loading import (
    LoadedModel,
    LoadOptions,
    ModelRef,
    load_model,
    model_refs,
    resolve_device,
)
from diffusion_assets.models.presets import Preset

_PACKAGES = ("torch", "diffusers", "transformers", "peft", "accelerate", "safetensors", "diffusion_assets")


@functools.cache
def package_versions() -> dict[str, str]:
    """Versions of the packages that shape an image (read once per process: metadata lookups are slow)."""
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


class ModelProvider:
    """Locates, hashes and loads models, each at most once for the provider's lifetime.

    One provider lives for one Dagster step, so a partition loads its pipeline once and loops over
    all its images inside the step.
    """

    def __init__(
        self,
        options: LoadOptions,
        *,
        models_dir: Path,
        project_root: Path,
        batch_size: int,
        allow_download: bool = False,
    ):
        self.options = options
        self.models_dir = Path(models_dir)
        self.project_root = Path(project_root)
        self.batch_size = batch_size
        self.allow_download = allow_download
        self._refs: dict[str, dict[str, ModelRef]] = {}
        self._models: dict[str, LoadedModel] = {}
        self._described: dict | None = None
        self.device = resolve_device(options.device)
        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()

    def refs(self, preset: Preset) -> dict[str, ModelRef]:
        if preset.name not in self._refs:
            self._refs[preset.name] = model_refs(
                preset, self.models_dir, self.project_root, self.allow_download
            )
        return self._refs[preset.name]

    def load(self, preset: Preset) -> LoadedModel:
        if preset.name not in self._models:
            self._models[preset.name] = load_model(preset, self.refs(preset), self.options)
        return self._models[preset.name]

    @property
    def loads(self) -> int:
        """How many models this provider has loaded (tests assert one load per partition)."""
        return len(self._models)

    def device_name(self) -> str:
        if self.device.startswith("cuda"):
            return torch.cuda.get_device_name(torch.device(self.device))
        return f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"

    def peak_memory_bytes(self) -> int:
        """CUDA max allocated since the provider started, else the process's max RSS."""
        if self.device.startswith("cuda"):
            return int(torch.cuda.max_memory_allocated(torch.device(self.device)))
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(rss if sys.platform == "darwin" else rss * 1024)

    def describe(self) -> dict:
        """Device and package columns of a manifest row (computed once per provider)."""
        if self._described is None:
            self._described = {
                "device": self.device,
                "device_name": self.device_name(),
                "package_versions": json.dumps(package_versions(), sort_keys=True),
                # settings that can change pixels (VAE tiling visibly does) or their numerics
                "load_options": json.dumps(
                    {k: v for k, v in asdict(self.options).items() if k not in ("device", "dtype")},
                    sort_keys=True,
                ),
            }
        return self._described
