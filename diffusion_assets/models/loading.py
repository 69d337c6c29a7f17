"""Find model weights and load diffusers pipelines, loudly.

Lookup order for a hub id: ``<models_dir>/<hub id>`` (an offline mirror), then the Hugging Face
cache, then (only with ``allow_download``) the hub. A model that is not there raises
``ModelNotAvailableError`` naming the id, every place looked, and the command that fetches it.
There is never a fallback to another model or another device.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from diffusion_assets.models.hashing import folder_hash
from diffusion_assets.models.presets import Preset
from diffusion_assets.paths import local_model_candidates, local_model_path
from diffusion_assets.torch_build import find_nvidia_driver, refuse_cpu_fallback


class ModelNotAvailableError(RuntimeError):
    """The weights for a model id are not on this machine (and may not be downloaded)."""


@dataclass(frozen=True)
class ModelRef:
    """One set of weights used to make an image: for the manifest."""

    role: str
    model_id: str
    path: str
    revision: str | None
    weights_hash: str


@dataclass(frozen=True)
class LoadOptions:
    device: str = "cpu"
    dtype: str = "float32"
    attention_slicing: bool = False
    vae_slicing: bool = False
    vae_tiling: bool = False
    cpu_offload: str = "none"
    compile: bool = False


def locate(
    model_id: str,
    *,
    models_dir: Path,
    project_root: Path,
    local: bool = False,
    revision: str | None = None,
    allow_download: bool = False,
) -> Path:
    """Return a local folder holding ``model_id``'s weights.

    Raises:
        ModelNotAvailableError: with the places looked and the fetch command.
    """
    if local:
        path = local_model_path(model_id, project_root, models_dir)
        if path.exists():
            return path
        looked = ", ".join(map(str, local_model_candidates(model_id, project_root, models_dir)))
        raise ModelNotAvailableError(
            f"Model folder for '{model_id}' does not exist (looked in {looked}). Fix the path, or "
            "rebuild the folder: the project's own "
            "models (shapes-tiny, shapes-captioner) are retrained as the README's 'Shapes world' section says."
        )
    mirror = models_dir / model_id
    if mirror.exists():
        return mirror
    from huggingface_hub import snapshot_download  # noqa: PLC0415
    from huggingface_hub.constants import HF_HUB_CACHE  # noqa: PLC0415

    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
    try:
        return Path(snapshot_download(model_id, revision=revision, local_files_only=True))
    except Exception as cached_miss:  # noqa: BLE001 - any miss is reported below with the fix
        reason = cached_miss
    if allow_download and not offline:
        try:
            return Path(snapshot_download(model_id, revision=revision))
        except Exception as download_error:  # noqa: BLE001
            reason = download_error
    raise ModelNotAvailableError(
        f"Model '{model_id}'{f' (revision {revision})' if revision else ''} is not available on this "
        f"machine.\n  Looked in: {mirror}\n  and the Hugging Face cache: {HF_HUB_CACHE}\n"
        f"  Downloads: {'disabled (HF_HUB_OFFLINE=1)' if offline else 'allowed, failed' if allow_download else 'disabled (allow_download: false)'}\n"
        f"  Fix: on a machine with network access run\n"
        f"    hf download {model_id} --local-dir {mirror}\n"
        f"  (or set the gpu resource's allow_download: true).\n  Cause: {type(reason).__name__}: {reason}"
    )


def resolve_device(device: str) -> str:
    """``auto`` → cuda, then mps, then cpu; ``cpu`` is always allowed (the way to opt out of a GPU).

    A CUDA device always comes back with its index (``auto`` / ``cuda`` → ``cuda:<current device>``),
    so what a manifest row records says which GPU made it. Which GPU a run takes on a host with
    several is ``devices.lease``'s choice, not this function's.

    Raises:
        GpuNotUsableError: ``auto`` or ``cuda…`` on a machine with an NVIDIA driver whose torch cannot
            use it (a CPU-only build, or a CUDA build the driver cannot run); the message names the
            install command of the right build (``diffusion_assets.torch_build``).
        RuntimeError: an explicit ``cuda…`` device on a machine without CUDA.
    """
    if device != "auto" and not device.startswith("cuda"):
        return device
    if torch.cuda.is_available():
        return f"cuda:{torch.cuda.current_device()}" if device in ("auto", "cuda") else device
    # 1. a GPU this torch cannot see is an error, never a quiet CPU run
    refuse_cpu_fallback(
        device, torch.__version__, torch.version.cuda, find_nvidia_driver(), _cuda_init_error()
    )
    if device != "auto":
        raise RuntimeError(
            f"device '{device}' was requested but CUDA is not available (no silent CPU fallback)"
        )
    # 2. no NVIDIA GPU here: Apple silicon, else the CPU
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _cuda_init_error() -> str | None:
    """What initialising CUDA raises in a CUDA build of torch (driver too old, no visible GPU)."""
    if torch.version.cuda is None:
        return None
    try:
        torch.cuda.init()
    except Exception as error:  # noqa: BLE001 - only its text is reported
        return f"{type(error).__name__}: {error}"
    return None


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """``auto`` → bfloat16 on CUDA, float16 on MPS, float32 on CPU."""
    if dtype == "auto":
        return {"cuda": torch.bfloat16, "mps": torch.float16}.get(device.split(":")[0], torch.float32)
    return getattr(torch, dtype)


@dataclass
class LoadedModel:
    """A pipeline (plus refiner / depth estimator) ready for the generation loop."""

    preset: Preset
    pipe: object
    device: str
    dtype: torch.dtype
    refs: dict[str, ModelRef]
    default_scheduler_config: dict
    refiner: object | None = None
    refiner_scheduler_config: dict | None = None
    depth_estimator: object | None = None
    load_seconds: float = 0.0
    loras: dict[str, str] = field(default_factory=dict)


def model_refs(
    preset: Preset, models_dir: Path, project_root: Path, allow_download: bool
) -> dict[str, ModelRef]:
    """Locate and hash every weights folder a preset uses (no model is loaded)."""
    ids = {
        "base": preset.model_id,
        "refiner": preset.refiner_id,
        "controlnet": preset.controlnet_id,
        "depth_estimator": preset.depth_estimator_id,
    }
    refs = {}
    for role, model_id in ids.items():
        if model_id is None:
            continue
        path = locate(
            model_id,
            models_dir=models_dir,
            project_root=project_root,
            local=preset.local and role == "base",
            revision=preset.revision,
            allow_download=allow_download,
        )
        refs[role] = ModelRef(role, model_id, str(path), preset.revision, folder_hash(path))
    return refs


def load_model(preset: Preset, refs: dict[str, ModelRef], options: LoadOptions) -> LoadedModel:
    """Load the pipeline(s) of ``preset`` from the folders in ``refs`` onto ``options.device``."""
    import diffusers  # noqa: PLC0415 - heavy import, only when a model is really loaded

    start = time.perf_counter()
    device = resolve_device(options.device)
    dtype = resolve_dtype(options.dtype, device)
    # 1. the base pipeline, with its ControlNet if the preset has one
    extra = {}
    if "controlnet" in refs:
        extra["controlnet"] = diffusers.ControlNetModel.from_pretrained(refs["controlnet"].path, dtype=dtype)
    pipe_cls = pipeline_class(preset.pipeline_class)
    pipe = pipe_cls.from_pretrained(refs["base"].path, dtype=dtype, **extra)
    # 2. the refiner shares the base's second text encoder and VAE (diffusers SDXL docs)
    refiner = None
    if "refiner" in refs:
        refiner = getattr(diffusers, preset.refiner_class).from_pretrained(
            refs["refiner"].path, text_encoder_2=pipe.text_encoder_2, vae=pipe.vae, dtype=dtype
        )
    depth = None
    if "depth_estimator" in refs:
        from transformers import pipeline as hf_pipeline  # noqa: PLC0415

        depth = hf_pipeline("depth-estimation", model=refs["depth_estimator"].path, device=device)
    # 3. placement and memory options
    for p in [pipe, refiner] if refiner is not None else [pipe]:
        _place(p, device, options)
    return LoadedModel(
        preset=preset,
        pipe=pipe,
        device=device,
        dtype=dtype,
        refs=refs,
        default_scheduler_config=dict(pipe.scheduler.config),
        refiner=refiner,
        refiner_scheduler_config=dict(refiner.scheduler.config) if refiner is not None else None,
        depth_estimator=depth,
        load_seconds=time.perf_counter() - start,
    )


def pipeline_class(class_name: str):
    """The class of a ``model_index.json``'s ``_class_name``: diffusers', or one of this project's."""
    import diffusers  # noqa: PLC0415

    from diffusion_assets.models.render import CUSTOM_PIPELINES  # noqa: PLC0415

    found = getattr(diffusers, class_name, None) or CUSTOM_PIPELINES.get(class_name)
    if found is None:
        raise ValueError(f"pipeline class {class_name} is neither in diffusers nor in diffusion_assets")
    return found


def _place(pipe, device: str, options: LoadOptions) -> None:
    pipe.set_progress_bar_config(disable=True)
    if options.cpu_offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif options.cpu_offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe.to(device)
    if options.attention_slicing:
        pipe.enable_attention_slicing()
    vae = getattr(pipe, "vae", None)
    if vae is not None and options.vae_slicing:
        vae.enable_slicing()
    if vae is not None and options.vae_tiling:
        vae.enable_tiling()
    if options.compile:
        for name in ("unet", "transformer"):
            if getattr(pipe, name, None) is not None:
                setattr(pipe, name, torch.compile(getattr(pipe, name)))
