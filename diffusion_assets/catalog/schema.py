"""The prompt catalog schema: one YAML file in ``prompts/`` is one ``Catalog``.

Field descriptions here are the reference documentation of the catalog format (see README).
Unknown fields are errors (``extra="forbid"``), so a typo never silently falls back to a default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SchedulerName = Literal[
    "default",
    "euler",
    "euler_a",
    "dpmpp_2m",
    "dpmpp_2m_karras",
    "ddim",
    "pndm",
    "lms",
    "heun",
    "unipc",
    "flow_match_euler",
]


MAX_IMAGES_DEFAULT = 10_000
"""Images per partition (catalog × date) unless a catalog raises its own ``max_images``."""
MAX_IMAGES_LIMIT = 1_000_000
"""The most a catalog's ``max_images`` may allow (its jobs and manifest rows are held in memory)."""


class _Strict(BaseModel):
    # NaN and infinity are never a setting (`guidance: .inf` would pass `ge=0`)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LoraRef(_Strict):
    path: str = Field(
        description="A LoRA .safetensors file (diffusers or kohya keys), relative to the catalog."
    )
    scale: float = Field(1.0, description="Adapter weight; 0 disables it.")


class GenerationParams(_Strict):
    """Parameters a catalog sets as ``defaults`` and an entry may override. Unset means: take the
    catalog default, then the model preset's default."""

    model: str | None = Field(
        None,
        description="A preset name (see `diffusion-assets presets`) or a local diffusers folder "
        "starting with ./ ../ / or ~ (relative paths are relative to the catalog file).",
    )
    scheduler: SchedulerName | None = Field(None, description="Sampler; `default` keeps the model's own.")
    steps: int | None = Field(None, gt=0, le=1000, description="Denoising steps, a positive integer.")
    guidance: float | None = Field(
        None, ge=0, description="CFG scale (SD/SDXL), the guidance embedding (Flux-dev), or 0 (Flux-schnell)."
    )
    true_cfg_scale: float | None = Field(
        None, ge=1, description="Flux only: real CFG with the negative prompt (doubles the cost)."
    )
    width: int | None = Field(None, gt=0, le=4096, description="Image width in pixels, a multiple of 8.")
    height: int | None = Field(None, gt=0, le=4096, description="Image height in pixels, a multiple of 8.")
    negative_prompt: str | None = Field(None, description="What to steer away from (CFG models only).")
    images_per_prompt: int | None = Field(None, gt=0, le=10_000, description="Samples per (expanded) entry.")
    refiner_switch: float | None = Field(
        None, gt=0, lt=1, description="SDXL+refiner: fraction of steps done by the base model."
    )
    control_image: str | None = Field(None, description="ControlNet source image, relative to the catalog.")
    controlnet_scale: float | None = Field(None, ge=0, description="controlnet_conditioning_scale.")
    lora: LoraRef | None = Field(None, description="An adapter to apply while generating.")


class Entry(GenerationParams):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Stable id: never reuse or rename.")
    prompt: str = Field(min_length=1, description="The prompt; {name} placeholders expand from variables.")
    seed: int | None = Field(None, ge=0, description="Overrides the catalog's base seed for this entry.")
    variables: dict[str, list[str]] | None = Field(
        None, description="Template variables for this entry (override the catalog's)."
    )


class Catalog(_Strict):
    description: str = Field("", description="Shown in the UI and the lineage audit.")
    seed: int = Field(0, ge=0, description="Base seed; every image's seed derives from it.")
    vary_seed_by_date: bool = Field(
        True, description="New seeds for each date partition; false repeats the same images every night."
    )
    schedule: Literal["daily"] | None = Field(
        None, description="`daily`: the nightly schedule materializes this catalog."
    )
    variables: dict[str, list[str]] = Field(
        default_factory=dict, description="Template variables: each {name} expands to every value."
    )
    max_images: int = Field(
        MAX_IMAGES_DEFAULT,
        gt=0,
        le=MAX_IMAGES_LIMIT,
        description="Cap on images per partition: the sum over entries of (product of the lengths of the "
        "variables its templates use) × images_per_prompt, computed without expanding. Raise it here for a "
        f"bigger grid (at most {MAX_IMAGES_LIMIT:,}).",
    )
    allow_truncated_prompts: bool = Field(
        False,
        description="false: a prompt or negative prompt longer than the model's text encoder reads (77 CLIP "
        "tokens for SD/SDXL, 256/512 T5 tokens for Flux) is an error; true: it generates, cut to what the "
        "encoder reads, and `validate` warns; the manifest records the token counts either way.",
    )
    defaults: GenerationParams = Field(default_factory=GenerationParams)
    entries: list[Entry] = Field(min_length=1, description="The prompts.")
