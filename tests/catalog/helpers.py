"""Small files for catalog tests: safetensors adapters from tensor names and shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from diffusion_assets.catalog.model_files import weight_shapes


def write_adapter(path: Path, shapes: dict[str, tuple[int, ...]], metadata: dict | None = None) -> Path:
    """A safetensors file holding zero tensors of the given names and shapes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {name: np.zeros(shape, dtype=np.float32) for name, shape in shapes.items()}, str(path), metadata
    )
    return path


def lora_for(
    folder: Path,
    component: str = "unet",
    layout: str = "diffusers",
    every: str = ".to_k.weight",
    rank: int = 4,
) -> dict[str, tuple[int, ...]]:
    """LoRA tensor shapes fitting every weight of a model folder's component whose name ends with
    ``every``, in one of the layouts LoRA files use:

    - ``diffusers``: ``unet.<module>.lora.down.weight`` / ``.lora.up.weight`` (diffusers' legacy format);
    - ``processor``: ``unet.<attention>.processor.to_k_lora.down.weight`` (older diffusers);
    - ``peft``: ``unet.<module>.lora_A.default.weight`` / ``.lora_B.default.weight``;
    - ``kohya``: ``lora_unet_<module with _>.lora_down.weight`` / ``.lora_up.weight`` and ``.alpha``.
    """
    prefix = {"unet": "unet", "transformer": "transformer", "text_encoder": "text_encoder"}[component]
    kohya = {"unet": "lora_unet", "transformer": "lora_unet", "text_encoder": "lora_te"}[component]
    tensors: dict[str, tuple[int, ...]] = {}
    for name, shape in weight_shapes(folder / component).items():
        if not name.endswith(every):
            continue
        module = name.removesuffix(".weight")
        if component == "text_encoder" and not module.startswith("text_model."):
            module = "text_model." + module  # the loaded module's name (transformers 5 saves it without)
        down, up = (rank, *shape[1:]), (shape[0], rank)
        if layout == "diffusers":
            tensors |= {f"{prefix}.{module}.lora.down.weight": down, f"{prefix}.{module}.lora.up.weight": up}
        elif layout == "processor":  # diffusers' attention-processor era: <attn>.processor.to_k_lora.down
            attn, _, projection = module.rpartition(".")
            stem = f"{prefix}.{attn}.processor.{projection}_lora"
            tensors |= {f"{stem}.down.weight": down, f"{stem}.up.weight": up}
        elif layout == "peft":
            tensors |= {
                f"{prefix}.{module}.lora_A.default.weight": down,
                f"{prefix}.{module}.lora_B.default.weight": up,
            }
        else:
            stem = f"{kohya}_{module.replace('.', '_')}"
            tensors |= {f"{stem}.lora_down.weight": down, f"{stem}.lora_up.weight": up, f"{stem}.alpha": ()}
    return tensors
