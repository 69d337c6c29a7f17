"""Model presets: what a catalog's ``model:`` names, and what each one loads.

A preset maps a short name to diffusers pipeline classes, hub ids and defaults. Hub ids are first
looked up as ``<models_dir>/<hub id>`` (an offline mirror, e.g. ``models/stabilityai/...``), then in
the Hugging Face cache or hub (see ``models.loading``). A catalog may also name any local
diffusers folder instead of a preset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from difflib import get_close_matches
from pathlib import Path
from typing import Literal

Family = Literal["sd", "sdxl", "flux", "render"]
GuidanceKind = Literal["cfg", "distilled", "none"]
ControlPreprocess = Literal["canny", "depth", "none"]


@dataclass(frozen=True)
class Preset:
    """A named model recipe. Defaults apply where a catalog leaves a field unset."""

    name: str
    family: Family
    pipeline_class: str
    model_id: str
    description: str
    steps: int
    guidance: float
    width: int
    height: int
    guidance_kind: GuidanceKind = "cfg"
    """``cfg``: classifier-free guidance with a negative prompt; ``distilled``: Flux-dev's guidance
    embedding (no negative prompt); ``none``: guidance is ignored (Flux-schnell), must be 0."""
    size_multiple: int = 8
    max_sequence_length: int | None = None
    refiner_id: str | None = None
    refiner_class: str | None = None
    refiner_switch: float | None = None
    controlnet_id: str | None = None
    control_preprocess: ControlPreprocess | None = None
    controlnet_scale: float | None = None
    depth_estimator_id: str | None = None
    revision: str | None = None
    local: bool = False
    """True when ``model_id`` is a folder path rather than a hub id."""


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            name="sd15",
            family="sd",
            pipeline_class="StableDiffusionPipeline",
            model_id="stable-diffusion-v1-5/stable-diffusion-v1-5",
            description="Stable Diffusion 1.5, 512², 30 steps, CFG 7.5.",
            steps=30,
            guidance=7.5,
            width=512,
            height=512,
        ),
        Preset(
            name="sdxl-base",
            family="sdxl",
            pipeline_class="StableDiffusionXLPipeline",
            model_id="stabilityai/stable-diffusion-xl-base-1.0",
            description="SDXL 1.0 base, 1024², 30 steps, CFG 5.",
            steps=30,
            guidance=5.0,
            width=1024,
            height=1024,
        ),
        Preset(
            name="sdxl-base+refiner",
            family="sdxl",
            pipeline_class="StableDiffusionXLPipeline",
            model_id="stabilityai/stable-diffusion-xl-base-1.0",
            description="SDXL base for the first 80 % of 40 steps, then the refiner on latents "
            "(ensemble of expert denoisers: denoising_end / denoising_start).",
            steps=40,
            guidance=5.0,
            width=1024,
            height=1024,
            refiner_id="stabilityai/stable-diffusion-xl-refiner-1.0",
            refiner_class="StableDiffusionXLImg2ImgPipeline",
            refiner_switch=0.8,
        ),
        Preset(
            name="flux-schnell",
            family="flux",
            pipeline_class="FluxPipeline",
            model_id="black-forest-labs/FLUX.1-schnell",
            description="FLUX.1 [schnell], timestep-distilled: 4 steps, no guidance, no negative prompt.",
            steps=4,
            guidance=0.0,
            width=1024,
            height=1024,
            guidance_kind="none",
            size_multiple=16,
            max_sequence_length=256,
        ),
        Preset(
            name="flux-dev",
            family="flux",
            pipeline_class="FluxPipeline",
            model_id="black-forest-labs/FLUX.1-dev",
            description="FLUX.1 [dev], guidance-distilled: 28 steps, guidance 3.5 is an embedding, not CFG.",
            steps=28,
            guidance=3.5,
            width=1024,
            height=1024,
            guidance_kind="distilled",
            size_multiple=16,
            max_sequence_length=512,
        ),
        Preset(
            name="sdxl+controlnet-canny",
            family="sdxl",
            pipeline_class="StableDiffusionXLControlNetPipeline",
            model_id="stabilityai/stable-diffusion-xl-base-1.0",
            description="SDXL base guided by Canny edges of the entry's control_image.",
            steps=30,
            guidance=5.0,
            width=1024,
            height=1024,
            controlnet_id="diffusers/controlnet-canny-sdxl-1.0",
            control_preprocess="canny",
            controlnet_scale=0.5,
        ),
        Preset(
            name="sdxl+controlnet-depth",
            family="sdxl",
            pipeline_class="StableDiffusionXLControlNetPipeline",
            model_id="stabilityai/stable-diffusion-xl-base-1.0",
            description="SDXL base guided by a depth map estimated from the entry's control_image.",
            steps=30,
            guidance=5.0,
            width=1024,
            height=1024,
            controlnet_id="diffusers/controlnet-depth-sdxl-1.0",
            control_preprocess="depth",
            controlnet_scale=0.5,
            depth_estimator_id="Intel/dpt-hybrid-midas",
        ),
        Preset(
            name="shapes-tiny",
            family="sd",
            pipeline_class="StableDiffusionPipeline",
            model_id="models/shapes-tiny",
            description="The project's own 32² text-to-image model of the shapes world (trained on CPU).",
            steps=20,
            guidance=2.0,
            width=32,
            height=32,
            local=True,
        ),
        Preset(
            name="shapes-render",
            family="render",
            pipeline_class="ShapesRenderPipeline",
            model_id="models/shapes-render",
            description="The shapes world's exact renderer (no weights): ground-truth images, e.g. for "
            "LoRA style datasets.",
            steps=1,
            guidance=0.0,
            width=32,
            height=32,
            guidance_kind="none",
            local=True,
        ),
    ]
}

_FAMILY_BY_CLASS: dict[str, Family] = {
    "StableDiffusionPipeline": "sd",
    "StableDiffusionControlNetPipeline": "sd",
    "StableDiffusionXLPipeline": "sdxl",
    "StableDiffusionXLControlNetPipeline": "sdxl",
    "FluxPipeline": "flux",
    "ShapesRenderPipeline": "render",
}


def unknown_preset_message(name: str) -> str:
    """``unknown model preset 'sdxl-bse' (did you mean sdxl-base?)``: the closest preset name by
    ``difflib`` similarity, when one is close enough."""
    close = get_close_matches(name, PRESETS, n=1, cutoff=0.6) or get_close_matches(
        name.lower(), PRESETS, n=1, cutoff=0.6
    )
    guess = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown model preset '{name}'{guess}"


def is_local_spec(spec: str) -> bool:
    """A model spec that is a folder path (``./x``, ``../x``, ``/x``, ``~/x``) rather than a preset."""
    return spec.startswith(("./", "../", "/", "~"))


def preset_for_folder(folder: Path) -> Preset:
    """Describe a local diffusers folder as a preset, from its ``model_index.json``.

    Raises:
        ValueError: the folder has no ``model_index.json`` or its pipeline class is not supported.
    """
    index = folder / "model_index.json"
    if not index.is_file():
        raise ValueError(f"{folder} is not a diffusers pipeline folder: it has no model_index.json")
    try:
        class_name = json.loads(index.read_text())["_class_name"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{index} cannot be read as a diffusers model index (needs a `_class_name`): {exc!r}"
        ) from exc
    family = _FAMILY_BY_CLASS.get(class_name)
    if family is None:
        supported = ", ".join(sorted(_FAMILY_BY_CLASS))
        raise ValueError(f"{folder}: pipeline class {class_name} is not supported (supported: {supported})")
    base = {
        "sd": PRESETS["sd15"],
        "sdxl": PRESETS["sdxl-base"],
        "flux": PRESETS["flux-dev"],
        "render": PRESETS["shapes-render"],
    }[family]
    size = _native_size(folder) or base.width
    guidance_kind, guidance = base.guidance_kind, base.guidance
    if family == "flux" and not _read_config(folder / "transformer").get("guidance_embeds", True):
        guidance_kind, guidance = "none", 0.0
    return replace(
        base,
        width=size,
        height=size,
        guidance_kind=guidance_kind,
        guidance=guidance,
        name=str(folder),
        pipeline_class=class_name,
        model_id=str(folder),
        description=f"Local diffusers folder {folder}",
        local=True,
        controlnet_id=None,
        control_preprocess=None,
    )


def _read_config(component: Path) -> dict:
    path = component / "config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _native_size(folder: Path) -> int | None:
    """The image size a folder's denoiser was configured for: sample_size × the VAE's scale."""
    unet, vae = _read_config(folder / "unet"), _read_config(folder / "vae")
    if "sample_size" not in unet or "block_out_channels" not in vae:
        return None  # e.g. Flux: a transformer's sample_size is not the image size
    sample = unet["sample_size"]
    sample = sample[0] if isinstance(sample, list) else sample
    return int(sample) * 2 ** (len(vae["block_out_channels"]) - 1)
