"""The shapes world is a pure function of (seed, index), balanced, and honest about its held-out split."""

import numpy as np
import pytest

from diffusion_assets.shapes.captions import ShapeAttrs
from diffusion_assets.shapes.world import (
    BACKGROUNDS,
    COLOURS,
    HELD_OUT,
    MARGIN,
    SHAPES,
    SIZE,
    STYLES,
    all_combos,
    draw,
    is_held_out,
    make_dataset,
    sample,
)


def test_same_seed_gives_identical_bytes():
    combos = all_combos(STYLES)
    a, attrs_a = make_dataset(7, 40, combos)
    b, attrs_b = make_dataset(7, 40, combos)
    assert a.tobytes() == b.tobytes() and attrs_a == attrs_b


def test_other_seed_moves_the_shapes_but_keeps_the_labels():
    combos = all_combos()
    a, attrs_a = make_dataset(0, 20, combos)
    b, attrs_b = make_dataset(1, 20, combos)
    assert attrs_a == attrs_b and a.tobytes() != b.tobytes()


def test_any_sample_regenerates_alone():
    combos = all_combos()
    images, _ = make_dataset(3, 30, combos)
    assert np.array_equal(sample(3, 29, combos).image, images[29])


@pytest.mark.parametrize(
    ("styles", "split", "count"),
    [(("filled",), "all", 54), (("filled",), "seen", 45), (("filled",), "held_out", 9), (STYLES, "all", 162)],
)
def test_combo_counts(styles, split, count):
    assert len(all_combos(styles, split=split)) == count


def test_held_out_pairs_are_absent_from_seen_but_their_words_are_not():
    seen = all_combos(split="seen")
    assert not any(is_held_out(a) for a in seen)
    assert len(HELD_OUT) == 3
    for colour, shape in HELD_OUT:
        assert any(a.colour == colour for a in seen) and any(a.shape == shape for a in seen)


def test_dataset_is_balanced_over_combos():
    combos = all_combos()
    _, attrs = make_dataset(0, 3 * len(combos), combos)
    assert all(attrs.count(c) == 3 for c in combos)


@pytest.mark.parametrize("style", STYLES)
def test_image_is_uint8_with_a_pure_background_margin(style):
    for index in range(30):
        s = sample(5, index, all_combos((style,)))
        image = s.image
        assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
        border = np.concatenate([image[:MARGIN].reshape(-1, 3), image[-MARGIN:].reshape(-1, 3)])
        assert (border == BACKGROUNDS[s.attrs.background]).all()
        colours = {tuple(p) for p in image.reshape(-1, 3)}
        assert colours == {BACKGROUNDS[s.attrs.background], COLOURS[s.attrs.colour]}


def test_palette_sizes():
    assert len(COLOURS) >= 6 and len(BACKGROUNDS) >= 3 and len(SHAPES) >= 3


@pytest.mark.parametrize(
    "bad", [ShapeAttrs("purple", "circle", "gray"), ShapeAttrs("red", "hexagon", "gray")]
)
def test_draw_rejects_unknown_words(bad):
    from diffusion_assets.shapes.world import Placement

    with pytest.raises(ValueError):
        draw(bad, Placement(16, 4, 4))
