"""Catalog scheduler names → diffusers scheduler classes, and the A1111 sampler names.

A named sampler is the same sampler on every model: the settings that *define* a sampler (its
sigma schedule, solver order and algorithm, how the last step ends: ``DEFINING``) are set from the
name, whatever the model folder's ``scheduler_config.json`` holds; only what describes the *model*
(betas, prediction type, timestep spacing, steps offset, shift) carries over from the model's own
config. Without this, a model shipped with ``use_karras_sigmas: true`` silently turns ``euler`` and
``dpmpp_2m`` into their Karras variants while the row says otherwise.
"""

from __future__ import annotations

import inspect
import json

import diffusers

# name: (diffusers class, settings beyond the class defaults, A1111 "Sampler" name). A1111's names
# and their diffusers equivalents: the diffusers scheduler overview ("A1111 / k-diffusion" table).
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

# constructor arguments that define the sampler rather than the model; each named sampler sets every
# one its class accepts, to the class default unless the name says otherwise
DEFINING = (
    "use_karras_sigmas",
    "use_exponential_sigmas",
    "use_beta_sigmas",
    "use_lu_lambdas",
    "use_flow_sigmas",
    "algorithm_type",
    "solver_order",
    "solver_type",
    "final_sigmas_type",
    "euler_at_final",
    "lower_order_final",
    "stochastic_sampling",
)
_SIGMA_SUFFIX = {
    "use_karras_sigmas": "Karras",
    "use_exponential_sigmas": "Exponential",
    "use_beta_sigmas": "Beta",
}
_A1111_BY_CLASS: dict[str, str] = {}
for _cls, _extra, _a1111 in SCHEDULERS.values():
    if not _extra:
        _A1111_BY_CLASS.setdefault(_cls, _a1111)


def sampler_settings(name: str) -> tuple[type, dict]:
    """The diffusers class of catalog scheduler ``name`` and every defining setting it fixes.

    Raises ``KeyError`` for a name not in ``SCHEDULERS`` (catalog validation refuses those first).
    """
    cls = getattr(diffusers, SCHEDULERS[name][0])
    params = _parameters(cls)
    return cls, {**{key: params[key].default for key in DEFINING if key in params}, **SCHEDULERS[name][1]}


def _parameters(cls: type) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(cls.__init__).parameters)


def apply_scheduler(pipe, name: str, default_config: dict) -> None:
    """Set ``pipe.scheduler`` for catalog scheduler ``name``; ``default`` restores the model's own.

    The new scheduler is built ``from_config`` of the model's original config, so prediction type,
    beta schedule and timestep spacing carry over (this matters for v-prediction models), with the
    sampler's defining settings (``DEFINING``) forced by the name; keys the class does not take
    (another class's settings) are left out. It is rebuilt for every batch: a
    setting of the previous batch's scheduler must never carry over into the next batch.
    """
    config = {k: v for k, v in default_config.items() if not k.startswith("_")}
    if name == "default":
        pipe.scheduler = getattr(diffusers, default_config["_class_name"]).from_config(config)
        return
    cls, settings = sampler_settings(name)
    # a key the class does not take would be kept in its config and recorded, though unused
    accepted = {k: v for k, v in config.items() if k in _parameters(cls)}
    pipe.scheduler = cls.from_config({**accepted, **settings})


def sampler_name(scheduler) -> str:
    """The A1111 name of a scheduler instance, from its actual config: e.g. ``DPM++ 2M Karras``
    for a ``DPMSolverMultistepScheduler`` with ``use_karras_sigmas``; else the class name."""
    cls_name = scheduler.__class__.__name__
    name = _A1111_BY_CLASS.get(cls_name, cls_name)
    suffixes = [suffix for key, suffix in _SIGMA_SUFFIX.items() if scheduler.config.get(key)]
    return " ".join([name, *suffixes])


def scheduler_config_json(scheduler) -> str:
    """The scheduler's config as canonical JSON for manifests and embedded rows: diffusers' private
    keys (``_class_name``, ``_diffusers_version``, and ``_use_default_values``, a list whose order
    follows ``PYTHONHASHSEED``) are left out and keys sorted, so the same scheduler gives the same
    bytes in every process. The class is recorded beside it (``scheduler_class``)."""
    public = {k: v for k, v in dict(scheduler.config).items() if not k.startswith("_")}
    return json.dumps(public, sort_keys=True, default=str)
