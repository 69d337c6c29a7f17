"""Beta schedules match the papers and diffusers' independent implementation."""

import pytest
import torch
from diffusers import DDPMScheduler

from diffusion_assets.theory.schedules import (
    NoiseSchedule,
    cosine_betas,
    linear_betas,
    make_schedule,
    rescale_zero_terminal_snr,
    scaled_linear_betas,
)

NAMES = ["linear", "cosine", "scaled_linear"]

# our schedule name -> the DDPMScheduler config that should give the same alphas_cumprod
DIFFUSERS_CONFIGS = {
    "linear": {"beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02},
    "cosine": {"beta_schedule": "squaredcos_cap_v2"},
    "scaled_linear": {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012},
}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("zero_terminal_snr", [False, True])
def test_alphas_cumprod_matches_diffusers(name, zero_terminal_snr):
    ours = make_schedule(name, zero_terminal_snr=zero_terminal_snr).alphas_cumprod
    theirs = DDPMScheduler(
        num_train_timesteps=1000, rescale_betas_zero_snr=zero_terminal_snr, **DIFFUSERS_CONFIGS[name]
    ).alphas_cumprod
    # diffusers accumulates in float32 (about 5e-7 of drift over 1000 steps); we keep float64.
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, theirs.to(torch.float64), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("betas", "first", "last"),
    [
        (linear_betas(), 1e-4, 0.02),
        (scaled_linear_betas(), 0.00085, 0.012),
        (linear_betas(10, 0.1, 0.5), 0.1, 0.5),
    ],
)
def test_linear_family_endpoints(betas, first, last):
    assert betas[0].item() == pytest.approx(first, rel=1e-12)
    assert betas[-1].item() == pytest.approx(last, rel=1e-12)


def test_scaled_linear_is_linear_in_sqrt_beta():
    steps = scaled_linear_betas().sqrt().diff()
    torch.testing.assert_close(steps, torch.full_like(steps, steps[0].item()), rtol=1e-9, atol=0)


def test_cosine_betas_are_clipped_at_0_999():
    betas = cosine_betas()
    assert betas.max().item() == 0.999
    assert betas[-1].item() == 0.999


@pytest.mark.parametrize("name", NAMES)
def test_alphas_cumprod_decreases_strictly(name):
    assert (make_schedule(name).alphas_cumprod.diff() < 0).all()


def test_cosine_alphas_cumprod_ends_near_zero():
    assert make_schedule("cosine").alphas_cumprod[-1].item() < 1e-6


def test_linear_alphas_cumprod_ends_near_but_not_at_zero():
    # Lin et al. 2023, Sec. 3.1: the linear schedule leaves SNR(T) > 0 (sqrt(alpha_bar_T) ~ 0.0064)
    assert 1e-5 < make_schedule("linear").alphas_cumprod[-1].item() < 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_zero_snr_rescale_makes_last_alpha_cumprod_exactly_zero(name):
    schedule = make_schedule(name, zero_terminal_snr=True)
    assert schedule.alphas_cumprod[-1].item() == 0.0
    assert schedule.snr[-1].item() == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_zero_snr_rescale_keeps_first_alpha_cumprod(name):
    before = make_schedule(name).alphas_cumprod[0].item()
    after = make_schedule(name, zero_terminal_snr=True).alphas_cumprod[0].item()
    assert after == pytest.approx(before, rel=1e-12)


def test_zero_snr_rescale_is_affine_in_sqrt_alpha_cumprod():
    # Lin et al. 2023, Alg. 1 maps sqrt(alpha_bar) by an affine function, so its steps scale uniformly.
    before = NoiseSchedule.from_betas(linear_betas()).alphas_cumprod.sqrt().diff()
    after = NoiseSchedule.from_betas(rescale_zero_terminal_snr(linear_betas())).alphas_cumprod.sqrt().diff()
    ratio = after / before
    torch.testing.assert_close(ratio, torch.full_like(ratio, ratio[0].item()), rtol=1e-9, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_snr_is_alpha_bar_over_one_minus_alpha_bar(name):
    schedule = make_schedule(name)
    ab = schedule.alphas_cumprod
    torch.testing.assert_close(schedule.snr, ab / (1 - ab))
    torch.testing.assert_close(schedule.log_snr, torch.log(ab) - torch.log1p(-ab))


def test_posterior_variance_is_zero_at_first_step_and_below_beta_after():
    schedule = make_schedule("linear")
    assert schedule.posterior_variance[0].item() == 0.0
    # Ho et al. 2020, Sec. 3.2: beta_tilde_t <= beta_t
    assert (schedule.posterior_variance[1:] < schedule.betas[1:]).all()


def test_alphas_cumprod_prev_is_shifted_alphas_cumprod():
    schedule = make_schedule("cosine")
    assert schedule.alphas_cumprod_prev[0].item() == 1.0
    torch.testing.assert_close(schedule.alphas_cumprod_prev[1:], schedule.alphas_cumprod[:-1])


def test_num_timesteps_follows_betas():
    assert make_schedule("linear", num_timesteps=50).num_timesteps == 50


def test_unknown_schedule_name_is_rejected_with_choices():
    with pytest.raises(ValueError, match="cosine"):
        make_schedule("sigmoid")
