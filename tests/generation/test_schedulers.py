"""Catalog scheduler names become diffusers schedulers built from the model's own config."""

from __future__ import annotations

from types import SimpleNamespace

import diffusers
import pytest

from diffusion_assets.generation.schedulers import apply_scheduler, sampler_name

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
