"""Beta schedules for DDPM, written from the papers (no diffusers).

Every tensor here is float64: the cumulative product over 1000 steps loses about 5e-7 in float32,
which is visible when SNR is near zero. Cast at the point of use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

ScheduleName = Literal["linear", "cosine", "scaled_linear"]

_F64 = torch.float64


def linear_betas(num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """Betas rising linearly from ``beta_start`` to ``beta_end`` (Ho et al. 2020, Sec. 4)."""
    return torch.linspace(beta_start, beta_end, num_timesteps, dtype=_F64)


def scaled_linear_betas(
    num_timesteps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012
) -> torch.Tensor:
    """Stable Diffusion's schedule: linear in sqrt(beta), then squared (Rombach et al. 2022 configs)."""
    return torch.linspace(math.sqrt(beta_start), math.sqrt(beta_end), num_timesteps, dtype=_F64) ** 2


def cosine_betas(num_timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Cosine schedule of Nichol & Dhariwal 2021, betas clipped at ``max_beta`` to avoid a singular end."""
    t = torch.arange(num_timesteps + 1, dtype=_F64) / num_timesteps
    # Nichol & Dhariwal 2021, Eq. 17: f(t) = cos^2(((t/T + s) / (1 + s)) * pi/2), alpha_bar_t = f(t) / f(0)
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    # Nichol & Dhariwal 2021, Sec. 3.2: beta_t = 1 - alpha_bar_t / alpha_bar_{t-1}, clipped at 0.999
    return (1 - f[1:] / f[:-1]).clamp(max=max_beta)


def alphas_cumprod(betas: torch.Tensor) -> torch.Tensor:
    """alpha_bar_t = prod_{s<=t} (1 - beta_s) (Ho et al. 2020, notation above Eq. 4)."""
    return torch.cumprod(1 - betas.to(_F64), dim=0)


def snr(alphas_bar: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio SNR(t) = alpha_bar_t / (1 - alpha_bar_t) (Kingma et al. 2021, Eq. 1)."""
    return alphas_bar / (1 - alphas_bar)


def rescale_zero_terminal_snr(betas: torch.Tensor) -> torch.Tensor:
    """Shift and scale sqrt(alpha_bar) so SNR(T) = 0, keeping sqrt(alpha_bar_0) (Lin et al. 2023, Alg. 1)."""
    sqrt_ab = alphas_cumprod(betas).sqrt()
    sqrt_ab_0, sqrt_ab_T = sqrt_ab[0].clone(), sqrt_ab[-1].clone()
    # Lin et al. 2023, Alg. 1: shift so the last timestep is zero ...
    sqrt_ab = sqrt_ab - sqrt_ab_T
    # ... then scale so the first timestep is back to its old value.
    sqrt_ab = sqrt_ab * sqrt_ab_0 / (sqrt_ab_0 - sqrt_ab_T)
    ab = sqrt_ab**2
    # Undo the cumulative product: alpha_t = alpha_bar_t / alpha_bar_{t-1}; the last alpha is exactly 0.
    alphas = torch.cat([ab[:1], ab[1:] / ab[:-1]])
    return 1 - alphas


@dataclass(frozen=True)
class NoiseSchedule:
    """A discrete DDPM noise schedule and the quantities derived from it, all float64 of length T.

    Index ``t`` runs 0..T-1 and stands for the paper's step t+1.
    """

    betas: torch.Tensor
    alphas: torch.Tensor
    alphas_cumprod: torch.Tensor
    alphas_cumprod_prev: torch.Tensor
    posterior_variance: torch.Tensor

    @classmethod
    def from_betas(cls, betas: torch.Tensor) -> NoiseSchedule:
        """Derive alphas, alpha_bar, alpha_bar_{t-1} and the posterior variance from betas."""
        betas = betas.to(_F64)
        ab = alphas_cumprod(betas)
        # alpha_bar_0 of the paper (before any noise) is 1.
        ab_prev = torch.cat([torch.ones(1, dtype=_F64), ab[:-1]])
        # Ho et al. 2020, Eq. 7: beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t
        posterior_variance = (1 - ab_prev) / (1 - ab) * betas
        return cls(
            betas=betas,
            alphas=1 - betas,
            alphas_cumprod=ab,
            alphas_cumprod_prev=ab_prev,
            posterior_variance=posterior_variance,
        )

    @property
    def num_timesteps(self) -> int:
        """T, the number of diffusion steps."""
        return int(self.betas.shape[0])

    @property
    def snr(self) -> torch.Tensor:
        """SNR(t) = alpha_bar_t / (1 - alpha_bar_t); 0 at the end of a zero-terminal-SNR schedule."""
        return snr(self.alphas_cumprod)

    @property
    def log_snr(self) -> torch.Tensor:
        """Natural log of SNR(t) (lambda in Kingma et al. 2021); -inf where SNR is 0."""
        return torch.log(self.snr)


def make_schedule(
    name: ScheduleName, num_timesteps: int = 1000, zero_terminal_snr: bool = False
) -> NoiseSchedule:
    """Build a named schedule with its paper defaults, optionally rescaled to zero terminal SNR."""
    builders = {"linear": linear_betas, "cosine": cosine_betas, "scaled_linear": scaled_linear_betas}
    if name not in builders:
        raise ValueError(f"Unknown schedule {name!r}; choose one of {sorted(builders)}.")
    betas = builders[name](num_timesteps)
    if zero_terminal_snr:
        betas = rescale_zero_terminal_snr(betas)
    return NoiseSchedule.from_betas(betas)
