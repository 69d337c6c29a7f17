"""The LoRA dataset spec: one YAML file in ``lora_datasets/`` is one ``DatasetSpec``.

Field descriptions here are the reference documentation of the spec format. Unknown fields are
errors (``extra="forbid"``), so a typo never silently falls back to a default. ``load.load_spec``
adds the checks that span fields and turns every problem into one named error.
"""

from __future__ import annotations

import re
from datetime import date as _date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from diffusion_assets.models.presets import PRESETS, is_local_spec, unknown_preset_message

DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
TEMPLATE_FIELDS = ("caption", "prompt", "trigger", "entry_id", "catalog")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """Generation partitions to draw images from."""

    catalog: str = Field(pattern=NAME_PATTERN, description="A catalog name (a file stem in prompts/).")
    dates: Literal["all"] | list[str] = Field(
        "all",
        description="`all` (every date partition generated so far) or a list of YYYY-MM-DD dates.",
    )
    prior: bool = Field(
        False,
        description="Regularisation images (DreamBooth-style prior preservation): captioned without the "
        "trigger (no word or phrase is added, `{trigger}` in the template is empty); the trigger check "
        "fails if one of their captions contains it.",
    )

    @field_validator("dates", mode="before")
    @classmethod
    def _yaml_dates(cls, value):
        # the project's reader keeps 2026-11-28 as text; a mapping from yaml.safe_load holds a date object
        if isinstance(value, list):
            return [v.isoformat() if isinstance(v, _date) else v for v in value]
        return value

    @field_validator("dates")
    @classmethod
    def _real_dates(cls, value):
        if value == "all":
            return value
        if not value:
            raise ValueError("list at least one date, or write `dates: all`")
        for text in value:
            if not isinstance(text, str) or not re.match(DATE_PATTERN, text):
                raise ValueError(f"{text!r} is not a YYYY-MM-DD date")
            try:
                _date.fromisoformat(text)
            except ValueError as exc:  # 2026-02-30: the right shape, but no such day
                raise ValueError(f"{text!r} is not a date that exists ({exc})") from None
        return sorted(set(value))


class Filters(_Strict):
    dedup_max_distance: int | None = Field(
        None,
        ge=0,
        le=64,
        description="Drop near-duplicates: images whose 64-bit perceptual hash (imagehash.phash) is within "
        "this Hamming distance of an earlier image (catalog order in the spec, then date, then manifest "
        "order). 0 drops only identical hashes; null disables.",
    )
    min_caption_score: float | None = Field(
        None,
        description="Keep images whose caption manifest `score` is at least this; null disables. Needs a "
        "captioner that writes scores.",
    )
    entries: list[str] | None = Field(
        None,
        min_length=1,
        description="Entry-id globs (fnmatch, e.g. `grid[*shape=circle*]`) to include; null keeps every entry.",
    )


class Captions(_Strict):
    source: Literal["captioner", "prompt"] = Field(
        description="`captioner`: the caption manifest (materialize captions first); `prompt`: the generation prompt."
    )
    template: str | None = Field(
        None,
        description="Format string for the final caption, e.g. `a drawing of {caption}`. Fields: "
        + ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
        + ". Null uses the caption as is.",
    )


class Trigger(_Strict):
    word: str | None = Field(None, description="The rare token that names the style (DreamBooth's `sks`).")
    placement: Literal["prefix", "suffix", "none"] = Field(
        "none", description="Where to add the trigger to captions that do not already contain the word."
    )
    phrase: str | None = Field(
        None,
        description="Text to add instead of the bare word, e.g. `in sks outline style`; must contain the word.",
    )


class Split(_Strict):
    validation_fraction: float = Field(
        0.1, ge=0, le=0.5, description="Share of images held out; chosen by hashing (seed, image_id)."
    )
    seed: int = Field(0, ge=0, description="Changes which images are held out.")


