"""The analytic checker reads every attribute of the world's own images exactly."""

import numpy as np
import pytest
from PIL import Image

from diffusion_assets.shapes.captions import ShapeAttrs, caption
from diffusion_assets.shapes.checker import adherence, adherence_rates, aggregate, read_image
from diffusion_assets.shapes.world import (
    BACKGROUNDS,
    STYLES,
    Placement,
    all_combos,
    draw,
    make_dataset,
    to_pil,
)

SAMPLES_PER_COMBO = 20  # x 162 combos = 3240 images


@pytest.mark.parametrize("attrs", all_combos(STYLES), ids=lambda a: caption(a).replace(" ", "_"))
def test_checker_is_exact_on_every_combo_and_style(attrs):
    images, labels = make_dataset(11, SAMPLES_PER_COMBO, [attrs])
    readings = [read_image(image).attrs for image in images]
    assert readings == labels


@pytest.mark.parametrize("side", [14, 24])
@pytest.mark.parametrize("attrs", all_combos(STYLES)[::7])
def test_extreme_sizes(attrs, side):
    corner = 2 if side == 24 else 16
    assert read_image(draw(attrs, Placement(side, corner, 2))).attrs == attrs


def test_larger_images_are_resized():
    attrs = ShapeAttrs("magenta", "triangle", "white", "outlined")
    big = to_pil(draw(attrs, Placement(20, 6, 5))).resize((128, 128), Image.Resampling.NEAREST)
    assert read_image(big).attrs == attrs


def test_a_blank_image_has_no_shape():
    blank = np.full((32, 32, 3), BACKGROUNDS["gray"], dtype=np.uint8)
    reading = read_image(blank)
    assert reading.attrs is None and reading.shape_pixels == 0


def test_isolated_specks_do_not_change_the_reading():
    attrs = ShapeAttrs("yellow", "circle", "black")
    image = draw(attrs, Placement(16, 10, 10))
    image[3, 3] = (0, 0, 255)
    image[28, 4] = (0, 255, 0)
    assert read_image(image).attrs == attrs


def test_adherence_scores_each_attribute():
    image = draw(ShapeAttrs("red", "square", "white"), Placement(18, 6, 6))
    assert adherence(image, "a red square on a white background")["all"]
    hits = adherence(image, "a red circle on a black background")
    assert hits == {"colour": True, "shape": False, "background": False, "style": True, "all": False}


def test_adherence_rates_and_aggregate():
    combos = all_combos()[:4]
    images, labels = make_dataset(0, 4, combos)
    wrong = [ShapeAttrs(a.colour, a.shape, "white" if a.background != "white" else "black") for a in labels]
    rates = adherence_rates(list(images), labels[:2] + wrong[2:])
    assert rates["all"] == 0.5 and rates["colour"] == 1.0 and rates["n"] == 4
    assert aggregate([]) == {"n": 0}
