"""``ShapesRenderPipeline``: the shapes world's exact renderer behind the diffusers pipeline API.

It draws what a shapes-world prompt says (colour, shape, background, style) with jitter taken
from each image's CPU generator. It is the "photographer" of the offline world: LoRA style
datasets (outlined shapes, which no trained model can draw yet) are generated through the same
``generated_images`` asset, so every training image has a manifest row, a seed and lineage.
It has no weights; ``save_pretrained`` writes a ``model_index.json`` and a scheduler config so it
loads through the same registry path as any other model.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import DDIMScheduler, DiffusionPipeline
from diffusers.pipelines.pipeline_utils import ImagePipelineOutput
from PIL import Image

from diffusion_assets.shapes.captions import parse_caption
from diffusion_assets.shapes.world import draw, random_placement, to_pil


class ShapesRenderPipeline(DiffusionPipeline):
    """Renders shapes-world prompts exactly; the scheduler is stored only so the API is uniform."""

    def __init__(self, scheduler: DDIMScheduler):
        super().__init__()
        self.register_modules(scheduler=scheduler)

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        generator: torch.Generator | list[torch.Generator] | None = None,
        width: int = 32,
        height: int = 32,
        **_ignored,
    ) -> ImagePipelineOutput:
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        generators = generator if isinstance(generator, list) else [generator] * len(prompts)
        images = []
        for text, gen in zip(prompts, generators, strict=True):
            # one integer from the image's own generator seeds its jitter: batch-position independent
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen).item()) if gen is not None else 0
            array = draw(parse_caption(text), random_placement(np.random.default_rng(seed)))
            images.append(to_pil(array).resize((width, height), Image.Resampling.NEAREST))
        return ImagePipelineOutput(images=images)


def save_render_pipeline(folder) -> None:
    """Write the weightless pipeline folder (``models/shapes-render``)."""
    ShapesRenderPipeline(DDIMScheduler()).save_pretrained(folder)


CUSTOM_PIPELINES = {"ShapesRenderPipeline": ShapesRenderPipeline}
