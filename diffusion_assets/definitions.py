"""The ``diffusion_assets`` code location."""

import dagster as dg

from diffusion_assets.defs.automation import (
    automation_condition_sensor,
    catalog_sensor,
    dataset_spec_sensor,
    nightly_generation,
)
from diffusion_assets.defs.captioning import CaptionerResource, image_captions
from diffusion_assets.defs.datasets import lora_dataset
from diffusion_assets.defs.evaluation import evaluation_report, model_comparison
from diffusion_assets.defs.generation import generated_images
from diffusion_assets.defs.jobs import JOBS
from diffusion_assets.defs.partitions import lora_dataset_spec, prompt_catalog
from diffusion_assets.defs.pool import gpu_pool_sensor, owned_in_process_executor
from diffusion_assets.defs.resources import GpuResource, ProjectResource
from diffusion_assets.defs.shapes import shapes_clip, shapes_tiny, shapes_unet, shapes_vae
from diffusion_assets.defs.source_files import catalog_valid, spec_valid
from diffusion_assets.defs.theory import theory_report
from diffusion_assets.defs.training import lora_adapter

defs = dg.Definitions(
    assets=[
        prompt_catalog,
        lora_dataset_spec,
        generated_images,
        image_captions,
        lora_dataset,
        lora_adapter,
        evaluation_report,
        shapes_vae,
        shapes_clip,
        shapes_unet,
        shapes_tiny,
        theory_report,
        model_comparison,
    ],
    asset_checks=[catalog_valid, spec_valid],
    jobs=JOBS,
    sensors=[catalog_sensor, dataset_spec_sensor, automation_condition_sensor, gpu_pool_sensor],
    schedules=[nightly_generation],
    resources={"gpu": GpuResource(), "project": ProjectResource(), "captioner": CaptionerResource()},
    # every job, the UI's ad-hoc asset runs included: a GPU step lives and dies with its run worker
    executor=owned_in_process_executor,
)
