"""The generation loop: batches of ``ImageJob``s through a loaded pipeline, one CPU generator per image.

Each family gets the call its pipeline expects: SD/SDXL take CFG and a negative prompt; the SDXL
refiner continues from the base's latents (``denoising_end`` / ``denoising_start``); Flux-schnell
ignores guidance, Flux-dev's guidance is an embedding, and a Flux negative prompt only acts through
``true_cfg_scale``. Catalog validation has already rejected combinations that would be ignored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PIL import Image

from diffusion_assets.catalog.expand import ImageJob
from diffusion_assets.generation.control import control_image
from diffusion_assets.generation.schedulers import apply_scheduler
from diffusion_assets.models.hashing import folder_hash
from diffusion_assets.models.loading import LoadedModel
from diffusion_assets.seeds import cpu_generator


@dataclass
class BatchResult:
    jobs: list[ImageJob]
    images: list[Image.Image]
    seconds: float
    batch_size: int


def plan_batches(jobs: list[ImageJob], batch_size: int) -> list[list[ImageJob]]:
    """Group jobs with identical call parameters, in catalog order, into batches of ``batch_size``."""
    groups: dict[tuple, list[ImageJob]] = {}
    for job in jobs:
        groups.setdefault(job.params.batch_signature(), []).append(job)
    return [group[i : i + batch_size] for group in groups.values() for i in range(0, len(group), batch_size)]


def plan_batches_following(
    jobs: dict[str, ImageJob], recorded: list[dict], batch_size: int
) -> list[tuple[str, list[ImageJob]]]:
    """``(batch_id, jobs)`` batches that follow the recorded layout, then lay out the rest.

    A batch of size 4 is not bit-identical to other batch sizes (NOTES: ~1e-5 float drift), so a
    resume or repair run at another ``batch_size`` (say, after an out-of-memory run) must make an image
    in the batch it was first made in: every recorded batch (rows with ``batch_id``/``batch_index``)
    whose members the catalog still wants and can still be batched together keeps its members, order
    and id. Jobs in no recorded batch are laid out anew with ``plan_batches`` at ``batch_size``; their
    batch id is the first member's image id. Batches come in catalog order of their first member.
    """
    order = {image_id: n for n, image_id in enumerate(jobs)}
    layout: dict[str, list[dict]] = {}
    for row in recorded:
        if row["image_id"] in jobs and row.get("batch_id"):
            layout.setdefault(row["batch_id"], []).append(row)
    batches: list[tuple[str, list[ImageJob]]] = []
    placed: set[str] = set()
    for batch_id, members in layout.items():
        members.sort(key=lambda r: r["batch_index"])
        batch = [jobs[r["image_id"]] for r in members]
        if len({job.params.batch_signature() for job in batch}) == 1:
            batches.append((batch_id, batch))
            placed.update(r["image_id"] for r in members)
    ids = {id(job): image_id for image_id, job in jobs.items()}
    rest = [job for image_id, job in jobs.items() if image_id not in placed]
    batches += [(ids[id(b[0])], b) for b in plan_batches(rest, batch_size)]
    return sorted(batches, key=lambda pair: min(order[ids[id(j)]] for j in pair[1]))


def _apply_lora(model: LoadedModel, job: ImageJob) -> None:
    pipe, params = model.pipe, job.params
    if params.lora_path is None:
        if model.loras:
            pipe.unload_lora_weights()
            model.loras.clear()
        return
    name = "lora_" + folder_hash(params.lora_path)[:12]
    if name not in model.loras:
        if model.loras:
            pipe.unload_lora_weights()
            model.loras.clear()
        pipe.load_lora_weights(str(params.lora_path), adapter_name=name)
        model.loras[name] = str(params.lora_path)
    pipe.set_adapters([name], adapter_weights=[params.lora_scale])


def call_kwargs(model: LoadedModel, batch: list[ImageJob]) -> dict:
    """The keyword arguments of the base pipeline call for one batch."""
    p = batch[0].params
    preset = p.preset
    kwargs = {
        "prompt": [j.prompt for j in batch],
        "num_inference_steps": p.steps,
        "width": p.width,
        "height": p.height,
        "generator": [cpu_generator(j.seed) for j in batch],
    }
    if preset.family == "flux":
        kwargs["guidance_scale"] = p.guidance
        if preset.max_sequence_length:
            kwargs["max_sequence_length"] = preset.max_sequence_length
        if p.true_cfg_scale:
            kwargs["negative_prompt"] = [j.negative_prompt for j in batch]
            kwargs["true_cfg_scale"] = p.true_cfg_scale
    else:
        kwargs["guidance_scale"] = p.guidance
        kwargs["negative_prompt"] = [j.negative_prompt for j in batch]
    if preset.controlnet_id:
        kwargs["image"] = [
            control_image(
                j.params.control_image, preset.control_preprocess, (p.width, p.height), model.depth_estimator
            )
            for j in batch
        ]
        kwargs["controlnet_conditioning_scale"] = p.controlnet_scale
    if model.refiner is not None:
        kwargs["denoising_end"] = p.refiner_switch
        kwargs["output_type"] = "latent"
    return kwargs


def generate_batch(model: LoadedModel, batch: list[ImageJob]) -> BatchResult:
    """Generate one batch; every image's noise comes from its own CPU generator."""
    start = time.perf_counter()
    p = batch[0].params
    # 1. sampler and adapter for this batch
    apply_scheduler(model.pipe, p.scheduler, model.default_scheduler_config)
    _apply_lora(model, batch[0])
    # 2. base pipeline (Podell et al. 2023: the base denoises the high-noise part for the refiner)
    kwargs = call_kwargs(model, batch)
    output = model.pipe(**kwargs)
    images = output.images
    # 3. refiner continues from the base's latents with the same per-image generators
    if model.refiner is not None:
        apply_scheduler(model.refiner, p.scheduler, model.refiner_scheduler_config)
        images = model.refiner(
            prompt=kwargs["prompt"],
            negative_prompt=kwargs["negative_prompt"],
            image=images,
            num_inference_steps=p.steps,
            denoising_start=p.refiner_switch,
            guidance_scale=p.guidance,
            generator=kwargs["generator"],
        ).images
    return BatchResult(batch, list(images), time.perf_counter() - start, len(batch))
