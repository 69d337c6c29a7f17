"""Theory figures: files are written, and noising strips run from the image to noise."""

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_assets.theory.plots import (
    LABEL_HEIGHT,
    default_timesteps,
    noising_strip,
    plot_alphas_cumprod_and_snr,
    save_noising_strips,
)
from diffusion_assets.theory.schedules import make_schedule

COSINE = make_schedule("cosine")
SCHEDULES = {
    "linear": make_schedule("linear"),
    "cosine": COSINE,
    "linear_zero_snr": make_schedule("linear", zero_terminal_snr=True),
}


@pytest.fixture
def source() -> Image.Image:
    """A 32x24 RGB test card: a bright disc on a horizontal gradient."""
    yy, xx = np.mgrid[0:24, 0:32]
    red = xx * 8
    disc = ((xx - 16) ** 2 + (yy - 12) ** 2 < 49) * 255
    return Image.fromarray(np.stack([red, disc, 255 - red], axis=-1).astype(np.uint8))


def _frame(strip: Image.Image, index: int, width: int, height: int) -> np.ndarray:
    box = (index * width, 0, (index + 1) * width, height)
    return np.asarray(strip.crop(box), dtype=np.float64)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_plot_alphas_cumprod_and_snr_writes_a_png(tmp_path):
    path = plot_alphas_cumprod_and_snr(SCHEDULES, tmp_path / "figures" / "schedules.png")
    assert path == tmp_path / "figures" / "schedules.png"
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (1000, 400)
    assert [p.name for p in path.parent.iterdir()] == ["schedules.png"]


@pytest.mark.parametrize(("timesteps", "scale"), [([0, 500, 999], 1), ([0, 999], 3), ([10], 2)])
def test_noising_strip_has_one_frame_per_timestep_and_a_label_band(source, timesteps, scale):
    strip = noising_strip(source, COSINE, timesteps, torch.Generator().manual_seed(0), scale=scale)
    assert strip.size == (32 * scale * len(timesteps), 24 * scale + LABEL_HEIGHT)
    assert strip.mode == "RGB"


def test_noising_strip_first_frame_at_t0_is_the_source(source):
    strip = noising_strip(source, COSINE, [0, 999], torch.Generator().manual_seed(0))
    assert _correlation(_frame(strip, 0, 32, 24), np.asarray(source, dtype=np.float64)) > 0.99


def test_noising_strip_last_frame_at_t_max_is_noise_for_cosine(source):
    strip = noising_strip(source, COSINE, [0, 999], torch.Generator().manual_seed(0))
    assert abs(_correlation(_frame(strip, 1, 32, 24), np.asarray(source, dtype=np.float64))) < 0.1


def test_noising_strip_accepts_a_tensor_in_minus_one_to_one(source):
    tensor = torch.from_numpy(np.asarray(source, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)
    from_tensor = noising_strip(tensor, COSINE, [0, 500], torch.Generator().manual_seed(0))
    from_pil = noising_strip(source, COSINE, [0, 500], torch.Generator().manual_seed(0))
    assert np.array_equal(np.asarray(from_tensor), np.asarray(from_pil))


def test_noising_strip_rejects_a_batched_tensor():
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        noising_strip(torch.zeros(1, 3, 8, 8), COSINE, [0])


def test_noising_strip_is_reproducible_from_the_generator_seed(source):
    first, second = (noising_strip(source, COSINE, [300], torch.Generator().manual_seed(5)) for _ in range(2))
    assert np.array_equal(np.asarray(first), np.asarray(second))


@pytest.mark.parametrize(
    ("num_timesteps", "expected"), [(1000, [0, 143, 285, 428, 571, 714, 856, 999]), (8, list(range(8)))]
)
def test_default_timesteps_span_zero_to_t_max(num_timesteps, expected):
    assert default_timesteps(make_schedule("linear", num_timesteps)) == expected


def test_save_noising_strips_writes_one_png_per_schedule(tmp_path, source):
    paths = save_noising_strips(source, SCHEDULES, tmp_path, timesteps=[0, 999], seed=1)
    assert paths == {name: tmp_path / f"noising_{name}.png" for name in SCHEDULES}
    for path in paths.values():
        with Image.open(path) as strip:
            assert strip.size == (64, 24 + LABEL_HEIGHT)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.values())
