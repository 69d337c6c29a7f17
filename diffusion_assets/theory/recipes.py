"""The noise-schedule recipes the theory report trains side by side (no torch: the UI lists them).

Each value is ``(label, scheduler keys)``: the keys go into the DDPM scheduler config of one
shapes-world UNet training run (``theory.compare.compare_recipes``).
"""

from __future__ import annotations

_EPS = {"prediction_type": "epsilon", "zero_terminal_snr": False, "timestep_spacing": "leading"}
_LIN = {"prediction_type": "v_prediction", "zero_terminal_snr": True, "timestep_spacing": "trailing"}
RECIPES: dict[str, tuple[str, dict]] = {
    "linear-eps": ("linear βs 1e-4→0.02 (Ho et al. 2020), ε-prediction",
                   {"beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02, **_EPS}),
    "cosine-eps": ("cosine (Nichol & Dhariwal 2021), ε-prediction", {"beta_schedule": "squaredcos_cap_v2", **_EPS}),
    "scaled-linear-eps": ("scaled-linear (Stable Diffusion), ε-prediction", {"beta_schedule": "scaled_linear", **_EPS}),
    "scaled-linear-v": ("scaled-linear, v-prediction, no rescaling",
                        {"beta_schedule": "scaled_linear", "prediction_type": "v_prediction",
                         "zero_terminal_snr": False, "timestep_spacing": "leading"}),
    "scaled-linear-v-zsnr": ("scaled-linear, zero terminal SNR, v-prediction, trailing (shipped)",
                             {"beta_schedule": "scaled_linear", **_LIN}),
    "cosine-v-zsnr": ("cosine, zero terminal SNR, v-prediction, trailing", {"beta_schedule": "squaredcos_cap_v2", **_LIN}),
}  # fmt: skip
