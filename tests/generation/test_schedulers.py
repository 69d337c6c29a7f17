"""Catalog scheduler names become diffusers schedulers built from the model's own config."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import diffusers
import pytest
import torch

from diffusion_assets.generation.schedulers import SCHEDULERS, apply_scheduler, sampler_name, sampler_settings

# SD1.5's shipped scheduler: PNDM, whose config has no `use_karras_sigmas`
PNDM = {
    "_class_name": "PNDMScheduler",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "skip_prk_steps": True,
    "steps_offset": 1,
}


def pipe_with_default() -> SimpleNamespace:
    return SimpleNamespace(scheduler=diffusers.PNDMScheduler.from_config(PNDM))


@pytest.mark.parametrize(
    ("name", "cls", "sampler"),
    [
        ("default", "PNDMScheduler", "PLMS"),
        ("euler_a", "EulerAncestralDiscreteScheduler", "Euler a"),
        ("dpmpp_2m", "DPMSolverMultistepScheduler", "DPM++ 2M"),
        ("dpmpp_2m_karras", "DPMSolverMultistepScheduler", "DPM++ 2M Karras"),
    ],
)
def test_each_name_gives_its_class_and_sampler(name, cls, sampler):
    pipe = pipe_with_default()
    apply_scheduler(pipe, name, PNDM)
    assert type(pipe.scheduler).__name__ == cls
    assert sampler_name(pipe.scheduler) == sampler
    assert pipe.scheduler.config.beta_schedule == "scaled_linear"  # the model's config carries over


@pytest.mark.parametrize("previous", ["dpmpp_2m_karras", "euler", "default"])
def test_no_setting_of_the_previous_batch_carries_over(previous):
    fresh, reused = pipe_with_default(), pipe_with_default()
    apply_scheduler(fresh, "dpmpp_2m", PNDM)
    apply_scheduler(reused, previous, PNDM)
    apply_scheduler(reused, "dpmpp_2m", PNDM)
    assert dict(reused.scheduler.config) == dict(fresh.scheduler.config)
    assert sampler_name(reused.scheduler) == "DPM++ 2M"


# Issue 10 item 6: model folders whose own scheduler config turns a defining flag on. diffusers
# refuses more than one of the karras / exponential / beta sigma flags at once, so one per config.
MODEL_FLAGS = [
    {"use_karras_sigmas": True},
    {"use_exponential_sigmas": True},
    {"use_beta_sigmas": True},
    {"use_lu_lambdas": True},
    {"final_sigmas_type": "denoise_to_zero"},
    {"algorithm_type": "sde-dpmsolver++", "solver_order": 3, "solver_type": "heun"},
    {"euler_at_final": True, "lower_order_final": False},
]


@pytest.mark.parametrize("flags", MODEL_FLAGS, ids=lambda f: ",".join(f))
@pytest.mark.parametrize("name", [n for n in SCHEDULERS if n != "flow_match_euler"])
def test_a_named_sampler_is_exactly_that_sampler_whatever_the_model_config_says(name, flags):
    """The requested sampler is the one used and recorded: its sigmas equal those of the sampler
    built from the model's config *without* the flags, and its A1111 name is the name's own."""
    cls_name, _, a1111 = SCHEDULERS[name]
    cls = getattr(diffusers, cls_name)
    model_config = {**PNDM, **flags}
    flagged, clean = pipe_with_default(), pipe_with_default()
    apply_scheduler(flagged, name, model_config)
    apply_scheduler(clean, name, PNDM)
    assert type(flagged.scheduler) is cls
    assert sampler_name(flagged.scheduler) == a1111
    for key in sampler_settings(name)[1]:
        assert flagged.scheduler.config[key] == clean.scheduler.config[key], key
    for scheduler in (flagged.scheduler, clean.scheduler):
        scheduler.set_timesteps(12)
    assert torch.equal(flagged.scheduler.timesteps, clean.scheduler.timesteps)
    if hasattr(clean.scheduler, "sigmas"):
        assert torch.equal(flagged.scheduler.sigmas, clean.scheduler.sigmas)


@pytest.mark.parametrize("flags", MODEL_FLAGS[:3], ids=lambda f: ",".join(f))
def test_flow_match_euler_ignores_a_flow_models_sigma_flags(flags):
    flux = {
        "_class_name": "FlowMatchEulerDiscreteScheduler",
        "num_train_timesteps": 1000,
        "shift": 3.0,
        "use_dynamic_shifting": False,
    }
    flagged, clean = pipe_with_default(), pipe_with_default()
    apply_scheduler(flagged, "flow_match_euler", {**flux, **flags})
    apply_scheduler(clean, "flow_match_euler", flux)
    for scheduler in (flagged.scheduler, clean.scheduler):
        scheduler.set_timesteps(8)
    assert torch.equal(flagged.scheduler.sigmas, clean.scheduler.sigmas)
    assert flagged.scheduler.config.shift == 3.0  # a model setting carries over
    assert sampler_name(flagged.scheduler) == "Euler"


def test_the_default_scheduler_is_labelled_by_its_actual_flags():
    karras = {**PNDM, "_class_name": "EulerDiscreteScheduler", "use_karras_sigmas": True}
    pipe = pipe_with_default()
    apply_scheduler(pipe, "default", karras)
    assert sampler_name(pipe.scheduler) == "Euler Karras"


def test_the_recorded_config_is_the_same_text_in_every_process():
    """diffusers' ``_use_default_values`` is a list built from a set: its order follows
    ``PYTHONHASHSEED``. The recorded JSON leaves private keys out and sorts the rest."""
    code = (
        "import diffusers; from diffusion_assets.generation.schedulers import scheduler_config_json;"
        "s = diffusers.EulerDiscreteScheduler();"
        "print(s.config['_use_default_values']); print(scheduler_config_json(s))"
    )
    outputs = [
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
        ).stdout.splitlines()
        for seed in ("1", "2", "3")
    ]
    assert len({private for private, _ in outputs}) > 1  # the private list does vary
    assert len({public for _, public in outputs}) == 1
    assert "_use_default_values" not in outputs[0][1] and "_class_name" not in outputs[0][1]
