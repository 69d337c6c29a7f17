"""DDPM from scratch: forward process, training loss and ancestral sampler (Ho et al. 2020).

Plain torch, no diffusers; ``tests/theory`` checks it against diffusers' ``DDPMScheduler``.
Timestep index ``t`` runs 0..T-1 (the paper's 1..T). Schedule coefficients are float64 and are
cast to the dtype of the sample they multiply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import nn

from diffusion_assets.theory.schedules import NoiseSchedule

PredictionType = Literal["epsilon", "v_prediction"]
Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _at(coeffs: torch.Tensor, t: int | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """coeffs[t] cast to ``like``'s dtype/device, shaped to broadcast over a batch (B, 1, 1, ...)."""
    c = coeffs.to(like.device)[torch.as_tensor(t, device=like.device)].to(like.dtype)
    return c.reshape(c.shape + (1,) * (like.ndim - c.ndim)) if c.ndim else c


def q_sample(
    schedule: NoiseSchedule, x0: torch.Tensor, t: int | torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """Draw x_t ~ q(x_t | x_0) in closed form; ``t`` is an int or a (B,) tensor of indices."""
    ab = _at(schedule.alphas_cumprod, t, x0)
    # Ho et al. 2020, Eq. 4: q(x_t|x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I), reparametrised
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def velocity(
    schedule: NoiseSchedule, x0: torch.Tensor, t: int | torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """The v-prediction target v = alpha_t eps - sigma_t x_0 (Salimans & Ho 2022, Sec. 4)."""
    ab = _at(schedule.alphas_cumprod, t, x0)
    # Salimans & Ho 2022, App. D: alpha_t = sqrt(alpha_bar_t), sigma_t = sqrt(1 - alpha_bar_t)
    return ab.sqrt() * noise - (1 - ab).sqrt() * x0


def predict_x0(
    schedule: NoiseSchedule,
    model_output: torch.Tensor,
    t: int | torch.Tensor,
    x_t: torch.Tensor,
    prediction_type: PredictionType = "epsilon",
) -> torch.Tensor:
    """Recover the model's estimate of x_0 from its epsilon or v output."""
    ab = _at(schedule.alphas_cumprod, t, x_t)
    if prediction_type == "epsilon":
        if bool((ab == 0).any()):
            raise ValueError(
                "epsilon-prediction cannot recover x_0 where alpha_bar_t = 0 (zero-terminal-SNR schedule at "
                "t = T-1); use prediction_type='v_prediction' (Lin et al. 2023, Sec. 3.2)."
            )
        # Ho et al. 2020, Eq. 15: x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_theta) / sqrt(alpha_bar_t)
        return (x_t - (1 - ab).sqrt() * model_output) / ab.sqrt()
    if prediction_type == "v_prediction":
        # Salimans & Ho 2022, App. D: x0_hat = alpha_t z_t - sigma_t v_theta
        return ab.sqrt() * x_t - (1 - ab).sqrt() * model_output
    raise ValueError(f"prediction_type must be 'epsilon' or 'v_prediction', got {prediction_type!r}.")


def q_posterior(
    schedule: NoiseSchedule, x0: torch.Tensor, x_t: torch.Tensor, t: int | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of the forward posterior q(x_{t-1} | x_t, x_0)."""
    ab, ab_prev = _at(schedule.alphas_cumprod, t, x_t), _at(schedule.alphas_cumprod_prev, t, x_t)
    beta = _at(schedule.betas, t, x_t)
    # Ho et al. 2020, Eq. 7:
    #   mu_tilde = sqrt(ab_{t-1}) b_t / (1 - ab_t) x_0 + sqrt(a_t) (1 - ab_{t-1}) / (1 - ab_t) x_t
    mean = (ab_prev.sqrt() * beta / (1 - ab)) * x0 + ((1 - beta).sqrt() * (1 - ab_prev) / (1 - ab)) * x_t
    # Ho et al. 2020, Eq. 7: beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t
    variance = _at(schedule.posterior_variance, t, x_t)
    return mean, variance


def p_sample_step(
    schedule: NoiseSchedule,
    model_output: torch.Tensor,
    t: int | torch.Tensor,
    x_t: torch.Tensor,
    noise: torch.Tensor,
    prediction_type: PredictionType = "epsilon",
    clip_sample: bool = False,
    clip_range: float = 1.0,
) -> torch.Tensor:
    """One ancestral step x_t -> x_{t-1} with sigma_t^2 = beta_tilde_t ("fixed_small"); no noise at t=0.

    Unclipped, this equals Ho et al. 2020, Alg. 2 line 4; with ``clip_sample`` the x_0 estimate is
    clamped to [-clip_range, clip_range] before forming the posterior mean, as Ho et al.'s code and
    diffusers do.
    """
    # 1. model output -> x0_hat (Ho et al. 2020, Eq. 15 or Salimans & Ho 2022, App. D)
    x0_hat = predict_x0(schedule, model_output, t, x_t, prediction_type)
    if clip_sample:
        x0_hat = x0_hat.clamp(-clip_range, clip_range)
    # 2. p_theta(x_{t-1}|x_t) = q(x_{t-1}|x_t, x0_hat): Ho et al. 2020, Eqs. 6-7 with Eq. 15 in, i.e. Eq. 11
    mean, variance = q_posterior(schedule, x0_hat, x_t, t)
    # 3. Ho et al. 2020, Alg. 2 line 3: z ~ N(0, I) if t > 1 else z = 0 (our t == 0 is the paper's t == 1)
    nonzero = _at((torch.arange(schedule.num_timesteps) > 0).to(torch.float64), t, x_t)
    # Ho et al. 2020, Alg. 2 line 4: x_{t-1} = mu_theta(x_t, t) + sigma_t z
    return mean + nonzero * variance.sqrt() * noise


@torch.no_grad()
def sample(
    schedule: NoiseSchedule,
    model: Model,
    shape: Sequence[int],
    generator: torch.Generator | None = None,
    prediction_type: PredictionType = "epsilon",
    clip_sample: bool = False,
    clip_range: float = 1.0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Run Ho et al. 2020, Alg. 2 from x_T ~ N(0, I) down to x_0 on the CPU.

    Noise is drawn from ``generator`` in the order diffusers' DDPM loop draws it (x_T first, then one
    draw per step with t > 0), so the same seed gives the same samples as ``DDPMScheduler``.
    """
    shape = tuple(shape)
    # Ho et al. 2020, Alg. 2 line 1: x_T ~ N(0, I)
    x = torch.randn(shape, generator=generator, dtype=dtype)
    for t in reversed(range(schedule.num_timesteps)):
        t_batch = torch.full((shape[0],), t, dtype=torch.long)
        model_output = model(x, t_batch)
        # Ho et al. 2020, Alg. 2 line 3
        z = torch.randn(shape, generator=generator, dtype=dtype) if t > 0 else torch.zeros(shape, dtype=dtype)
        x = p_sample_step(schedule, model_output, t, x, z, prediction_type, clip_sample, clip_range)
    return x


def training_loss(
    schedule: NoiseSchedule,
    model: Model,
    x0: torch.Tensor,
    generator: torch.Generator | None = None,
    prediction_type: PredictionType = "epsilon",
) -> torch.Tensor:
    """The simplified objective L_simple on a batch (Ho et al. 2020, Alg. 1 / Eq. 14)."""
    # Ho et al. 2020, Alg. 1 line 3: t ~ Uniform({1, ..., T})
    t = torch.randint(0, schedule.num_timesteps, (x0.shape[0],), generator=generator, device=x0.device)
    # Ho et al. 2020, Alg. 1 line 4: eps ~ N(0, I)
    noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
    x_t = q_sample(schedule, x0, t, noise)
    if prediction_type == "epsilon":
        target = noise
    elif prediction_type == "v_prediction":
        # Salimans & Ho 2022, Sec. 4: regress v = alpha_t eps - sigma_t x_0 instead of eps
        target = velocity(schedule, x0, t, noise)
    else:
        raise ValueError(f"prediction_type must be 'epsilon' or 'v_prediction', got {prediction_type!r}.")
    # Ho et al. 2020, Alg. 1 line 5: || eps - eps_theta(sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps, t) ||^2
    return torch.mean((target - model(x_t, t)) ** 2)


def train_step(
    schedule: NoiseSchedule,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x0: torch.Tensor,
    generator: torch.Generator | None = None,
    prediction_type: PredictionType = "epsilon",
) -> float:
    """One gradient step of Ho et al. 2020, Alg. 1 on batch ``x0``; returns the loss value."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    loss = training_loss(schedule, model, x0, generator, prediction_type)
    loss.backward()
    optimizer.step()
    return float(loss.detach())
