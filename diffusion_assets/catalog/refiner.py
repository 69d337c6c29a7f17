"""Whether SDXL's base and refiner each run at least one step for a given ``steps`` and ``refiner_switch``.

diffusers splits one timestep schedule at ``cutoff = round(T - switch * T)`` (``T`` =
``num_train_timesteps``): the base (``denoising_end=switch``) runs the timesteps ``>= cutoff`` and the
refiner (``denoising_start=switch``) those ``< cutoff`` (``pipeline_stable_diffusion_xl.py`` step 8.1 and
``StableDiffusionXLImg2ImgPipeline.get_timesteps``). With few steps one side can get none: at
``steps: 2, refiner_switch: 0.3`` SDXL's Euler schedule is ``[501, 1]``, the cutoff 700, so the base runs
nothing and the refiner denoises pure noise. So only the largest and smallest timestep matter; they are
restated here from each scheduler's ``set_timesteps`` (diffusers 0.42), without importing diffusers.
``tests/catalog/test_refiner.py`` checks the restatement against diffusers itself.
"""

from __future__ import annotations

import numpy as np

SDXL_SCHEDULER = {
    "_class_name": "EulerDiscreteScheduler",
    "num_train_timesteps": 1000,
    "steps_offset": 1,
    "timestep_spacing": "leading",
}
"""The scheduler config of stabilityai/stable-diffusion-xl-base-1.0 and -refiner-1.0, as far as the split
depends on it: used when a folder is not on this machine."""

# catalog scheduler name → (diffusers class, use_karras_sigmas); "default" keeps the model's own
_NAMED = {
    "euler": ("EulerDiscreteScheduler", False),
    "euler_a": ("EulerAncestralDiscreteScheduler", False),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", False),
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler", True),
    "ddim": ("DDIMScheduler", False),
    "pndm": ("PNDMScheduler", False),
    "lms": ("LMSDiscreteScheduler", False),
    "heun": ("HeunDiscreteScheduler", False),
    "unipc": ("UniPCMultistepScheduler", False),
}
_DEFAULT_SPACING = {"DDIMScheduler": "leading", "PNDMScheduler": "leading"}  # the others: linspace
_KARRAS = {"EulerDiscreteScheduler", "LMSDiscreteScheduler", "HeunDiscreteScheduler"}
_KARRAS_FULL_RANGE = {"DPMSolverMultistepScheduler", "UniPCMultistepScheduler"}
_N_PLUS_ONE = {"DPMSolverMultistepScheduler", "UniPCMultistepScheduler"}


def timestep_range(scheduler: str, model_config: dict, steps: int) -> tuple[float, float]:
    """``(largest, smallest)`` timestep of the schedule a catalog ``scheduler`` builds from a model's
    scheduler config for ``steps`` steps."""
    if scheduler in _NAMED:
        cls, karras = _NAMED[scheduler]
    else:
        cls, karras = (
            model_config.get("_class_name", "EulerDiscreteScheduler"),
            bool(model_config.get("use_karras_sigmas")),
        )
    T = int(model_config.get("num_train_timesteps", 1000))  # noqa: N806 - the papers' T
    offset = int(model_config.get("steps_offset", 0))
    spacing = model_config.get("timestep_spacing") or _DEFAULT_SPACING.get(cls, "linspace")
    if karras and cls in _KARRAS_FULL_RANGE:  # Karras sigmas over the whole trained range
        return float(T - 1), 0.0 if steps > 1 else float(T - 1)
    if spacing == "trailing":
        timesteps = np.arange(T, 0, -T / steps).round() - 1
    elif cls in _N_PLUS_ONE:  # steps + 1 points, the smallest dropped
        grid = (
            np.linspace(0, T - 1, steps + 1).round()
            if spacing == "linspace"
            else np.arange(0, steps + 1) * (T // (steps + 1)) + offset
        )
        timesteps = grid[1:]
    else:
        timesteps = (
            np.linspace(0, T - 1, steps)
            if spacing == "linspace"
            else np.arange(0, steps) * (T // steps) + offset
        )
    if cls == "PNDMScheduler" and not model_config.get("skip_prk_steps", False) and steps >= 4:
        # Runge-Kutta warm-up over the four largest timesteps, each also half a step later
        ascending = np.sort(timesteps)
        prk = np.repeat(ascending[-4:], 2) + np.tile([0, T // steps // 2], 4)
        timesteps = np.concatenate([prk[:-1].repeat(2)[1:-1], ascending[:-3]])
    # Karras sigmas of the Euler family span the sigmas of these same timesteps, so the ends are kept
    return float(np.max(timesteps)), float(np.min(timesteps))


def split_problem(
    steps: int, switch: float, scheduler: str, base_config: dict, refiner_config: dict
) -> str | None:
    """Why the base or the refiner would run no step (None when both run at least one)."""
    base_t = int(base_config.get("num_train_timesteps", 1000))
    refiner_t = int(refiner_config.get("num_train_timesteps", 1000))
    base_cut = int(round(base_t - switch * base_t))
    refiner_cut = int(round(refiner_t - switch * refiner_t))
    base_high, _ = timestep_range(scheduler, base_config, steps)
    _, refiner_low = timestep_range(scheduler, refiner_config, steps)
    if base_high < base_cut:
        return (
            f"with {steps} steps the base model runs no step before the switch at {switch} (its first "
            f"timestep is {base_high:g}, the switch is at timestep {base_cut}), so the refiner would "
            "denoise pure noise"
        )
    if refiner_low >= refiner_cut:
        return (
            f"with {steps} steps the refiner runs no step after the switch at {switch} (its last timestep "
            f"is {refiner_low:g}, the switch is at timestep {refiner_cut}), so it would not refine anything"
        )
    return None
