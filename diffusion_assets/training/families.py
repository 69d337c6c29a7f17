"""What differs between model families in LoRA training: targets, text conditioning, the loss.

- **sd** (``StableDiffusionPipeline``) and **sdxl** (``StableDiffusionXLPipeline``): a UNet with
  ``to_q, to_k, to_v, to_out.0`` attention projections; DDPM noising (Ho et al. 2020) with an epsilon or
  v target (Salimans & Ho 2022) as the base scheduler's ``prediction_type`` says. SDXL adds its second
  text encoder's pooled embedding and the size/crop ``add_time_ids`` (Podell et al. 2023, sec. 2.2).
- **flux** (``FluxPipeline``): a transformer whose joint-attention blocks add ``add_q/k/v_proj`` and
  ``to_add_out`` for the text stream; rectified-flow noising ``x_t = (1 - s) x + s n`` with velocity
  target ``n - x`` (Esser et al. 2024), on 2x2-packed latents.

Text conditioning comes from the pipeline's own ``encode_prompt``, so cached embeddings are exactly what
inference computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from diffusers import DDPMScheduler, FlowMatchEulerDiscreteScheduler

FamilyName = Literal["sd", "sdxl", "flux"]

UNET_ATTENTION = ("to_q", "to_k", "to_v", "to_out.0")
FLUX_ATTENTION = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")
FLUX_TRAIN_GUIDANCE = 1.0
"""Guidance-embedding value while training Flux-dev LoRAs (kohya sd-scripts' recommended 1.0)."""


@dataclass(frozen=True)
class Family:
    """One model family's LoRA conventions."""

    name: FamilyName
    denoiser: str
    """Pipeline attribute holding the adapted model (``unet`` or ``transformer``)."""
    target_modules: tuple[str, ...]
    kohya_version: str
    """kohya's ``ss_base_model_version`` for this family."""
    scale_kwarg: str
    """Pipeline call argument carrying ``{"scale": w}`` for the adapter weight."""
    kohya_keys: bool
    """Save in kohya sd-scripts' LoRA layout (``lora_unet_<module, . as _>.lora_down.weight``,
    ``.lora_up.weight`` and a scalar ``.alpha`` per module, the layout diffusers, ComfyUI, Forge and
    A1111 all load); else peft's ``transformer.<module>.lora_A/lora_B`` keys, as diffusers' own Flux
    LoRA script saves them (kohya's Flux layout fuses q/k/v in BFL's module names, which peft's
    per-projection adapters do not map onto one to one)."""


FAMILIES: dict[FamilyName, Family] = {
    "sd": Family("sd", "unet", UNET_ATTENTION, "sd_v1", "cross_attention_kwargs", True),
    "sdxl": Family("sdxl", "unet", UNET_ATTENTION, "sdxl_base_v1-0", "cross_attention_kwargs", True),
    "flux": Family("flux", "transformer", FLUX_ATTENTION, "flux1", "joint_attention_kwargs", False),
}
_BY_CLASS: dict[str, FamilyName] = {
    "StableDiffusionPipeline": "sd",
    "StableDiffusionXLPipeline": "sdxl",
    "FluxPipeline": "flux",
}


def family_of(pipe) -> Family:
    """The family of a loaded text-to-image pipeline; raises naming the supported classes."""
    name = _BY_CLASS.get(type(pipe).__name__)
    if name is None:
        raise ValueError(
            f"LoRA training supports {', '.join(sorted(_BY_CLASS))}; the base model is {type(pipe).__name__}"
        )
    return FAMILIES[name]


def encode_text(
    pipe, family: Family, captions: list[str], max_sequence_length: int | None = None
) -> dict[str, torch.Tensor]:
    """Text conditioning for ``captions`` (no CFG), as the pipeline computes it at inference.

    ``max_sequence_length`` is Flux's T5 length (None: the pipeline's default); other families ignore it.
    """
    device = pipe.device
    if family.name == "sd":
        embeds, _ = pipe.encode_prompt(captions, device, 1, False)
        return {"prompt_embeds": embeds}
    if family.name == "sdxl":
        embeds, _, pooled, _ = pipe.encode_prompt(
            prompt=captions, device=device, num_images_per_prompt=1, do_classifier_free_guidance=False
        )
        return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}
    length = {"max_sequence_length": max_sequence_length} if max_sequence_length else {}
    embeds, pooled, _ = pipe.encode_prompt(prompt=captions, prompt_2=None, device=device, **length)
    return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}


def encode_posterior(vae, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The VAE posterior's mean and standard deviation (unscaled) for a batch of [-1, 1] images."""
    dist = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist
    return dist.mean.float().cpu(), dist.std.float().cpu()


def scale_latents(vae, latents: torch.Tensor) -> torch.Tensor:
    """Map VAE latents to the denoiser's space: ``(z - shift) * scaling`` (shift is Flux's)."""
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    return (latents - shift) * vae.config.scaling_factor


def training_scheduler(pipe, family: Family):
    """The noise schedule for training, from the base scheduler's config (betas, prediction type, ZTSNR).

    ``DDPMScheduler.from_config`` keeps ``beta_schedule``, ``prediction_type`` and
    ``rescale_betas_zero_snr`` of whatever sampler the pipeline ships with (PNDM, Euler, DDIM...).
    """
    if family.name == "flux":
        return FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)
    return DDPMScheduler.from_config(pipe.scheduler.config)


def prediction_type(scheduler) -> str:
    """``epsilon``, ``v_prediction`` or ``flow``."""
    if isinstance(scheduler, FlowMatchEulerDiscreteScheduler):
        return "flow"
    return scheduler.config.prediction_type


