"""Tiny random-weight stand-ins for the real models, built from configs as diffusers' tests do.

`build_tiny(kind, out_dir)` writes a folder that loads offline with `DiffusionPipeline.from_pretrained`
(`ControlNetModel.from_pretrained` for the ControlNets, `transformers.pipeline("depth-estimation")` for
the depth estimator). Every VAE downsamples by 8 like the real ones, so the real models' size rules
hold; `TINY_MIN_SIZE` gives the smallest square side each kind generates. Each component is built right
after `torch.manual_seed(seed)`, so equal seeds give equal weights: sdxl-base and sdxl-refiner share
an identical VAE and text_encoder_2, as the real pair does. A `tiny_info.json` in each folder records
the kind, seed, minimum size and optional call kwargs that keep calls cheap (`TINY_CALL_KWARGS`).
Flux defaults to 1024x1024 when no size is given, so pass height and width.
"""

import json
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    ControlNetModel,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    PNDMScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    DPTConfig,
    DPTForDepthEstimation,
    DPTImageProcessor,
    T5Config,
    T5EncoderModel,
)

from diffusion_assets.models.tiny_tokenizers import build_clip_tokenizer, build_t5_tokenizer

TINY_KINDS = (
    "sd15",
    "sdxl-base",
    "sdxl-refiner",
    "flux-schnell",
    "flux-dev",
    "controlnet-sd15",
    "controlnet-sdxl",
    "depth-estimator",
)
TINY_MIN_SIZE: dict[str, int] = {
    # VAE factor 8 x one UNet downsample; other sizes follow the real rule (multiples of 8).
    "sd15": 16,
    "sdxl-base": 16,
    "sdxl-refiner": 16,
    # VAE factor 8 x Flux's 2x2 latent packing; other sizes must be multiples of 16, as for real Flux.
    "flux-schnell": 16,
    "flux-dev": 16,
    # The ControlNets run inside the matching pipeline, with a control image of the output size.
    "controlnet-sd15": 16,
    "controlnet-sdxl": 16,
    # It resizes any input to its 32x32 ViT grid and back; transformers' depth pipeline fails on 1x1 inputs.
    "depth-estimator": 16,
}
TINY_CALL_KWARGS: dict[str, dict[str, int]] = {
    # Optional, for speed: the tiny T5 takes any max_sequence_length up to 512 like the real one (presets'
    # 256/512 work), but 32 spares every step attention over hundreds of padding tokens.
    "flux-schnell": {"max_sequence_length": 32},
    "flux-dev": {"max_sequence_length": 32},
}
TINY_SAMPLE_SIZE = 4
"""Latent side stored in the UNet configs: pipelines that default their size from it make 32x32 images."""

_SD_BETAS = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}


def _vae(seed: int, latent_channels: int = 4, scaling_factor: float = 0.18215, **kwargs) -> AutoencoderKL:
    """A four-level VAE (downsampling factor 8, like the real ones) with 8-16 channels."""
    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        norm_num_groups=8,
        latent_channels=latent_channels,
        sample_size=TINY_SAMPLE_SIZE * 8,
        scaling_factor=scaling_factor,
        **kwargs,
    )


def _clip_text(
    seed: int, tokenizer: CLIPTokenizer, hidden_size: int = 32, with_projection: bool = False
) -> CLIPTextModel | CLIPTextModelWithProjection:
    """A two-layer CLIP text encoder whose vocabulary, special ids and positions match `tokenizer`."""
    torch.manual_seed(seed)
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        projection_dim=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        hidden_act="gelu",
    )
    return (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(config)


def _sd15_unet(seed: int) -> UNet2DConditionModel:
    """A two-level SD 1.5-style UNet (cross-attention at the top level, 4 latent channels)."""
    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=TINY_SAMPLE_SIZE,
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,  # diffusers reads this as the number of heads
    )


def _sdxl_unet(seed: int, refiner: bool) -> UNet2DConditionModel:
    """A two-level SDXL-style UNet conditioned on pooled text and size/crop (or aesthetic) time ids.

    The base's cross-attention sees both encoders' hidden states (32 + 48); the refiner only the second
    (48). The added embedding takes the pooled 48-d text_encoder_2 output plus 6 (base) or 5 (refiner,
    with aesthetic score) time ids of `addition_time_embed_dim` each, as in diffusers' SDXL tests.
    """
    torch.manual_seed(seed)
    time_ids = 5 if refiner else 6
    return UNet2DConditionModel(
        sample_size=TINY_SAMPLE_SIZE,
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        transformer_layers_per_block=(1, 2),
        use_linear_projection=True,
        cross_attention_dim=48 if refiner else 80,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=time_ids * 8 + 48,
    )


def _sdxl_scheduler() -> EulerDiscreteScheduler:
    return EulerDiscreteScheduler(**_SD_BETAS, steps_offset=1, timestep_spacing="leading")