class Evaluation(_Strict):
    """Thresholds the adapter's blocking evaluation check applies (adapter minus base model)."""

    min_style_gain: float | None = Field(
        0.2,
        description="Least increase of the style rate (the shapes checker's), weight 1 vs 0 on trigger "
        "prompts; null for datasets without an analytic style (e.g. photographs).",
    )
    min_clip_t_gain: float | None = Field(
        -0.02,
        description="Least change of CLIP-T in cosine units (CLIP-T / 100), weight 1 vs 0 on trigger "
        "prompts; negative allows a small drop; null disables.",
    )
    max_leakage: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Most leakage allowed: the fraction of no-trigger images at weight 1 in which the "
        "shapes checker reads anything (style, colour, shape, background) other than at weight 0; "
        "null disables.",
    )


class Training(_Strict):
    """Defaults for the LoRA trainer; a run's config may override them."""

    base_model: str = Field(
        "shapes-tiny",
        description="A preset name (see `diffusion-assets presets`) or a local diffusers folder starting with "
        "./ ../ / or ~ (relative to the spec file).",
    )
    rank: int = Field(8, gt=0, le=1024, description="LoRA rank r.")
    alpha: float = Field(8, gt=0, description="LoRA alpha; the update is scaled by alpha / rank.")
    target_modules: list[str] | None = Field(
        None,
        min_length=1,
        description="Module names that get adapters; null takes the model family's "
        "attention projections (to_q, to_k, to_v, to_out.0 for SD UNets).",
    )
    learning_rate: float = Field(1e-3, gt=0, le=1, description="AdamW learning rate.")
    steps: int = Field(300, gt=0, description="Optimizer steps.")
    batch_size: int = Field(8, gt=0, description="Images per step.")
    seed: int = Field(0, ge=0, description="Seeds adapter init, noise and timesteps.")
    mixed_precision: Literal["no", "bf16", "fp16"] = Field("no", description="Autocast dtype on GPU.")
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory (large models).")
    min_snr_gamma: float | None = Field(
        None, gt=0, description="Min-SNR loss weighting (Hang et al. 2023), typically 5; null disables."
    )
    checkpoint_every: int = Field(
        100, ge=0, description="Checkpoint period in steps; 0 saves only at the end."
    )
    validation_every: int = Field(
        0, ge=0, description="Sample the validation prompts every this many steps; 0 never."
    )
    validation_prompts: list[str] = Field(
        default_factory=list, description="Prompts sampled during training to watch the style appear."
    )
    options: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="Other trainer fields (e.g. lr_warmup_steps, weight_decay, latents), passed through "
        "unchanged; checked against the trainer's config when the spec loads. Fields the spec has a place "
        "for (training.rank, resolution, ...) are set there, not here.",
    )

    def trainer_fields(self, resolution: int) -> dict:
        """Keyword arguments for the trainer's config: every field but ``base_model``, plus ``options``."""
        fields = self.model_dump(exclude={"base_model", "options"})
        fields["target_modules"] = tuple(self.target_modules) if self.target_modules else None
        fields["validation_prompts"] = tuple(self.validation_prompts)
        return {**fields, "resolution": resolution, **self.options}

    @field_validator("base_model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if not is_local_spec(value) and value not in PRESETS:
            raise ValueError(unknown_preset_message(value))
        return value


class DatasetSpec(_Strict):
    description: str = Field("", description="Shown in the dataset card and the UI.")
    sources: list[Source] = Field(min_length=1, description="Generation partitions to draw images from.")
    filters: Filters = Field(default_factory=Filters)
    captions: Captions
    trigger: Trigger = Field(default_factory=Trigger)
    split: Split = Field(default_factory=Split)
    resolution: int = Field(
        gt=0, le=4096, description="Images are center-cropped square and resized to resolution² (LANCZOS)."
    )
    evaluation: Evaluation = Field(default_factory=Evaluation)
    training: Training = Field(default_factory=Training)
    auto_train: bool = Field(
        False,
        description="true: whenever this dataset gets a new version, Dagster's automation trains its adapter "
        "and then evaluates it (GPU runs that start by themselves). false: launch `train_lora` yourself.",
    )

    def version_content(self) -> dict:
        """What shapes the dataset's files; ``training``, ``evaluation``, ``description`` and
        ``auto_train`` do not, so editing them never rebuilds (copies) the images."""
        return self.model_dump(mode="json", exclude={"training", "evaluation", "description", "auto_train"})