def min_snr_weights(scheduler, timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-sample loss weights of Min-SNR-gamma (Hang et al. 2023, eq. 8 and sec. 4.2).

    With SNR(t) = alpha_bar / (1 - alpha_bar): epsilon targets get min(SNR, g) / SNR = min(1, g / SNR),
    v targets min(SNR, g) / (SNR + 1). Zero-terminal-SNR schedules (Lin et al. 2023) have SNR = 0 at the
    last step, where the epsilon form is 1 (not 0/0) and the v form is 0.
    """
    alphas_cumprod = scheduler.alphas_cumprod.to(timesteps.device)[timesteps].float()
    snr = alphas_cumprod / (1.0 - alphas_cumprod)
    kind = prediction_type(scheduler)
    if kind == "epsilon":
        return (gamma / snr).clamp(max=1.0)
    if kind == "v_prediction":
        return torch.minimum(snr, torch.full_like(snr, gamma)) / (snr + 1.0)
    raise ValueError(f"min_snr_gamma is defined for epsilon and v_prediction targets, not {kind!r}")


def per_sample_loss(
    family: Family,
    denoiser: torch.nn.Module,
    scheduler,
    latents: torch.Tensor,
    text: dict[str, torch.Tensor],
    generator: torch.Generator,
    min_snr_gamma: float | None,
    resolution: int,
) -> torch.Tensor:
    """One batch's denoising loss per sample; all randomness comes from ``generator`` (a CPU one).

    ``latents`` are already scaled; ``text`` holds the batch's cached conditioning, on the device and in
    the denoiser's dtype; ``resolution`` is the training side in pixels (SDXL's size conditioning).
    """
    device, dtype = latents.device, denoiser.dtype
    batch = latents.shape[0]
    # 1. noise and timesteps, drawn on CPU so a seed means the same run on any device
    noise = torch.randn(latents.shape, generator=generator).to(device)
    if family.name == "flux":
        return _flow_loss(denoiser, scheduler, latents, noise, text, generator, min_snr_gamma)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), generator=generator).to(
        device
    )
    # 2. forward diffusion q(x_t | x_0) (Ho et al. 2020, eq. 4) and the target the model was trained for
    noisy = scheduler.add_noise(latents, noise, timesteps)
    kind = prediction_type(scheduler)
    if kind == "epsilon":
        target = noise
    elif kind == "v_prediction":
        target = scheduler.get_velocity(latents, noise, timesteps)
    else:
        raise ValueError(
            f"prediction_type {kind!r} is not supported for LoRA training (epsilon, v_prediction)"
        )
    # 3. predict
    added = None
    if family.name == "sdxl":
        # original size, crop top-left, target size (Podell et al. 2023, sec. 2.2): centre crop at full size
        side = resolution
        time_ids = torch.tensor([side, side, 0, 0, side, side], device=device, dtype=dtype)
        added = {"text_embeds": text["pooled_prompt_embeds"], "time_ids": time_ids.repeat(batch, 1)}
    pred = denoiser(
        noisy.to(dtype), timesteps, encoder_hidden_states=text["prompt_embeds"], added_cond_kwargs=added
    ).sample
    # 4. MSE per sample, optionally Min-SNR-weighted
    loss = (pred.float() - target.float()).pow(2).mean(dim=(1, 2, 3))
    if min_snr_gamma is not None:
        loss = loss * min_snr_weights(scheduler, timesteps, min_snr_gamma)
    return loss


def _flow_loss(
    transformer: torch.nn.Module,
    scheduler: FlowMatchEulerDiscreteScheduler,
    latents: torch.Tensor,
    noise: torch.Tensor,
    text: dict[str, torch.Tensor],
    generator: torch.Generator,
    min_snr_gamma: float | None,
) -> torch.Tensor:
    """Rectified-flow loss on packed latents (Esser et al. 2024, eq. 2 with uniform timestep density)."""
    from diffusers import FluxPipeline  # noqa: PLC0415

    if min_snr_gamma is not None:
        raise ValueError("min_snr_gamma applies to DDPM (epsilon/v) targets, not to Flux's flow matching")
    device, dtype = latents.device, transformer.dtype
    batch, channels, height, width = latents.shape
    # 1. sigmas from the scheduler's (shifted) training table, indexed uniformly
    index = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), generator=generator)
    sigmas = scheduler.sigmas[index].to(device=device, dtype=torch.float32)
    noisy = (1.0 - sigmas[:, None, None, None]) * latents + sigmas[:, None, None, None] * noise
    # 2. pack 2x2 patches into tokens, as the pipeline does
    packed = FluxPipeline._pack_latents(noisy.to(dtype), batch, channels, height, width)
    target = FluxPipeline._pack_latents(noise - latents, batch, channels, height, width)
    img_ids = FluxPipeline._prepare_latent_image_ids(batch, height // 2, width // 2, device, dtype)
    embeds = text["prompt_embeds"]
    txt_ids = torch.zeros(embeds.shape[1], 3, device=device, dtype=dtype)
    guidance = None
    if transformer.config.guidance_embeds:
        guidance = torch.full((batch,), FLUX_TRAIN_GUIDANCE, device=device, dtype=torch.float32)
    pred = transformer(
        hidden_states=packed,
        timestep=sigmas.to(dtype),
        guidance=guidance,
        pooled_projections=text["pooled_prompt_embeds"],
        encoder_hidden_states=embeds,
        txt_ids=txt_ids,
        img_ids=img_ids,
        return_dict=False,
    )[0]
    return (pred.float() - target.float()).pow(2).mean(dim=(1, 2))