def _controlnet(unet: UNet2DConditionModel, seed: int) -> ControlNetModel:
    """A ControlNet copied from `unet`'s encoder (as real ControlNets start), with random output convs.

    Real training starts the output convs at zero; trained ControlNets have moved away from zero, so the
    tiny one gets random ones and the control image visibly changes the output.
    """
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 8, 16, 16))
    torch.manual_seed(seed)
    # He init keeps the control signal's scale through the 8-layer conditioning embedding; PyTorch's
    # default conv init shrinks it about 50-fold, leaving the control image without visible effect.
    cond_convs = [m for m in controlnet.controlnet_cond_embedding.modules() if isinstance(m, torch.nn.Conv2d)]
    for conv in [*cond_convs, *controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
        torch.nn.init.kaiming_normal_(conv.weight)
    # Zero padding at 2x2 latents still damps it; bring it to the scale of the latent features.
    controlnet.controlnet_cond_embedding.conv_out.weight.data.mul_(8.0)
    return controlnet


def _build_sd15(seed: int) -> StableDiffusionPipeline:
    tokenizer = build_clip_tokenizer()
    return StableDiffusionPipeline(
        vae=_vae(seed),
        text_encoder=_clip_text(seed, tokenizer),
        tokenizer=tokenizer,
        unet=_sd15_unet(seed),
        scheduler=PNDMScheduler(**_SD_BETAS, steps_offset=1, skip_prk_steps=True, set_alpha_to_one=False),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _build_sdxl_base(seed: int) -> StableDiffusionXLPipeline:
    tokenizer, tokenizer_2 = build_clip_tokenizer(), build_clip_tokenizer(pad_token="!")
    return StableDiffusionXLPipeline(
        vae=_vae(seed, scaling_factor=0.13025),
        text_encoder=_clip_text(seed, tokenizer),
        text_encoder_2=_clip_text(seed, tokenizer_2, hidden_size=48, with_projection=True),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=_sdxl_unet(seed, refiner=False),
        scheduler=_sdxl_scheduler(),
    )


def _build_sdxl_refiner(seed: int) -> StableDiffusionXLImg2ImgPipeline:
    tokenizer_2 = build_clip_tokenizer(pad_token="!")
    return StableDiffusionXLImg2ImgPipeline(
        vae=_vae(seed, scaling_factor=0.13025),
        text_encoder=None,
        text_encoder_2=_clip_text(seed, tokenizer_2, hidden_size=48, with_projection=True),
        tokenizer=None,
        tokenizer_2=tokenizer_2,
        unet=_sdxl_unet(seed, refiner=True),
        scheduler=_sdxl_scheduler(),
        requires_aesthetics_score=True,
        force_zeros_for_empty_prompt=False,
    )


def _build_flux(seed: int, guidance: bool) -> FluxPipeline:
    """Flux with 16 latent channels packed 2x2 into 64 transformer inputs, as in FLUX.1.

    dev distils guidance into an embedding and shifts its schedule by resolution; schnell does neither.
    """
    tokenizer, tokenizer_2 = build_clip_tokenizer(), build_t5_tokenizer()
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=64,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        guidance_embeds=guidance,
        axes_dims_rope=(4, 4, 8),
    )
    torch.manual_seed(seed)
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer_2),
            d_model=32,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            pad_token_id=tokenizer_2.pad_token_id,
            eos_token_id=tokenizer_2.eos_token_id,
            decoder_start_token_id=tokenizer_2.pad_token_id,
        )
    )
    if guidance:
        scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True)
    else:
        scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=False)
    return FluxPipeline(
        scheduler=scheduler,
        vae=_vae(
            seed,
            latent_channels=16,
            scaling_factor=0.3611,
            shift_factor=0.1159,
            use_quant_conv=False,
            use_post_quant_conv=False,
        ),
        text_encoder=_clip_text(seed, tokenizer),
        tokenizer=tokenizer,
        text_encoder_2=t5,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )


def _save_depth_estimator(seed: int, out_dir: Path) -> None:
    """A four-layer DPT (the architecture of transformers' default depth model) with its image processor."""
    torch.manual_seed(seed)
    config = DPTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=64,
        backbone_out_indices=(0, 1, 2, 3),
        neck_hidden_sizes=(8, 16, 32, 32),
        fusion_hidden_size=16,
        head_in_index=-1,
        use_auxiliary_head=False,
    )
    DPTForDepthEstimation(config).save_pretrained(out_dir)
    processor = DPTImageProcessor(size={"height": 32, "width": 32}, keep_aspect_ratio=False)
    processor.save_pretrained(out_dir)


def build_tiny(kind: str, out_dir: Path, seed: int = 0) -> Path:
    """Build a tiny random-weight model of `kind` from configs, save_pretrained into out_dir, return out_dir."""
    if kind not in TINY_KINDS:
        raise ValueError(f"Unknown tiny model kind {kind!r}; choose one of {', '.join(TINY_KINDS)}.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # 1. build and save the model
    if kind == "depth-estimator":
        _save_depth_estimator(seed, out_dir)
    elif kind.startswith("controlnet-"):
        unet = _sd15_unet(seed) if kind == "controlnet-sd15" else _sdxl_unet(seed, refiner=False)
        _controlnet(unet, seed).save_pretrained(out_dir)
    else:
        builders = {
            "sd15": _build_sd15,
            "sdxl-base": _build_sdxl_base,
            "sdxl-refiner": _build_sdxl_refiner,
            "flux-schnell": lambda s: _build_flux(s, guidance=False),
            "flux-dev": lambda s: _build_flux(s, guidance=True),
        }
        builders[kind](seed).save_pretrained(out_dir)
    # 2. record what a caller needs to know to use it
    info = {
        "kind": kind,
        "seed": seed,
        "min_size": TINY_MIN_SIZE[kind],
        "call_kwargs": TINY_CALL_KWARGS.get(kind, {}),
    }
    (out_dir / "tiny_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return out_dir
