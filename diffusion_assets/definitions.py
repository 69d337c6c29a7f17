"""The ``diffusion_assets`` code location."""

import dagster as dg

from diffusion_assets.defs.automation import catalog_sensor, generate_catalog_job, nightly_generation
from diffusion_assets.defs.generation import generated_images
from diffusion_assets.defs.resources import GpuResource, ProjectResource

defs = dg.Definitions(
    assets=[generated_images],
    jobs=[generate_catalog_job],
    sensors=[catalog_sensor],
    schedules=[nightly_generation],
    resources={"gpu": GpuResource(), "project": ProjectResource()},
)
