"""Typed training configuration for the ``shapes-tiny`` models, with a full and a quick preset.

Every field ends up in ``training_config.json`` next to the weights, so a folder says how it was made.
Training length is counted in optimiser steps, never in seconds, so a seed fixes the result.
"""

from __future__ import annotations

import ast
from dataclasses import asdict, dataclass, field, replace


@dataclass(frozen=True)
class VaeConfig:
    """A tiny ``AutoencoderKL``: two halvings (32x32 RGB -> 8x8x4 latents).

    Factor 4 rather than Stable Diffusion's 8 keeps 2-pixel outlines and stripes readable; it makes the
    UNet five times cheaper per step than factor 2 (16x16 latents), measured on 1 CPU thread.
    """

    block_out_channels: tuple[int, ...] = (16, 32, 32)
    layers_per_block: int = 1
    latent_channels: int = 4
    norm_num_groups: int = 8
    n_images: int = 8192
    steps: int = 2000
    batch_size: int = 32
    lr: float = 4e-3
    kl_weight: float = 1e-6
    latent_std: float = 1.0
    """Std of the scaled latents the UNet sees; above 1 it raises the SNR of every timestep by its square,
    the resolution shift of "simple diffusion" (Hoogeboom et al. 2023) for latents far smaller than the
    64x64 grid Stable Diffusion's betas were tuned for."""
    eval_per_combo: int = 2
    """Reconstructions scored per (combo, style): 2 x 162 images."""
    log_every: int = 25


@dataclass(frozen=True)
class ClipConfig:
    """A tiny ``CLIPModel`` (text and vision towers) trained contrastively on the world."""

    hidden_size: int = 64
    intermediate_size: int = 128
    text_layers: int = 2
    vision_layers: int = 2
    heads: int = 2
    patch_size: int = 4
    projection_dim: int = 64
    n_images: int = 8192
    steps: int = 2000
    batch_size: int = 64
    lr: float = 2e-3
    eval_per_caption: int = 2
    """Retrieval queries per caption: 2 x 162 images."""
    log_every: int = 25


@dataclass(frozen=True)
class UnetConfig:
    """A tiny ``UNet2DConditionModel`` on 8x8 latents, cross-attending to the CLIP text tower.

    The schedule follows Lin et al. 2023 ("Common Diffusion Noise Schedules and Sample Steps are
    Flawed"): zero-terminal-SNR betas, v-prediction (Salimans & Ho 2022), trailing timesteps.
    """

    block_out_channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = 1
    attention_heads: int = 4
    n_images: int = 9000
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 100
    ema_decay: float = 0.999
    cond_dropout: float = 0.1
    """Probability of training on the empty prompt, for classifier-free guidance (Ho & Salimans 2022)."""
    train_text_encoder: bool = False
    """False: freeze the contrastive text tower and cache its embeddings (fast); True: fine-tune it."""
    text_lr: float = 1e-4
    min_snr_gamma: float | None = None
    """Min-SNR-gamma loss weighting (Hang et al. 2023); None trains on the plain v-prediction MSE."""
    beta_schedule: str = "scaled_linear"
    beta_start: float = 0.00085
    beta_end: float = 0.012
    """Stable Diffusion's betas; Ho et al. 2020 use 1e-4 and 0.02 with the ``linear`` schedule."""
    prediction_type: str = "v_prediction"
    """``v_prediction`` (Salimans & Ho 2022) or ``epsilon`` (Ho et al. 2020); the theory report compares them."""
    zero_terminal_snr: bool = True
    """Rescale the betas so that SNR(T) = 0 (Lin et al. 2023, Alg. 1)."""
    timestep_spacing: str = "trailing"
    """Sampling timesteps: ``trailing`` starts at t = T (Lin et al. 2023, Sec. 3.3); ``leading`` is SD's."""
    log_every: int = 25


@dataclass(frozen=True)
class TrainConfig:
    """All stages of ``train_shapes_tiny``."""

    seed: int = 0
    device: str = "cpu"
    threads: int = 1
    """Torch CPU threads. 1, not 2: on our shared 2-core machines, 2 threads measured 6-10x slower per step."""
    vae: VaeConfig = field(default_factory=VaeConfig)
    clip: ClipConfig = field(default_factory=ClipConfig)
    unet: UnetConfig = field(default_factory=UnetConfig)
    eval_n: int = 64
    eval_steps: int = 20
    eval_guidance: float = 2.0

    @classmethod
    def full(cls) -> TrainConfig:
        """The shipped recipe (about 20 CPU minutes on 2 cores)."""
        return cls()

    @classmethod
    def quick(cls) -> TrainConfig:
        """A few seconds of each stage: checks the mechanics, not the quality."""
        return cls(
            vae=replace(VaeConfig(), n_images=256, steps=20, batch_size=8, eval_per_combo=1, log_every=4),
            clip=replace(
                ClipConfig(), n_images=256, steps=15, batch_size=16, eval_per_caption=1, log_every=3
            ),
            unet=replace(UnetConfig(), n_images=256, steps=30, batch_size=8, warmup_steps=5, log_every=5),
            eval_n=4,
            eval_steps=4,
        )

    def to_dict(self) -> dict:
        """A JSON-ready dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Inverse of ``to_dict`` (e.g. a shipped ``training_config.json``), lists back to tuples."""

        def section(kind: type, values: dict) -> object:
            return kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

        parts = {"vae": VaeConfig, "clip": ClipConfig, "unet": UnetConfig}
        return cls(**{k: section(parts[k], v) if k in parts else v for k, v in data.items()})

    def with_overrides(self, assignments: list[str]) -> TrainConfig:
        """Apply ``"section.field=value"`` strings (value as a Python literal), e.g. ``"unet.steps=6000"``."""
        config = self
        for assignment in assignments:
            key, _, text = assignment.partition("=")
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                value = text  # bare words such as cpu or linear
            section, _, name = key.strip().rpartition(".")
            if section:
                part = getattr(config, section)
                if name not in part.__dataclass_fields__:
                    raise KeyError(
                        f"{section} has no field {name!r}; fields: {sorted(part.__dataclass_fields__)}"
                    )
                config = replace(config, **{section: replace(part, **{name: value})})
            elif name in config.__dataclass_fields__:
                config = replace(config, **{name: value})
            else:
                raise KeyError(f"TrainConfig has no field {name!r}; use e.g. 'unet.steps=6000'")
        return config
