"""The from-scratch DDPM agrees with the paper's algebra and with diffusers' DDPMScheduler."""

import math

import pytest
import torch
from diffusers import DDPMScheduler
from torch import nn

from diffusion_assets.theory.ddpm import (
    p_sample_step,
    predict_x0,
    q_posterior,
    q_sample,
    sample,
    train_step,
    training_loss,
    velocity,
)
from diffusion_assets.theory.schedules import make_schedule

LINEAR = make_schedule("linear")
PREDICTION_TYPES = ["epsilon", "v_prediction"]


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny tensors on a shared 2-core machine: extra threads only add contention.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _diffusers(prediction_type="epsilon", clip_sample=False, float64=False, **config):
    """A linear DDPMScheduler; with ``float64`` its alpha_bar is swapped for ours so it steps in float64.

    As shipped it stores alpha_bar in float32 and recomputes beta_t = 1 - alpha_bar_t / alpha_bar_{t-1},
    which near t = 0 (beta ~ 1e-4) keeps only ~3 significant digits. In float64 the comparison tests the
    algorithm; ``test_alphas_cumprod_matches_diffusers`` covers the schedule itself.
    """
    scheduler = DDPMScheduler(
        beta_schedule="linear",
        variance_type="fixed_small",
        prediction_type=prediction_type,
        clip_sample=clip_sample,
        **config,
    )
    if float64:
        scheduler.alphas_cumprod = make_schedule(
            "linear", scheduler.config.num_train_timesteps
        ).alphas_cumprod
        scheduler.one = torch.tensor(1.0, dtype=torch.float64)
    return scheduler


# --- forward process q(x_t | x_0) ---------------------------------------------------------------


@pytest.mark.parametrize("t", [0, 250, 999])
def test_q_sample_has_the_mean_and_variance_of_eq_4(t):
    x0 = torch.full((200_000,), 0.8, dtype=torch.float64)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x_t = q_sample(LINEAR, x0, t, noise)
    ab = LINEAR.alphas_cumprod[t].item()
    assert x_t.mean().item() == pytest.approx(math.sqrt(ab) * 0.8, abs=0.01)
    assert x_t.var().item() == pytest.approx(1 - ab, abs=0.01)


def test_q_sample_at_last_linear_step_is_close_to_standard_normal():
    x0 = torch.rand(100_000, generator=torch.Generator().manual_seed(1)) * 2 - 1
    x_t = q_sample(LINEAR, x0, 999, torch.randn(x0.shape, generator=torch.Generator().manual_seed(2)))
    assert abs(x_t.mean().item()) < 0.01
    assert x_t.std().item() == pytest.approx(1.0, abs=0.01)


def test_q_sample_accepts_a_timestep_per_batch_item_and_matches_diffusers_add_noise():
    gen = torch.Generator().manual_seed(3)
    x0, noise = torch.randn(4, 3, 8, 8, generator=gen), torch.randn(4, 3, 8, 8, generator=gen)
    t = torch.tensor([0, 10, 500, 999])
    expected = _diffusers().add_noise(x0, noise, t)
    torch.testing.assert_close(q_sample(LINEAR, x0, t, noise), expected, rtol=1e-5, atol=1e-6)


def test_velocity_matches_diffusers_get_velocity():
    gen = torch.Generator().manual_seed(4)
    x0, noise = torch.randn(4, 2, generator=gen), torch.randn(4, 2, generator=gen)
    t = torch.tensor([1, 100, 700, 999])
    expected = _diffusers().get_velocity(x0, noise, t)
    torch.testing.assert_close(velocity(LINEAR, x0, t, noise), expected, rtol=1e-5, atol=1e-6)


# --- posterior and x0 recovery --------------------------------------------------------------------


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_predict_x0_inverts_the_true_target(prediction_type):
    gen = torch.Generator().manual_seed(5)
    x0, noise = torch.randn(6, 2, generator=gen, dtype=torch.float64), torch.randn(6, 2, generator=gen)
    noise = noise.double()
    t = torch.tensor([0, 1, 10, 100, 500, 998])
    x_t = q_sample(LINEAR, x0, t, noise)
    target = noise if prediction_type == "epsilon" else velocity(LINEAR, x0, t, noise)
    torch.testing.assert_close(predict_x0(LINEAR, target, t, x_t, prediction_type), x0)


