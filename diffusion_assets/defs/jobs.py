"""Jobs: the stages a user (or a sensor, schedule or the demo command) launches as one run each."""

import dagster as dg

from diffusion_assets.deploy import gpu_tags

from .captioning import image_captions
from .datasets import lora_dataset
from .evaluation import evaluation_report
from .generation import generated_images
from .training import lora_adapter

generate_catalog_job = dg.define_asset_job(
    "generate_catalog",
    tags=gpu_tags(),  # a GPU per run pod on Kubernetes (deploy/k8s/gpu_run.yaml); ignored elsewhere
    selection=[generated_images],
    description="Generate one catalog × date partition of images.",
)
caption_catalog_job = dg.define_asset_job(
    "caption_catalog",
    tags=gpu_tags(),  # a GPU per run pod on Kubernetes (deploy/k8s/gpu_run.yaml); ignored elsewhere
    selection=[image_captions],
    description="Caption one catalog × date partition of images.",
)
build_dataset_job = dg.define_asset_job(
    "build_lora_dataset",
    selection=[lora_dataset],
    description="Build one LoRA dataset version from its spec.",
)
train_lora_job = dg.define_asset_job(
    "train_lora",
    tags=gpu_tags(),  # a GPU per run pod on Kubernetes (deploy/k8s/gpu_run.yaml); ignored elsewhere
    selection=[lora_dataset, lora_adapter, evaluation_report],
    description="Build the dataset, train its LoRA and evaluate it; the blocking checks stop a no-op adapter.",
)
JOBS = [generate_catalog_job, caption_catalog_job, build_dataset_job, train_lora_job]
