"""The shapes world: 32x32 images of one shape, in one colour, on one background, with exact labels.

Every image is a pure function of ``(seed, index)``, so a dataset is reproducible from two integers and
every pixel has known ground truth. The world is small on purpose: 6 colours x 3 shapes x 3 backgrounds
= 54 captions (x 3 styles), enough to measure prompt adherence exactly and to keep a few colour x shape
combinations out of training to measure compositional generalisation separately.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from diffusion_assets.shapes.captions import ShapeAttrs

SIZE = 32
"""Side of every image in pixels."""

# Pure, saturated colours: every pair is at least 255 apart in RGB, so a nearest-palette read is exact
# on clean pixels and forgiving on generated ones.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "magenta": (255, 0, 255),
    "cyan": (0, 255, 255),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "gray": (128, 128, 128),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
STYLES: tuple[str, ...] = ("filled", "outlined", "striped")

# Colour x shape pairs never shown in training (on any background); each colour and each shape is still
# seen with the others, so generating these tests composition, not vocabulary.
HELD_OUT: frozenset[tuple[str, str]] = frozenset(
    {("red", "triangle"), ("green", "square"), ("blue", "circle")}
)

MIN_SIDE, MAX_SIDE = 14, 24
"""Range of the shape's bounding-box side in pixels (inclusive)."""
MARGIN = 2
"""Pixels kept free at every border, so the border always shows pure background."""
OUTLINE_WIDTH = 2
STRIPE_PERIOD = 4
"""Rows per stripe cycle inside a striped shape's outline: half shape colour, half background."""


@dataclass(frozen=True)
class Placement:
    """Where a shape sits: bounding-box side and top-left corner, in pixels."""

    side: int
    x: int
    y: int


@dataclass(frozen=True)
class Sample:
    """One image of the world with its labels."""

    index: int
    attrs: ShapeAttrs
    placement: Placement
    image: np.ndarray  # (32, 32, 3) uint8


def all_combos(styles: tuple[str, ...] = ("filled",), split: str = "all") -> list[ShapeAttrs]:
    """Every (colour, shape, background, style) combination in a fixed order.

    ``split`` is ``"all"``, ``"seen"`` (colour x shape pairs used in training) or ``"held_out"``.
    """
    if split not in ("all", "seen", "held_out"):
        raise ValueError(f"split must be 'all', 'seen' or 'held_out', got {split!r}")
    combos = []
    for style, colour, shape, background in itertools.product(styles, COLOURS, SHAPES, BACKGROUNDS):
        held = (colour, shape) in HELD_OUT
        if split == "all" or (split == "held_out") == held:
            combos.append(ShapeAttrs(colour, shape, background, style))
    return combos


def is_held_out(attrs: ShapeAttrs) -> bool:
    """True when the attributes' colour x shape pair is excluded from training."""
    return (attrs.colour, attrs.shape) in HELD_OUT


def draw(attrs: ShapeAttrs, placement: Placement) -> np.ndarray:
    """Render one image with PIL ImageDraw (no anti-aliasing, so every pixel is a palette colour)."""
    for name, table in (("colour", COLOURS), ("background", BACKGROUNDS)):
        if getattr(attrs, name) not in table:
            raise ValueError(f"unknown {name} {getattr(attrs, name)!r}; choose one of {sorted(table)}")
    if attrs.shape not in SHAPES or attrs.style not in STYLES:
        raise ValueError(f"unknown shape/style {attrs.shape!r}/{attrs.style!r}; see SHAPES and STYLES")
    # 1. draw the shape as a binary mask, filled or hollow
    mask = Image.new("L", (SIZE, SIZE), 0)
    pen = ImageDraw.Draw(mask)
    x0, y0 = placement.x, placement.y
    x1, y1 = x0 + placement.side - 1, y0 + placement.side - 1
    hollow = attrs.style != "filled"
    fill = None if hollow else 255
    outline = 255 if hollow else None
    width = OUTLINE_WIDTH if hollow else 1
    _draw_shape(pen, attrs.shape, (x0, y0, x1, y1), fill=fill, outline=outline, width=width)
    shape_mask = np.asarray(mask) > 0
    # 2. stripes: the outline, plus the filled shape's pixels on alternate bands of rows
    if attrs.style == "striped":
        filled = Image.new("L", (SIZE, SIZE), 0)
        _draw_shape(ImageDraw.Draw(filled), attrs.shape, (x0, y0, x1, y1), fill=255, outline=None, width=1)
        rows = (np.arange(SIZE) // (STRIPE_PERIOD // 2)) % 2 == 0
        shape_mask |= (np.asarray(filled) > 0) & rows[:, None]
    # 3. paint colour over background
    image = np.empty((SIZE, SIZE, 3), dtype=np.uint8)
    image[:] = BACKGROUNDS[attrs.background]
    image[shape_mask] = COLOURS[attrs.colour]
    return image


def _draw_shape(
    pen: ImageDraw.ImageDraw,
    shape: str,
    box: tuple[int, int, int, int],
    fill: int | None,
    outline: int | None,
    width: int,
) -> None:
    x0, y0, x1, y1 = box
    if shape == "circle":
        pen.ellipse(box, fill=fill, outline=outline, width=width)
    elif shape == "square":
        pen.rectangle(box, fill=fill, outline=outline, width=width)
    else:  # isosceles triangle, apex up, base on the bottom edge of the box
        pen.polygon([(x0, y1), (x1, y1), ((x0 + x1) / 2, y0)], fill=fill, outline=outline, width=width)


def random_placement(rng: np.random.Generator) -> Placement:
    """Jitter size and position uniformly, keeping a ``MARGIN`` of background at every border."""
    side = int(rng.integers(MIN_SIDE, MAX_SIDE + 1))
    high = SIZE - MARGIN - side
    return Placement(side, int(rng.integers(MARGIN, high + 1)), int(rng.integers(MARGIN, high + 1)))


def sample(seed: int, index: int, combos: list[ShapeAttrs]) -> Sample:
    """The ``index``-th image of the dataset ``(seed, combos)``: combos cycle in order, jitter is random.

    The jitter comes from ``np.random.default_rng([seed, index])``, so any image can be regenerated
    alone, without drawing the ones before it.
    """
    attrs = combos[index % len(combos)]
    placement = random_placement(np.random.default_rng([seed, index]))
    return Sample(index, attrs, placement, draw(attrs, placement))


def make_dataset(seed: int, n: int, combos: list[ShapeAttrs]) -> tuple[np.ndarray, list[ShapeAttrs]]:
    """``n`` images (uint8, shape (n, 32, 32, 3)) and their attributes, balanced over ``combos``."""
    samples = [sample(seed, i, combos) for i in range(n)]
    return np.stack([s.image for s in samples]), [s.attrs for s in samples]


def to_pil(image: np.ndarray) -> Image.Image:
    """A uint8 HxWx3 array as an RGB PIL image."""
    return Image.fromarray(image, mode="RGB")
