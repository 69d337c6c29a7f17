"""What a LoRA training run is asked to do (``LoraTrainConfig``) and where its inputs came from
(``LoraLineage``).

The config is a strict pydantic model (unknown fields are errors) whose every field ends up in the
adapter's safetensors header and its manifest row, so nothing about a trained adapter is implied by a
default that might change later. The Dagster layer can wrap it in a ``dg.Config`` field by field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MixedPrecision = Literal["no", "bf16", "fp16"]
LatentMode = Literal["mean", "sample"]


class LoraTrainConfig(BaseModel):
    """Hyperparameters of one LoRA run (Hu et al. 2021) on a frozen diffusers base model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rank: int = Field(8, gt=0, le=1024, description="LoRA rank r: inner dimension of lora_A/lora_B.")
    alpha: float = Field(8.0, gt=0, description="LoRA alpha; the update is scaled by alpha / rank.")
    learning_rate: float = Field(1e-4, gt=0, description="AdamW learning rate after warm-up.")
    lr_warmup_steps: int = Field(0, ge=0, description="Linear warm-up steps, then a constant rate.")
    weight_decay: float = Field(1e-2, ge=0, description="AdamW weight decay (diffusers' example default).")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient-norm clip per step.")
    steps: int = Field(500, gt=0, description="Optimizer steps in total (not epochs).")
    batch_size: int = Field(4, gt=0, description="Images per step.")
    resolution: int = Field(512, gt=0, description="Square training side in pixels (resize + centre crop).")
    seed: int = Field(0, ge=0, description="Derives LoRA init, batch order, noise and timesteps.")
    mixed_precision: MixedPrecision = Field(
        "no", description="Dtype of the frozen weights; LoRA weights and optimizer state stay float32."
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in backward to save memory."
    )
    min_snr_gamma: float | None = Field(
        None, gt=0, description="Min-SNR-gamma loss weighting (Hang et al. 2023), e.g. 5; None for plain MSE."
    )
    latents: LatentMode = Field(
        "mean",
        description="Cached VAE latents: the posterior mean (deterministic), or a fresh sample from the cached "
        "posterior each step (the training generator's noise, as diffusers' example re-encodes).",
    )
    target_modules: tuple[str, ...] | None = Field(
        None, description="Module names to adapt; None takes the family's attention projections."
    )
    max_sequence_length: int | None = Field(
        None,
        gt=0,
        le=512,
        description="Flux only: T5 tokens of captions and validation prompts; None keeps the pipeline's 512.",
    )
    checkpoint_every: int = Field(100, ge=0, description="Checkpoint period in steps; 0 only at the end.")
    validation_every: int = Field(0, ge=0, description="Validation-image period in steps; 0 never.")
    validation_prompts: tuple[str, ...] = Field((), description="Prompts rendered at each validation.")
    validation_seeds: tuple[int, ...] = Field((0,), description="One image per (prompt, seed).")
    validation_steps: int = Field(20, gt=0, description="Denoising steps of validation images.")
    validation_guidance: float | None = Field(None, ge=0, description="Guidance; None keeps the pipeline's.")
    lora_scale: float = Field(1.0, description="Adapter weight used for validation images.")

    @model_validator(mode="after")
    def _check(self) -> LoraTrainConfig:
        if self.validation_every and not self.validation_prompts:
            raise ValueError("validation_every > 0 needs at least one validation_prompts entry")
        if self.resolution % 8:
            raise ValueError(f"resolution {self.resolution} must be a multiple of 8 (the VAE's factor)")
        return self

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): written to the header and hashed into ids."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def training_hash(self, *, include_steps: bool = True) -> str:
        """sha256 of the fields that change the trained weights (validation and checkpoint fields excluded).

        A checkpoint records it without ``steps`` (the rate is constant after warm-up, so a run may be
        extended), and a resume with a different recipe fails instead of mixing two runs.
        """
        excluded = {n for n in type(self).model_fields if n.startswith("validation_")}
        excluded |= {"lora_scale", "checkpoint_every"} | (set() if include_steps else {"steps"})
        fields = self.model_dump(mode="json", exclude=excluded)
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class LoraLineage:
    """Where the training inputs came from: written to the header and the adapters manifest."""

    dataset: str
    """Dataset name, e.g. ``outline-style``; the adapters manifest's Hive key."""
    dataset_version: str
    """Version (or content hash) of the dataset folder; part of the latent cache key."""
    base_model_id: str
    """Hub id, preset or folder of the base model."""
    trigger_word: str | None = None
    base_weights_hash: str | None = None
    """``models.hashing.folder_hash`` of the base folder; computed when None."""
    dagster_run_id: str | None = None
    tag_frequency: dict[str, int] | None = field(default=None)
    """Caption tag counts; computed from the training captions when None."""

    def to_dict(self) -> dict:
        return asdict(self)


def adapter_id(config: LoraTrainConfig, lineage: LoraLineage, base_weights_hash: str) -> str:
    """The adapter's id: sha256[:20] of its recipe (dataset version, base weights, training config).

    A recipe hash rather than the file's hash because the file holds wall-clock timestamps and is written
    after the id is needed (the id is in its own header); the manifest keeps the file's sha256 beside it.
    Retraining the same recipe gives the same id, so the manifest row is replaced, not duplicated.
    """
    recipe = {
        "dataset": lineage.dataset,
        "dataset_version": lineage.dataset_version,
        "base_weights_hash": base_weights_hash,
        "trigger_word": lineage.trigger_word,
        "training": config.training_hash(),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:20]
