"""Train a LoRA adapter (Hu et al. 2021) on a frozen diffusers base model: the plain trainer.

``train_lora`` reads an imagefolder dataset, encodes it once (``training.cache``), adds a peft LoRA to the
denoiser's attention projections, and trains only those weights with AdamW. Every random draw comes from
seeded CPU generators (``seeds.derive_seed``): ``lora/init`` for the Gaussian lora_A init, ``lora/order``
+ epoch for the batch order, ``lora/noise`` for latent samples, noise and timesteps. The noise generator's
state is checkpointed, so a resumed run continues bit for bit where the interrupted one stopped.

Outputs in ``out_dir``: ``pytorch_lora_weights.safetensors`` (diffusers keys, kohya + lineage header),
``loss.parquet``, ``checkpoints/step-<n>/`` and ``validation/step-<n>/*.png``. A rerun of a finished recipe
returns that run's files untouched (``result.finished_result``), so the adapter's bytes and sha256 never change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import torch
from diffusers import DiffusionPipeline
from diffusers.training_utils import cast_training_params
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

from diffusion_assets.files import sha256_file
from diffusion_assets.models.hashing import folder_hash
from diffusion_assets.seeds import cpu_generator, derive_seed
from diffusion_assets.training import cache as cache_mod
from diffusion_assets.training import checkpoints as ckpt
from diffusion_assets.training.config import LoraLineage, LoraTrainConfig, adapter_id
from diffusion_assets.training.dataset import read_split, split_fingerprint, tag_frequency
from diffusion_assets.training.families import family_of, per_sample_loss, scale_latents, training_scheduler
from diffusion_assets.training.metadata import header_metadata, write_adapter
from diffusion_assets.training.result import (
    TrainResult,
    finished_result,
    loss_figures,
    peak_memory_bytes,
    write_loss,
)
from diffusion_assets.training.validation import render_validation

log = logging.getLogger(__name__)

DTYPES = {"no": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
StepCallback = Callable[[int, float], None]


def train_lora(
    dataset_dir: str | Path,
    base_model_dir: str | Path,
    out_dir: str | Path,
    config: LoraTrainConfig,
    lineage: LoraLineage,
    *,
    cache_root: str | Path | None = None,
    device: str = "cpu",
    resume: bool = True,
    keep_checkpoints: int | None = None,
    callback: StepCallback | None = None,
    validation_call_kwargs: dict | None = None,
    expected_sha256: str | None = None,
) -> TrainResult:
    """Train a LoRA on ``dataset_dir/train`` for ``config.steps`` steps and write it to ``out_dir``.

    Args:
        cache_root: where encoded datasets are kept (default ``out_dir/../cache``).
        resume: continue from the newest checkpoint in ``out_dir`` when there is one, and return a finished
            run of the same recipe (the adapter file's header names its id) as it stands, without rewriting it.
        keep_checkpoints: delete all but this many newest checkpoints (default: keep all).
        callback: called as ``callback(step, loss)`` after each step (after its checkpoint and validation);
            an exception it raises stops training, as a crash would.
        validation_call_kwargs: extra pipeline arguments for validation images.
        expected_sha256: the sha256 the adapters manifest records for this recipe's file, if any; a finished
            file with another hash is not reused but written again from the final checkpoint.

    Raises:
        ValueError: the checkpoint in ``out_dir`` was made with a different training recipe.
    """
    wall_start = time.time()
    out_dir, base_model_dir = Path(out_dir), Path(base_model_dir)
    dtype = DTYPES[config.mixed_precision]
    # 1. the recipe's id; a finished run of it is returned as it stands, since rewriting the file would give
    #    it a new sha256 (its header holds wall-clock times and the run id) for weights that did not change
    weights_hash = lineage.base_weights_hash or folder_hash(base_model_dir)
    ident = adapter_id(config, lineage, weights_hash)
    cache_root = Path(cache_root) if cache_root else out_dir.parent / "cache"
    if resume:
        finished = finished_result(
            out_dir, config, lineage, adapter_id=ident, base_model_dir=base_model_dir,
            cache_root=cache_root, device=device, expected_sha256=expected_sha256,
        )  # fmt: skip
        if finished is not None:
            log.info("%s already holds adapter %s; nothing to train", out_dir, ident)
            return finished
    # 2. inputs: dataset, base pipeline (float32 for encoding)
    examples = read_split(dataset_dir)
    pipe = DiffusionPipeline.from_pretrained(base_model_dir, dtype=torch.float32)
    family = family_of(pipe)
    if family.name == "flux" and config.min_snr_gamma is not None:
        raise ValueError("min_snr_gamma is for DDPM (epsilon/v) models; set it to None for Flux")
    pipe.set_progress_bar_config(disable=True)
    pipe.to(device)
    # 3. encode the dataset once (or read the cache)
    cache_dir = cache_mod.run_cache_dir(
        cache_root, lineage.dataset_version, weights_hash, config, family.name
    )
    encoded = cache_mod.load_or_encode(
        pipe,
        family,
        examples,
        cache_dir,
        config.resolution,
        split_fingerprint(dataset_dir),
        config.max_sequence_length if family.name == "flux" else None,
    )
    # 4. freeze the base, add the LoRA (seeded Gaussian lora_A, zero lora_B), keep LoRA weights in float32
    denoiser = getattr(pipe, family.denoiser)
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.requires_grad_(False)
    denoiser.to("cpu")  # LoRA init on CPU, so a seed means the same init on any device
    lora_config = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        init_lora_weights="gaussian",
        target_modules=list(config.target_modules or family.target_modules),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(config.seed, "lora/init", 0))
        denoiser.add_adapter(lora_config)
    _place(pipe, denoiser, device, dtype, encoders_on_device=bool(config.validation_every))
    cast_training_params(denoiser, dtype=torch.float32)
    if config.gradient_checkpointing:
        denoiser.enable_gradient_checkpointing()
    trainable = {name: p for name, p in denoiser.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW(
        list(trainable.values()), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    scaler = torch.amp.GradScaler(torch.device(device).type) if config.mixed_precision == "fp16" else None
    scheduler = training_scheduler(pipe, family)
    generator = cpu_generator(derive_seed(config.seed, "lora/noise", 0))
    # 5. resume from the newest checkpoint, if any
    step, rows, started_at = 0, [], wall_start
    resume_hash = config.training_hash(include_steps=False)
    latest = ckpt.latest_checkpoint(out_dir) if resume else None
    if latest is not None:
        step, rows, started_at = ckpt.restore(
            latest, resume_hash, config.steps, trainable, optimizer, generator, scaler
        )
        log.info("resuming %s from step %d", out_dir, step)
    resumed_from = step
    # 6. the training loop
    denoiser.train()
    n_images = len(examples)
    orders: dict[int, torch.Tensor] = {}
    validation_dirs: list[Path] = []
    call_kwargs = dict(validation_call_kwargs or {})
    if family.name == "flux" and config.max_sequence_length:
        call_kwargs.setdefault("max_sequence_length", config.max_sequence_length)
    while step < config.steps:
        tick = time.perf_counter()
        lr = config.learning_rate * min(1.0, (step + 1) / max(1, config.lr_warmup_steps))
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = _batch_indices(step, config.batch_size, n_images, config.seed, orders)
        latents = encoded.latent_mean[batch]
        if config.latents == "sample":
            latents = latents + encoded.latent_std[batch] * torch.randn(latents.shape, generator=generator)
        latents = scale_latents(pipe.vae, latents).to(device)
        text = {k: v[batch].to(device, dtype) for k, v in encoded.text.items()}
        loss = per_sample_loss(
            family, denoiser, scheduler, latents, text, generator, config.min_snr_gamma, config.resolution
        ).mean()
        _backward_and_step(loss, optimizer, scaler, list(trainable.values()), config.max_grad_norm)
        step += 1
        rows.append(
            {"step": step, "loss": float(loss.detach()), "lr": lr, "seconds": time.perf_counter() - tick}
        )
        # 7. checkpoint and validation images on schedule; always checkpoint the last step
        if step == config.steps or (config.checkpoint_every and step % config.checkpoint_every == 0):
            progress = {"training_hash": resume_hash, "started_at": started_at, "loss": rows}
            ckpt.save_checkpoint(
                out_dir, step, trainable, optimizer, generator, scaler, progress, keep_checkpoints
            )
            write_loss(out_dir / "loss.parquet", rows)
        if config.validation_every and (step % config.validation_every == 0 or step == config.steps):
            folder = out_dir / "validation" / f"step-{step}"
            render_validation(
                pipe,
                family,
                folder,
                config.validation_prompts,
                config.validation_seeds,
                resolution=config.resolution,
                steps=config.validation_steps,
                guidance=config.validation_guidance,
                lora_scale=config.lora_scale,
                call_kwargs=call_kwargs,
            )
            validation_dirs.append(folder)
        if callback is not None:
            callback(step, rows[-1]["loss"])
    # 8. the adapter file, in kohya's layout (Flux: peft's) with kohya + lineage header metadata
    loss_path = write_loss(out_dir / "loss.parquet", rows)
    header = header_metadata(
        config,
        lineage,
        family=family,
        base_weights_hash=weights_hash,
        adapter_id=ident,
        output_name=out_dir.name,
        num_train_images=n_images,
        tag_frequency=lineage.tag_frequency or tag_frequency([e.caption for e in examples]),
        started_at=started_at,
        finished_at=time.time(),
    )
    layers = get_peft_model_state_dict(denoiser)
    peft_config = denoiser.peft_config["default"].to_dict()
    weights_path = write_adapter(type(pipe), family, out_dir, layers, peft_config, header)
    return TrainResult(
        adapter_id=ident,
        weights_path=weights_path,
        sha256=sha256_file(weights_path),
        pipeline_class=type(pipe).__name__,
        family=family.name,
        base_weights_hash=weights_hash,
        target_modules=tuple(config.target_modules or family.target_modules),
        steps=step,
        **loss_figures(rows),
        peak_memory_bytes=peak_memory_bytes(device),
        device=device,
        resumed_from_step=resumed_from,
        num_train_images=n_images,
        cache_path=encoded.path,
        cache_built=encoded.built,
        cache_seconds=encoded.seconds,
        loss_path=loss_path,
        validation_dirs=tuple(validation_dirs),
        metadata=header,
    )


def _place(
    pipe, denoiser: torch.nn.Module, device: str, dtype: torch.dtype, encoders_on_device: bool
) -> None:
    """Denoiser to the device in the training dtype; the VAE and text encoders too only when validation
    images need them (their outputs are cached), else back to CPU, which frees their device memory."""
    for module in pipe.components.values():
        if not isinstance(module, torch.nn.Module):
            continue
        if module is denoiser or encoders_on_device:
            module.to(device)
            if dtype != torch.float32:  # diffusers warns on any dtype cast, float32 included
                module.to(dtype)
        else:
            module.to("cpu")


def _batch_indices(
    step: int, batch_size: int, n: int, seed: int, orders: dict[int, torch.Tensor]
) -> torch.Tensor:
    """Dataset rows of step ``step``: a seeded permutation per epoch, batches may straddle epochs.

    A pure function of (seed, step), so a resumed run needs no data-loader state.
    """
    positions = range(step * batch_size, (step + 1) * batch_size)
    picked = []
    for position in positions:
        epoch = position // n
        if epoch not in orders:
            orders.clear()  # one or two epochs are live at a time
            orders[epoch] = torch.randperm(n, generator=cpu_generator(derive_seed(seed, "lora/order", epoch)))
        picked.append(int(orders[epoch][position % n]))
    return torch.tensor(picked)


def _backward_and_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    params: list[torch.nn.Parameter],
    max_grad_norm: float,
) -> None:
    """Backward, clip, step; with fp16 the loss is scaled (GradScaler) and unscaled before clipping."""
    if scaler is None:
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
    optimizer.zero_grad(set_to_none=True)
