"""The "LoRA applies" check: does loading the adapter change images, and only when it is switched on?

Three images of one prompt from one CPU seed: the base pipeline alone, then with the adapter loaded at
weight 0 and at weight 1. A sound adapter gives (a) weight 0 == base, byte for byte (loading must not
disturb the base weights: peft adds ``0 * B A x``), and (b) weight 1 != base by more than a small mean
absolute pixel difference. An adapter whose ``lora_up``/``lora_B`` tensors are zero (never trained, or
saved before its first step) fails (b).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline

from diffusion_assets.seeds import cpu_generator
from diffusion_assets.training.families import family_of

ADAPTER_NAME = "under_test"
DEFAULT_MIN_MEAN_ABS_DIFF = 0.5
"""Mean absolute difference (0-255 scale) that weight 1 must exceed: half a grey level over the image."""


def lora_applies(
    base_model_dir: str | Path,
    adapter_path: str | Path,
    prompt: str,
    seed: int,
    steps: int,
    size: int,
    *,
    min_mean_abs_diff: float = DEFAULT_MIN_MEAN_ABS_DIFF,
    guidance_scale: float | None = None,
    device: str = "cpu",
    call_kwargs: dict | None = None,
) -> tuple[bool, dict]:
    """Return ``(passed, details)`` for an adapter file (or folder) on its base model.

    ``details`` holds ``zero_equals_base`` (bool), ``mean_abs_diff`` (weight 1 vs base, 0-255 scale),
    ``max_abs_diff``, ``threshold`` and a ``reason`` naming what failed.
    """
    # 1. the base image, before any adapter is loaded
    pipe = DiffusionPipeline.from_pretrained(base_model_dir, dtype=torch.float32).to(device)
    pipe.set_progress_bar_config(disable=True)
    family = family_of(pipe)
    kwargs = dict(call_kwargs or {})
    if guidance_scale is not None:
        kwargs["guidance_scale"] = guidance_scale

    def render() -> np.ndarray:
        with torch.no_grad():
            image = pipe(
                prompt,
                height=size,
                width=size,
                num_inference_steps=steps,
                generator=cpu_generator(seed),
                **kwargs,
            ).images[0]
        return np.asarray(image.convert("RGB"), dtype=np.uint8)

    base = render()
    # 2. the same call with the adapter loaded, at weight 0 and at weight 1
    adapter_path = Path(adapter_path)
    folder, name = (adapter_path, None) if adapter_path.is_dir() else (adapter_path.parent, adapter_path.name)
    pipe.load_lora_weights(folder, weight_name=name, adapter_name=ADAPTER_NAME)
    pipe.set_adapters([ADAPTER_NAME], adapter_weights=[0.0])
    at_zero = render()
    pipe.set_adapters([ADAPTER_NAME], adapter_weights=[1.0])
    at_one = render()
    # 3. compare
    zero_equals_base = at_zero.tobytes() == base.tobytes()
    diff = np.abs(at_one.astype(np.int16) - base.astype(np.int16))
    details = {
        "family": family.name,
        "zero_equals_base": zero_equals_base,
        "zero_max_abs_diff": int(np.abs(at_zero.astype(np.int16) - base.astype(np.int16)).max()),
        "mean_abs_diff": float(diff.mean()),
        "max_abs_diff": int(diff.max()),
        "threshold": float(min_mean_abs_diff),
    }
    reasons = []
    if not zero_equals_base:
        reasons.append("weight 0 changed the image: loading the adapter altered the base model")
    if details["mean_abs_diff"] <= min_mean_abs_diff:
        reasons.append(
            f"weight 1 changed the image by {details['mean_abs_diff']:.3f} mean abs (<= {min_mean_abs_diff}): "
            "the adapter is a no-op (zero lora_up/lora_B?) or too weak for this prompt"
        )
    details["reason"] = "; ".join(reasons) or "ok"
    return not reasons, details
