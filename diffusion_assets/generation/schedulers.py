"""Catalog scheduler names → diffusers scheduler classes, and the A1111 sampler names."""

from __future__ import annotations

import diffusers

# name: (diffusers class, extra config, A1111 "Sampler" name)
SCHEDULERS: dict[str, tuple[str, dict, str]] = {
    "euler": ("EulerDiscreteScheduler", {}, "Euler"),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}, "Euler a"),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {}, "DPM++ 2M"),
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}, "DPM++ 2M Karras"),
    "ddim": ("DDIMScheduler", {}, "DDIM"),
    "pndm": ("PNDMScheduler", {}, "PLMS"),
    "lms": ("LMSDiscreteScheduler", {}, "LMS"),
    "heun": ("HeunDiscreteScheduler", {}, "Heun"),
    "unipc": ("UniPCMultistepScheduler", {}, "UniPC"),
    "flow_match_euler": ("FlowMatchEulerDiscreteScheduler", {}, "Euler"),
}

_A1111_BY_CLASS = {cls: a1111 for cls, extra, a1111 in SCHEDULERS.values() if not extra}


def apply_scheduler(pipe, name: str, default_config: dict) -> None:
    """Set ``pipe.scheduler`` for catalog scheduler ``name``; ``default`` restores the model's own.

    The new scheduler is built ``from_config`` of the model's original config, so prediction type,
    beta schedule and timestep spacing carry over (this matters for v-prediction models). It is
    rebuilt for every batch: a setting of the previous batch's scheduler that the model's own config
    does not name (e.g. ``use_karras_sigmas``) must never carry over into the next batch.
    """
    config = {k: v for k, v in default_config.items() if not k.startswith("_")}
    if name == "default":
        cls_name, extra = default_config["_class_name"], {}
    else:
        cls_name, extra, _ = SCHEDULERS[name]
    pipe.scheduler = getattr(diffusers, cls_name).from_config(config, **extra)


def sampler_name(scheduler) -> str:
    """The A1111 name of a scheduler instance, e.g. ``DPM++ 2M Karras``; else the class name."""
    cls_name = scheduler.__class__.__name__
    if cls_name == "DPMSolverMultistepScheduler" and scheduler.config.get("use_karras_sigmas"):
        return "DPM++ 2M Karras"
    return _A1111_BY_CLASS.get(cls_name, cls_name)
