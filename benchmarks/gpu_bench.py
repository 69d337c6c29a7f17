"""GPU benchmark: SDXL and Flux-schnell inference and an SDXL LoRA training step, random weights.

Self-contained (torch, diffusers, peft only) so it runs on a machine with no network and without
the diffusion_assets package. Models are built from the published configs below with random
weights: speed and memory depend on the architecture, not on the weight values. The pipelines get
random text embeddings, so the real denoising loop and VAE decode are timed, text encoders are not.

    python benchmarks/gpu_bench.py --out DIR        # CUDA, full-size models (about 6-7 minutes)
    python benchmarks/gpu_bench.py --tiny --out DIR # CPU, tiny configs, same code paths

Writes DIR/results.json and DIR/results.md after every section, so a run that is cut short keeps
what it measured. Speed is reported as s/image and as ratios against baselines measured in the
same run (compiled vs eager, batch 4 vs batch 1 per image, checkpointing on vs off).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import os
import platform
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

# 1. Published configs (diffusers format), written out because the GPU machine cannot download.
# stabilityai/stable-diffusion-xl-base-1.0/unet/config.json
SDXL_UNET = {
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20],
    "block_out_channels": [320, 640, 1280],
    "center_input_sample": False,
    "class_embed_type": None,
    "class_embeddings_concat": False,
    "conv_in_kernel": 3,
    "conv_out_kernel": 3,
    "cross_attention_dim": 2048,
    "cross_attention_norm": None,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1,
    "dual_cross_attention": False,
    "encoder_hid_dim": None,
    "encoder_hid_dim_type": None,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_only_cross_attention": None,
    "mid_block_scale_factor": 1,
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "num_attention_heads": None,
    "num_class_embeds": None,
    "only_cross_attention": False,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816,
    "resnet_out_scale_factor": 1.0,
    "resnet_skip_time_act": False,
    "resnet_time_scale_shift": "default",
    "sample_size": 128,
    "time_cond_proj_dim": None,
    "time_embedding_act_fn": None,
    "time_embedding_dim": None,
    "time_embedding_type": "positional",
    "timestep_post_act": None,
    "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "upcast_attention": None,
    "use_linear_projection": True,
}
# stabilityai/stable-diffusion-xl-base-1.0/vae/config.json
SDXL_VAE = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "force_upcast": True,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 1024,
    "scaling_factor": 0.13025,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}
# stabilityai/stable-diffusion-xl-base-1.0/scheduler/scheduler_config.json
SDXL_SCHEDULER = {
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "trained_betas": None,
    "use_karras_sigmas": False,
}
# black-forest-labs/FLUX.1-schnell/transformer/config.json
FLUX_TRANSFORMER = {
    "attention_head_dim": 128,
    "axes_dims_rope": [16, 56, 56],
    "guidance_embeds": False,
    "in_channels": 64,
    "joint_attention_dim": 4096,
    "num_attention_heads": 24,
    "num_layers": 19,
    "num_single_layers": 38,
    "patch_size": 1,
    "pooled_projection_dim": 768,
}
# black-forest-labs/FLUX.1-schnell/vae/config.json
FLUX_VAE = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "force_upcast": True,
    "in_channels": 3,
    "latent_channels": 16,
    "latents_mean": None,
    "latents_std": None,
    "layers_per_block": 2,
    "mid_block_add_attention": True,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 1024,
    "scaling_factor": 0.3611,
    "shift_factor": 0.1159,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "use_post_quant_conv": False,
    "use_quant_conv": False,
}
# black-forest-labs/FLUX.1-schnell/scheduler/scheduler_config.json
FLUX_SCHEDULER = {
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "max_image_seq_len": 4096,
    "max_shift": 1.15,
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "use_dynamic_shifting": False,
}

# Tiny stand-ins with the same block types, for --tiny on a CPU.
TINY_SDXL_UNET = {
    **SDXL_UNET,
    "addition_time_embed_dim": 8,
    "attention_head_dim": [2, 4],
    "block_out_channels": [32, 64],
    "cross_attention_dim": 32,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
    "layers_per_block": 1,
    "projection_class_embeddings_input_dim": 8 * 6 + 32,
    "sample_size": 16,
    "transformer_layers_per_block": [1, 2],
    "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
}
TINY_VAE = {
    "block_out_channels": [32, 32],
    "down_block_types": ["DownEncoderBlock2D"] * 2,
    "up_block_types": ["UpDecoderBlock2D"] * 2,
    "layers_per_block": 1,
    "sample_size": 32,
}
TINY_SDXL_VAE = {**SDXL_VAE, **TINY_VAE}
TINY_FLUX_VAE = {**FLUX_VAE, **TINY_VAE, "latent_channels": 4}
TINY_FLUX_TRANSFORMER = {
    **FLUX_TRANSFORMER,
    "attention_head_dim": 16,
    "axes_dims_rope": [4, 6, 6],
    "in_channels": 16,
    "joint_attention_dim": 32,
    "num_attention_heads": 2,
    "num_layers": 1,
    "num_single_layers": 1,
    "pooled_projection_dim": 32,
}

# Goals and compute floors (s/image at 1024x1024) from the project plan, printed beside results.
GOALS = {"sdxl": {"goal_s": 1.0, "floor_s": 0.52}, "flux": {"goal_s": 0.6, "floor_s": 0.36}}
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
SECTIONS = ["env", "sdxl_eager", "flux_eager", "lora", "flux_compiled", "sdxl_compiled"]


class SectionTimeout(Exception):
    pass


@contextlib.contextmanager
def time_guard(seconds: float):
    """Raise SectionTimeout in the main thread after `seconds` (SIGALRM), so one slow section
    (usually a compile) cannot eat the time of those after it."""

    def _raise(signum, frame):
        raise SectionTimeout(f"section exceeded its {seconds:.0f} s guard")

    seconds = max(1, int(seconds))
    old = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def built_on(device: torch.device, dtype: torch.dtype):
    """Create parameters directly on `device` in `dtype`: a 12B model initialises in seconds on a
    GPU instead of minutes on the CPU, and never exists in float32."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with device:
            yield
    finally:
        torch.set_default_dtype(old)


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.tiny = args.tiny
        self.device = torch.device("cpu" if args.tiny else "cuda")
        self.dtype = torch.bfloat16
        self.size = 32 if args.tiny else 1024
        self.t0 = time.perf_counter()
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.results: dict[str, Any] = {"sections": {}, "rows": [], "errors": {}}

    # -- helpers -------------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t0:7.1f}s] {msg}", flush=True)

    def remaining(self) -> float:
        return self.args.budget_s - (time.perf_counter() - self.t0)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def reset_peak(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()

    def peak_gib(self) -> float | None:
        if self.device.type == "cuda":
            return round(torch.cuda.max_memory_allocated() / 2**30, 2)
        return None

    def timed(self, fn: Callable[[], Any], runs: int) -> list[float]:
        times = []
        for _ in range(runs):
            self.sync()
            t = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - t)
        return times

    def free(self) -> None:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(*shape, device=self.device, dtype=self.dtype)

    def add_row(self, **row: Any) -> None:
        self.results["rows"].append(row)
        self.log("ROW " + json.dumps(row))
        self.write()

    def run_section(self, name: str, fn: Callable[[], None], guard_s: float, need_s: float) -> None:
        left = self.remaining()
        if name not in self.args.sections:
            return
        if left < need_s:
            self.results["errors"][name] = f"skipped: {left:.0f} s left, needs about {need_s:.0f} s"
            self.log(f"SKIP {name}: {left:.0f} s left < {need_s:.0f} s")
            self.write()
            return
        guard = min(guard_s, left - 5)
        self.log(f"=== {name} (guard {guard:.0f} s, {left:.0f} s left)")
        t = time.perf_counter()
        try:
            with time_guard(guard):
                fn()
        except BaseException as exc:  # one failed section must not lose the others
            if isinstance(exc, KeyboardInterrupt):
                raise
            self.results["errors"][name] = f"{type(exc).__name__}: {exc}"
            self.log(f"FAIL {name}: {type(exc).__name__}: {exc}")
            traceback.print_exc()
        finally:
            self.results["sections"][name] = {"wall_s": round(time.perf_counter() - t, 1)}
            if self.args.compile_backend_reset:
                torch._dynamo.reset()
            self.free()
            self.write()

    # -- 2. pipelines ----------------------------------------------------------------------------
    def build_sdxl(self):
        from diffusers import (
            AutoencoderKL,
            EulerDiscreteScheduler,
            StableDiffusionXLPipeline,
            UNet2DConditionModel,
        )

        with built_on(self.device, self.dtype):
            unet = UNet2DConditionModel(**(TINY_SDXL_UNET if self.tiny else SDXL_UNET))
            vae = AutoencoderKL(**(TINY_SDXL_VAE if self.tiny else SDXL_VAE))
        pipe = StableDiffusionXLPipeline(
            vae=vae.to(self.device, self.dtype),
            text_encoder=None,
            text_encoder_2=None,
            tokenizer=None,
            tokenizer_2=None,
            unet=unet.to(self.device, self.dtype).eval(),
            scheduler=EulerDiscreteScheduler.from_config(SDXL_SCHEDULER),
            add_watermarker=False,
        )
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def sdxl_call(self, pipe, batch: int, output_type: str = "pt") -> Callable[[], Any]:
        cfg = pipe.unet.config
        dim = cfg.cross_attention_dim
        pooled = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
        emb = dict(
            prompt_embeds=self.randn(batch, 77, dim),
            negative_prompt_embeds=self.randn(batch, 77, dim),
            pooled_prompt_embeds=self.randn(batch, pooled),
            negative_pooled_prompt_embeds=self.randn(batch, pooled),
        )
        steps = self.args.sdxl_steps

        def call():
            return pipe(
                **emb,
                height=self.size,
                width=self.size,
                num_inference_steps=steps,
                guidance_scale=5.0,
                generator=torch.Generator(self.device).manual_seed(0),
                output_type=output_type,
            ).images

        return call

    def build_flux(self):
        from diffusers import (
            AutoencoderKL,
            FlowMatchEulerDiscreteScheduler,
            FluxPipeline,
            FluxTransformer2DModel,
        )

        with built_on(self.device, self.dtype):
            transformer = FluxTransformer2DModel(**(TINY_FLUX_TRANSFORMER if self.tiny else FLUX_TRANSFORMER))
            vae = AutoencoderKL(**(TINY_FLUX_VAE if self.tiny else FLUX_VAE))
        pipe = FluxPipeline(
            scheduler=FlowMatchEulerDiscreteScheduler.from_config(FLUX_SCHEDULER),
            vae=vae.to(self.device, self.dtype),
            text_encoder=None,
            tokenizer=None,
            text_encoder_2=None,
            tokenizer_2=None,
            transformer=transformer.to(self.device, self.dtype).eval(),
        )
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def flux_call(self, pipe, batch: int, output_type: str = "pt") -> Callable[[], Any]:
        cfg = pipe.transformer.config
        seq = 16 if self.tiny else 512
        emb = dict(
            prompt_embeds=self.randn(batch, seq, cfg.joint_attention_dim),
            pooled_prompt_embeds=self.randn(batch, cfg.pooled_projection_dim),
        )
        steps = self.args.flux_steps

        def call():
            return pipe(
                **emb,
                height=self.size,
                width=self.size,
                num_inference_steps=steps,
                guidance_scale=0.0,
                max_sequence_length=seq,
                generator=torch.Generator(self.device).manual_seed(0),
                output_type=output_type,
            ).images

        return call

    # -- 3. sections -----------------------------------------------------------------------------
    def section_env(self) -> None:
        import diffusers

        env: dict[str, Any] = {
            "date": datetime.date.today().isoformat(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "device": str(self.device),
            "tiny": self.tiny,
            "budget_s": self.args.budget_s,
        }
        try:
            import peft

            env["peft"] = peft.__version__
        except ImportError as exc:
            env["peft"] = f"missing: {exc}"
        if self.device.type == "cuda":
            env["gpu"] = torch.cuda.get_device_name()
            env["cuda"] = torch.version.cuda
            env["gpu_mem_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
            env["flash_sdp"] = torch.backends.cuda.flash_sdp_enabled()
            env["cudnn_sdp"] = torch.backends.cuda.cudnn_sdp_enabled()
            # Matrix ceiling on random data, to read the timings against (METHOD.md "two numbers").
            n = 8192
            a, b = self.randn(n, n), self.randn(n, n)
            self.timed(lambda: a @ b, 3)
            t = self.timed(lambda: a @ b, 10)
            env["bf16_matmul_tflops"] = round(2 * n**3 / (sum(t) / len(t)) / 1e12, 1)
            del a, b
        self.results["env"] = env
        self.log("ENV " + json.dumps(env))

    def bench_pipeline(self, model: str, compiled: bool) -> None:
        builder = self.build_sdxl if model == "sdxl" else self.build_flux
        caller = self.sdxl_call if model == "sdxl" else self.flux_call
        t = time.perf_counter()
        pipe = builder()
        self.sync()
        denoiser = pipe.unet if model == "sdxl" else pipe.transformer
        n_params = sum(p.numel() for p in denoiser.parameters())
        build_s = time.perf_counter() - t
        self.log(f"{model}: built {n_params / 1e9:.2f}B-param denoiser in {build_s:.1f} s")
        how = self.args.compile_sdxl if model == "sdxl" else self.args.compile_flux
        variant = f"compiled-{how}" if compiled else "eager"
        if compiled:
            if how == "regional":
                denoiser.compile_repeated_blocks(fullgraph=True)
            else:
                denoiser.compile()  # nn.Module.compile: in place, keeps the pipeline's module type
        weights_gib = round(torch.cuda.memory_allocated() / 2**30, 2) if self.device.type == "cuda" else None
        steps = self.args.sdxl_steps if model == "sdxl" else self.args.flux_steps
        for batch in self.args.batches:
            call = caller(pipe, batch)
            # Warm-up: the first call compiles (compiled) or loads kernels (eager); not timed.
            self.reset_peak()
            warm = self.timed(call, 1)[0]
            if compiled:
                self.timed(call, 1)  # second warm-up: guards settle, lazily-built kernels finish
            runs = self.args.runs_b1 if batch == 1 else self.args.runs_bn
            self.reset_peak()
            times = self.timed(call, runs)
            per_batch = sum(times) / len(times)
            row = dict(
                model=model,
                variant=variant,
                batch=batch,
                steps=steps,
                s_per_image=round(per_batch / batch, 4),
                s_per_batch=round(per_batch, 4),
                runs_s=[round(x, 4) for x in times],
                warmup_s=round(warm, 2),
                peak_gib=self.peak_gib(),
                params_b=round(n_params / 1e9, 3),
                weights_gib=weights_gib,
                **GOALS[model],
            )
            if not compiled:
                # VAE decode alone, so the denoising share of s/image is known.
                edge = self.size // pipe.vae_scale_factor
                lat = self.randn(batch, pipe.vae.config.latent_channels, edge, edge)
                dec = self.timed(lambda lat=lat: pipe.vae.decode(lat, return_dict=False), 2)
                row["vae_decode_s_per_batch"] = round(dec[-1], 4)
            self.add_row(**row)

    def section_lora(self) -> None:
        import torch.nn.functional as F
        from diffusers import DDPMScheduler, UNet2DConditionModel
        from peft import LoraConfig

        with built_on(self.device, self.dtype):
            unet = UNet2DConditionModel(**(TINY_SDXL_UNET if self.tiny else SDXL_UNET))
        unet = unet.to(self.device, self.dtype)
        unet.requires_grad_(False)
        # Same recipe as diffusers' train_text_to_image_lora_sdxl.py (bf16 keeps LoRA in bf16).
        unet.add_adapter(
            LoraConfig(r=16, lora_alpha=16, init_lora_weights="gaussian", target_modules=LORA_TARGETS)
        )
        params = [p for p in unet.parameters() if p.requires_grad]
        n_lora = sum(p.numel() for p in params)
        opt = torch.optim.AdamW(params, lr=1e-4)
        sched = DDPMScheduler.from_config(SDXL_SCHEDULER)
        cfg = unet.config
        pooled = cfg.projection_class_embeddings_input_dim - 6 * cfg.addition_time_embed_dim
        lat = self.size // (2 if self.tiny else 8)
        latents = self.randn(1, 4, lat, lat)
        ehs = self.randn(1, 77, cfg.cross_attention_dim)
        cond = {
            "text_embeds": self.randn(1, pooled),
            "time_ids": torch.tensor(
                [[self.size, self.size, 0, 0, self.size, self.size]],
                device=self.device,
                dtype=self.dtype,
            ),
        }
        unet.train()

        def step():
            noise = torch.randn_like(latents)
            t = torch.randint(0, 1000, (1,), device=self.device)
            noisy = sched.add_noise(latents, noise, t)
            pred = unet(noisy, t, ehs, added_cond_kwargs=cond, return_dict=False)[0]
            loss = F.mse_loss(pred.float(), noise.float())  # Ho et al. 2020, eq. 14
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        base = None
        for ckpt in (False, True):
            if ckpt:
                unet.enable_gradient_checkpointing()
            else:
                unet.disable_gradient_checkpointing()
            self.timed(step, 2)
            self.reset_peak()
            times = self.timed(step, self.args.lora_steps)
            mean = sum(times) / len(times)
            base = base or mean
            self.add_row(
                model="sdxl-lora",
                variant=f"grad-ckpt-{'on' if ckpt else 'off'}",
                batch=1,
                steps=1,
                s_per_step=round(mean, 4),
                runs_s=[round(x, 4) for x in times],
                peak_gib=self.peak_gib(),
                lora_params_m=round(n_lora / 1e6, 2),
                ratio_vs_ckpt_off=round(mean / base, 3),
            )

    # -- 4. reporting ----------------------------------------------------------------------------
    def ratios(self) -> list[str]:
        rows = {(r["model"], r["variant"], r["batch"]): r for r in self.results["rows"]}
        lines = []
        for (model, variant, batch), r in sorted(rows.items()):
            if "s_per_image" not in r:
                continue
            eager = rows.get((model, "eager", batch))
            if variant != "eager" and eager:
                x = eager["s_per_image"] / r["s_per_image"]
                lines.append(f"{model} b{batch}: {variant} is {x:.2f}x eager speed")
                # The first compiled call both compiles and runs once; subtract an eager run.
                compile_s = r["warmup_s"] - eager["s_per_batch"]
                lines.append(f"{model} b{batch}: {variant} compile time about {compile_s:.0f} s")
            b1 = rows.get((model, variant, 1))
            if batch != 1 and b1:
                x = b1["s_per_image"] / r["s_per_image"]
                lines.append(f"{model} {variant}: b{batch} per image is {x:.2f}x b1 speed")
        return lines

    def markdown(self) -> str:
        env = self.results.get("env", {})
        md = ["# GPU benchmark results", ""]
        md += [f"- {k}: {v}" for k, v in env.items()]
        md += [
            "",
            "| model | variant | batch | steps | s/image | s/batch | goal s/img | floor s/img "
            "| vs goal | warm-up s | peak GiB | VAE decode s/batch |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in self.results["rows"]:
            if "s_per_image" not in r:
                continue
            met = "met" if r["s_per_image"] <= r["goal_s"] else "missed"
            md.append(
                f"| {r['model']} | {r['variant']} | {r['batch']} | {r['steps']} "
                f"| {r['s_per_image']:.3f} | {r['s_per_batch']:.3f} | {r['goal_s']} "
                f"| {r['floor_s']} | {met} ({r['s_per_image'] / r['goal_s']:.2f}x goal) "
                f"| {r['warmup_s']} | {r['peak_gib']} | {r.get('vae_decode_s_per_batch', '')} |"
            )
        lora = [r for r in self.results["rows"] if r["model"] == "sdxl-lora"]
        if lora:
            md += ["", "| LoRA step (SDXL UNet, rank 16, b1) | s/step | vs ckpt off | peak GiB |"]
            md += ["|---|---|---|---|"]
            md += [
                f"| {r['variant']} | {r['s_per_step']:.3f} | {r['ratio_vs_ckpt_off']} | {r['peak_gib']} |"
                for r in lora
            ]
        md += ["", "Ratios (same run):", ""] + [f"- {x}" for x in self.ratios()]
        md += ["", "Sections:", ""] + [f"- {k}: {v['wall_s']} s" for k, v in self.results["sections"].items()]
        if self.results["errors"]:
            md += ["", "Errors:", ""] + [f"- {k}: {v}" for k, v in self.results["errors"].items()]
        return "\n".join(md) + "\n"

    def write(self) -> None:
        self.results["ratios"] = self.ratios()
        self.results["elapsed_s"] = round(time.perf_counter() - self.t0, 1)
        (self.out / "results.json").write_text(json.dumps(self.results, indent=2))
        (self.out / "results.md").write_text(self.markdown())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", required=True, help="folder for results.json and results.md")
    p.add_argument("--tiny", action="store_true", help="tiny configs on the CPU (a smoke test)")
    p.add_argument("--sections", default=",".join(SECTIONS), help="comma list of " + ",".join(SECTIONS))
    p.add_argument("--budget-s", type=float, default=470, help="whole-run deadline; late sections skip")
    p.add_argument("--batches", default="1,4", help="batch sizes for inference")
    p.add_argument("--runs-b1", type=int, help="timed runs at batch 1 (3; --tiny 1)")
    p.add_argument("--runs-bn", type=int, help="timed runs at larger batches (2; --tiny 1)")
    p.add_argument("--sdxl-steps", type=int, help="denoising steps (30; --tiny 2)")
    p.add_argument("--flux-steps", type=int, help="denoising steps (4; --tiny 2)")
    p.add_argument("--lora-steps", type=int, help="timed training steps (5; --tiny 2)")
    p.add_argument("--compile-sdxl", choices=["full", "regional"], default="full")
    p.add_argument("--compile-flux", choices=["full", "regional"], default="regional")
    p.add_argument("--no-compile-backend-reset", dest="compile_backend_reset", action="store_false")
    args = p.parse_args(argv)
    args.sections = [s for s in args.sections.split(",") if s]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        p.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    args.batches = [int(b) for b in args.batches.split(",")]
    defaults = {"runs_b1": 3, "runs_bn": 2, "sdxl_steps": 30, "flux_steps": 4, "lora_steps": 5}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, (2 if "steps" in name else 1) if args.tiny else value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.tiny and not torch.cuda.is_available():
        sys.exit("No CUDA device: run with --tiny for the CPU smoke test.")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    # A new batch size recompiles with static shapes rather than a slower dynamic-batch graph.
    torch._dynamo.config.automatic_dynamic_shapes = False
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import diffusers

    diffusers.utils.logging.set_verbosity_error()
    bench = Bench(args)
    scale = 0.05 if args.tiny else 1.0  # guards: the tiny run's compiles are on 2 CPU threads
    plan = [
        # name, function, guard seconds, seconds it needs to be worth starting
        ("env", bench.section_env, 60, 0),
        ("sdxl_eager", lambda: bench.bench_pipeline("sdxl", False), 90, 20),
        ("flux_eager", lambda: bench.bench_pipeline("flux", False), 90, 20),
        ("lora", bench.section_lora, 60, 15),
        ("flux_compiled", lambda: bench.bench_pipeline("flux", True), 150, 60),
        ("sdxl_compiled", lambda: bench.bench_pipeline("sdxl", True), 400, 60),
    ]
    for name, fn, guard, need in plan:
        bench.run_section(name, fn, guard if not args.tiny else max(guard, 600), need * scale)
    bench.write()
    print("\n" + bench.markdown(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
