"""What a captioning run asks for (``CaptionerSpec``) and the named captioners it may ask for.

Three modes share one interface (see ``captioning.captioner``):

- ``model``: a transformers image-to-text model, named by a preset, a hub id or a local folder. Hub ids
  are looked up as ``<models_dir>/<hub id>`` (the offline mirror), then in the Hugging Face cache.
- ``tiny``: the project's own shapes captioner (``models/shapes-captioner``), loaded by exactly the same
  code as ``model``; it is ``model`` with a local folder.
- ``prompt``: no model; the caption is the generation prompt, passed through a template.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from diffusion_assets.models.presets import is_local_spec

CaptionerMode = Literal["model", "tiny", "prompt"]
PromptKind = Literal["prefix", "chat"]
"""``prefix``: the prompt is the start of the caption and the model continues it (BLIP). ``chat``: the
prompt is an instruction in the processor's chat template, and the caption is the reply (SmolVLM)."""

TINY_PRESET = "shapes-captioner"


@dataclass(frozen=True)
class CaptionerPreset:
    """A named captioner: where its weights are and how it is prompted."""

    name: str
    model_id: str
    kind: PromptKind
    prompt: str
    max_new_tokens: int
    description: str
    local: bool = False
    """True when ``model_id`` is a folder relative to the project root rather than a hub id."""


CAPTIONER_PRESETS: dict[str, CaptionerPreset] = {
    p.name: p
    for p in [
        CaptionerPreset(
            name="blip-base",
            model_id="Salesforce/blip-image-captioning-base",
            kind="prefix",
            prompt="a",
            max_new_tokens=30,
            description="BLIP base (Li et al. 2022), COCO captions: short, one clause.",
        ),
        CaptionerPreset(
            name="blip-large",
            model_id="Salesforce/blip-image-captioning-large",
            kind="prefix",
            prompt="a",
            max_new_tokens=30,
            description="BLIP large: the captioner kohya_ss and most LoRA guides use.",
        ),
        CaptionerPreset(
            name="smolvlm-256m",
            model_id="HuggingFaceTB/SmolVLM-256M-Instruct",
            kind="chat",
            prompt="Describe this image in one sentence.",
            max_new_tokens=60,
            description="SmolVLM 256M instruct (Idefics3 architecture, native in transformers): "
            "a small vision-language model, one-sentence descriptions.",
        ),
        CaptionerPreset(
            name=TINY_PRESET,
            model_id=f"models/{TINY_PRESET}",
            kind="prefix",
            prompt="a",
            max_new_tokens=20,
            description="The project's tiny BLIP trained on the shapes world (CPU minutes); exact captions "
            "with style trigger phrases.",
            local=True,
        ),
    ]
}


class CaptionerSpec(BaseModel):
    """How to caption a set of images. Every field ends up in the caption manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: CaptionerMode = Field("model", description="`model`, `tiny` (the shapes captioner) or `prompt`.")
    model: str | None = Field(
        None,
        description="model/tiny: a preset name, a hub id, or a local folder starting with ./ ../ / or ~ "
        f"(relative to the project root). tiny defaults to `{TINY_PRESET}`.",
    )
    prompt: str | None = Field(
        None,
        description="Text given to the model: BLIP's caption prefix or a VLM's instruction. "
        "Unset: the preset's.",
    )
    template: str = Field(
        "{prompt}",
        description="prompt mode: the caption, with `{prompt}` and any manifest field, e.g. "
        "`{prompt}, {entry_id}`.",
    )
    max_new_tokens: int | None = Field(None, gt=0, le=512, description="Unset: the preset's (30 for BLIP).")
    batch_size: int = Field(8, gt=0, le=1024, description="Images per generate call.")
    device: str = Field(
        "auto", description="`auto`, `cpu`, `cuda`, `cuda:1`, `mps`; never a silent fallback."
    )
    dtype: str = Field("auto", description="`auto` (bfloat16 on CUDA, float32 on CPU) or a torch dtype name.")
    revision: str | None = Field(None, description="Hub revision of the model (hub ids only).")
    allow_download: bool = Field(False, description="Let a hub id missing locally be downloaded.")

    @model_validator(mode="after")
    def _check_mode(self) -> CaptionerSpec:
        if self.mode == "model" and not self.model:
            raise ValueError(
                f"mode 'model' needs `model`: one of {sorted(CAPTIONER_PRESETS)}, a hub id or a local folder"
            )
        if (
            self.mode == "tiny"
            and self.model
            and not (is_local_spec(self.model) or self.model == TINY_PRESET)
        ):
            raise ValueError(f"mode 'tiny' takes `{TINY_PRESET}` or a local folder, not {self.model!r}")
        if self.mode == "prompt":
            if self.model:
                raise ValueError("mode 'prompt' uses no model; remove `model` or use mode 'model'")
            template_fields(self.template)  # raises on a malformed template
        return self


def template_fields(template: str) -> list[str]:
    """The field names a caption template uses, e.g. ``["prompt", "entry_id"]``.

    Raises:
        ValueError: the template is not a valid ``str.format`` template, or uses positional fields.
    """
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        raise ValueError(f"caption template {template!r} is malformed: {error}") from error
    bad = [n for n in names if not n or n.isdigit()]
    if bad:
        raise ValueError(f"caption template {template!r} must name its fields, e.g. '{{prompt}}'")
    return list(dict.fromkeys(n.split(".")[0].split("[")[0] for n in names))


def resolve_preset(spec: CaptionerSpec) -> CaptionerPreset | None:
    """The preset a spec names, or None for a hub id or folder given directly (and for prompt mode)."""
    if spec.mode == "prompt":
        return None
    name = spec.model or TINY_PRESET
    return CAPTIONER_PRESETS.get(name)