@pytest.mark.parametrize("t", [1, 50, 500, 999])
def test_q_posterior_equals_gaussian_conditioning_of_the_forward_chain(t):
    # x_{t-1} = sqrt(ab_{t-1}) x0 + sqrt(1 - ab_{t-1}) e1 and x_t = sqrt(a_t) x_{t-1} + sqrt(b_t) e2 are
    # jointly Gaussian given x0; conditioning on x_t must reproduce Ho et al. 2020, Eqs. 6-7.
    ab_prev, ab, a = (LINEAR.alphas_cumprod_prev[t], LINEAR.alphas_cumprod[t], LINEAR.alphas[t])
    x0, x_t = torch.tensor([0.3, -1.2], dtype=torch.float64), torch.tensor([0.5, 0.9], dtype=torch.float64)
    cov = a.sqrt() * (1 - ab_prev)
    expected_mean = ab_prev.sqrt() * x0 + cov / (1 - ab) * (x_t - ab.sqrt() * x0)
    expected_var = (1 - ab_prev) - cov**2 / (1 - ab)
    mean, var = q_posterior(LINEAR, x0, x_t, t)
    torch.testing.assert_close(mean, expected_mean)
    torch.testing.assert_close(var, expected_var)


# --- reverse step and sampler ---------------------------------------------------------------------


# dtype the step runs in -> tolerance; float32 is diffusers as shipped (see _diffusers for the error)
STEP_PRECISION = {torch.float64: 1e-10, torch.float32: 2e-3}


@pytest.mark.parametrize("dtype", list(STEP_PRECISION))
@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
@pytest.mark.parametrize("clip_sample", [False, True])
@pytest.mark.parametrize("t", [999, 500, 1, 0])
def test_p_sample_step_matches_diffusers_step(dtype, prediction_type, clip_sample, t):
    gen = torch.Generator().manual_seed(6)
    x_t, model_output = (torch.randn(2, 3, 8, 8, generator=gen, dtype=dtype) for _ in range(2))
    # DDPMScheduler.step draws its variance noise as randn_tensor(shape, generator, dtype=output dtype),
    # which for one CPU generator is torch.randn on it; replay the same generator state for ours.
    state = torch.Generator().manual_seed(7).get_state()
    scheduler = _diffusers(prediction_type, clip_sample, float64=dtype == torch.float64)
    expected = scheduler.step(model_output, t, x_t, generator=torch.Generator().set_state(state)).prev_sample
    noise = torch.randn(x_t.shape, generator=torch.Generator().set_state(state), dtype=dtype)
    ours = p_sample_step(LINEAR, model_output, t, x_t, noise, prediction_type, clip_sample)
    tolerance = STEP_PRECISION[dtype]
    torch.testing.assert_close(ours, expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("t", [999, 300, 1])
def test_unclipped_epsilon_step_is_algorithm_2_line_4(t):
    gen = torch.Generator().manual_seed(8)
    x_t, eps, z = (torch.randn(5, 2, generator=gen, dtype=torch.float64) for _ in range(3))
    a, ab, var = LINEAR.alphas[t], LINEAR.alphas_cumprod[t], LINEAR.posterior_variance[t]
    # Ho et al. 2020, Alg. 2 line 4 with sigma_t^2 = beta_tilde_t
    expected = (x_t - (1 - a) / (1 - ab).sqrt() * eps) / a.sqrt() + var.sqrt() * z
    torch.testing.assert_close(p_sample_step(LINEAR, eps, t, x_t, z), expected)


def test_epsilon_step_at_zero_terminal_snr_fails_with_the_fix_in_the_message():
    schedule = make_schedule("linear", zero_terminal_snr=True)
    with pytest.raises(ValueError, match="v_prediction"):
        p_sample_step(schedule, torch.zeros(2, 2), 999, torch.zeros(2, 2), torch.zeros(2, 2))


def test_v_prediction_step_at_zero_terminal_snr_is_finite():
    schedule = make_schedule("linear", zero_terminal_snr=True)
    x_t, v = torch.randn(2, 2), torch.randn(2, 2)
    out = p_sample_step(schedule, v, 999, x_t, torch.randn(2, 2), "v_prediction")
    assert torch.isfinite(out).all()


def test_p_sample_step_adds_no_noise_at_the_last_step():
    x_t, eps = torch.randn(3, 2), torch.randn(3, 2)
    with_noise = p_sample_step(LINEAR, eps, 0, x_t, torch.randn(3, 2) * 100)
    torch.testing.assert_close(with_noise, p_sample_step(LINEAR, eps, 0, x_t, torch.zeros(3, 2)))


def test_p_sample_step_adds_noise_only_to_batch_items_with_t_above_zero():
    t, x_t, eps = torch.tensor([0, 5]), torch.randn(2, 2), torch.randn(2, 2)
    delta = p_sample_step(LINEAR, eps, t, x_t, torch.ones(2, 2)) - p_sample_step(
        LINEAR, eps, t, x_t, torch.zeros(2, 2)
    )
    assert delta[0].abs().max().item() == 0.0
    torch.testing.assert_close(delta[1], LINEAR.posterior_variance[5].sqrt().float().expand(2))


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
@pytest.mark.parametrize("clip_sample", [False, True])
def test_sample_loop_matches_a_diffusers_ddpm_loop_with_the_same_seed(prediction_type, clip_sample):
    def model(x, t):
        return 0.3 * x + 0.01 * t.to(x.dtype).reshape(-1, 1, 1, 1)

    shape = (2, 1, 4, 4)
    scheduler = _diffusers(prediction_type, clip_sample, float64=True, num_train_timesteps=50)
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    for t in scheduler.timesteps:
        x = scheduler.step(model(x, t.expand(shape[0])), t, x, generator=gen).prev_sample

    ours = sample(
        make_schedule("linear", 50),
        model,
        shape,
        torch.Generator().manual_seed(9),
        prediction_type,
        clip_sample,
        dtype=torch.float64,
    )
    torch.testing.assert_close(ours, x, rtol=1e-10, atol=1e-10)


# --- training (Algorithm 1) -----------------------------------------------------------------------


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_training_loss_is_zero_for_an_oracle_model(prediction_type):
    x0 = torch.randn(16, 2, generator=torch.Generator().manual_seed(10), dtype=torch.float64)

    def oracle(x_t, t):  # knows x0, so it can read off the exact target from x_t
        ab = LINEAR.alphas_cumprod[t].reshape(-1, 1)
        eps = (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()
        return eps if prediction_type == "epsilon" else velocity(LINEAR, x0, t, eps)

    loss = training_loss(LINEAR, oracle, x0, torch.Generator().manual_seed(11), prediction_type)
    assert loss.item() < 1e-20


def test_training_loss_rejects_an_unknown_prediction_type():
    with pytest.raises(ValueError, match="v_prediction"):
        training_loss(LINEAR, lambda x, t: x, torch.zeros(2, 2), prediction_type="sample")


class TinyDenoiser(nn.Module):
    """An MLP on (x, Fourier features of t / T): enough for two blobs in 2-D."""

    def __init__(self, num_timesteps: int, hidden: int = 64):
        super().__init__()
        self.num_timesteps = num_timesteps
        self.net = nn.Sequential(
            nn.Linear(2 + 8, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 2)
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        phase = (t.to(x.dtype) / self.num_timesteps)[:, None] * torch.arange(1, 5, dtype=x.dtype) * math.pi
        return self.net(torch.cat([x, phase.sin(), phase.cos()], dim=1))


CENTRES = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])


def _near_blob_fraction(x: torch.Tensor) -> float:
    return (torch.cdist(x, CENTRES).min(dim=1).values < 0.3).float().mean().item()


@pytest.fixture(scope="module")
def toy_models():
    """(untrained, trained) denoisers; the trained one gets 800 steps of Alg. 1 on two blobs (std 0.1)."""
    torch.manual_seed(0)
    untrained, trained = TinyDenoiser(1000), TinyDenoiser(1000)
    trained.load_state_dict(untrained.state_dict())
    gen = torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(trained.parameters(), lr=1e-2)
    lr_decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 800)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    for _ in range(800):
        blob = torch.randint(0, 2, (256,), generator=gen)
        batch = CENTRES[blob] + 0.1 * torch.randn(256, 2, generator=gen)
        train_step(LINEAR, trained, optimizer, batch, gen)
        lr_decay.step()
    torch.set_num_threads(threads)
    return untrained.eval(), trained.eval()


def test_trained_toy_model_samples_land_on_both_blobs(toy_models):
    x = sample(LINEAR, toy_models[1], (500, 2), torch.Generator().manual_seed(1))
    assert _near_blob_fraction(x) > 0.8
    assert 0.3 < (x[:, 0] < 0).float().mean().item() < 0.7


def test_untrained_toy_model_samples_miss_the_blobs(toy_models):
    # The same sampler with the initial weights: shows the assertion above measures learning.
    x = sample(LINEAR, toy_models[0], (500, 2), torch.Generator().manual_seed(1))
    assert _near_blob_fraction(x) < 0.3
