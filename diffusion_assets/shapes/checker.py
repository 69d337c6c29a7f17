"""An analytic checker that reads colour, shape, background and style back from any image of the world.

No learned model is involved, so its verdict is ground truth for generated images: it is exact on the
world's own images (see tests/shapes) and degrades gracefully on blurry or noisy ones.

The reading, step by step:
1. background = the palette background nearest to the median border pixel (the world keeps a margin);
2. every pixel is labelled by its nearest palette colour (the 6 shape colours + that background);
3. the shape is the largest 8-connected blob after a 1-pixel dilation (which bridges stripes),
   so isolated specks do not count;
4. colour = majority label over the shape's pixels;
5. shape = area of the convex hull / area of its bounding box: square 1, circle pi/4, triangle 1/2;
6. style = fraction of the hull's interior (eroded past the outline) that is shape-coloured:
   about 1 filled, 0 outlined, 1/2 striped.

What it cannot tell it says, with the reason, instead of defaulting (``Reading.unreadable``):
no shape (fewer than 3 pixels); a fragment (nothing left inside the hull after eroding the outline
width: a bar or a sliver has no interior to judge); no closed outline (a hollow or striped reading
whose shape, its 1-pixel gaps bridged, encloses no background: an arc, a corner, an L); an ambiguous
hull (a ratio between the bands that circles, squares and triangles occupy, e.g. a rounded square).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from diffusion_assets.shapes.captions import ShapeAttrs, parse_caption
from diffusion_assets.shapes.world import BACKGROUNDS, COLOURS, OUTLINE_WIDTH, SIZE

_COLOUR_NAMES = list(COLOURS)
_COLOUR_RGB = np.array(list(COLOURS.values()), dtype=np.float32)
_BG_NAMES = list(BACKGROUNDS)
_BG_RGB = np.array(list(BACKGROUNDS.values()), dtype=np.float32)

# Bands measured on 3,000 world renders (every shape and style, sides 14-24): hull/bbox ratio
# circles 0.810-0.844, squares 1.000, triangles 0.543-0.599; outlines enclose >= 36 pixels, stripes
# >= 14; the eroded interior >= 28 pixels. Generated images spread wider: the labelled set
# (tests/shapes/labelled/) and the 180 images of the demo's evaluation report of 2026-12-08 put
# shapes-tiny's circles at 0.741-0.866, squares at 0.824-1.000 (all but four >= 0.90) and triangles
# at 0.539-0.68. Between the bands the hull is ambiguous.
SQUARE_MIN_RATIO = 0.89
CIRCLE_MAX_RATIO = 0.86
CIRCLE_MIN_RATIO = 0.72
TRIANGLE_MAX_RATIO = 0.68
MIN_INTERIOR_PIXELS = 8
MIN_ENCLOSED_PIXELS = 3
BRIDGED_GAPS = (0, 1, 2, 3)
"""Dilations tried before looking for an enclosed hole: an outline with gaps up to ~6 px is closed."""
FILLED_MIN_INTERIOR = 0.75
OUTLINED_MAX_INTERIOR = 0.25


@dataclass(frozen=True)
class Reading:
    """What the checker saw. ``attrs`` is None when it cannot tell (``unreadable`` says why); the
    features explain the verdict."""

    attrs: ShapeAttrs | None
    hull_ratio: float
    interior_fill: float
    shape_pixels: int
    unreadable: str | None = None
    """Why ``attrs`` is None: no shape, a fragment, no closed outline, or an ambiguous hull."""
    enclosed_pixels: int = 0
    """Background pixels the shape (1-pixel gaps bridged) encloses: an outline's hole, or the gaps
    between stripes; 0 for an open arc."""


def _as_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """A (32, 32, 3) float array; larger or smaller images are resized with a box filter."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image.astype(np.uint8), mode="RGB")
    image = image.convert("RGB")
    if image.size != (SIZE, SIZE):
        image = image.resize((SIZE, SIZE), Image.Resampling.BOX)
    return np.asarray(image, dtype=np.float32)


def _dilate(mask: np.ndarray) -> np.ndarray:
    padded = np.pad(mask, 1)
    out = np.zeros_like(mask)
    for dy in range(3):
        for dx in range(3):
            out |= padded[dy : dy + mask.shape[0], dx : dx + mask.shape[1]]
    return out


def _grow(mask: np.ndarray, steps: int) -> np.ndarray:
    for _ in range(steps):
        mask = _dilate(mask)
    return mask


def _erode(mask: np.ndarray, steps: int) -> np.ndarray:
    return ~_grow(~mask, steps)


def _enclosed(shape: np.ndarray) -> int:
    """How many non-shape pixels cannot reach the image border through non-shape pixels (4-connected)."""
    free = ~shape
    reach = np.zeros_like(free)
    reach[0], reach[-1], reach[:, 0], reach[:, -1] = free[0], free[-1], free[:, 0], free[:, -1]
    while True:
        grown = reach.copy()
        grown[1:] |= reach[:-1]
        grown[:-1] |= reach[1:]
        grown[:, 1:] |= reach[:, :-1]
        grown[:, :-1] |= reach[:, 1:]
        grown &= free
        if (grown == reach).all():
            return int((free & ~reach).sum())
        reach = grown


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of ``mask``, by union-find over horizontal runs of pixels."""
    runs: list[tuple[int, int, int]] = []  # (row, first column, last column)
    for y, row in enumerate(mask):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))
        runs.extend((y, int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True))
    parent = list(range(len(runs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    previous: list[int] = []
    current: list[int] = []
    for i, (y, a, b) in enumerate(runs):
        if current and runs[current[0]][0] != y:
            previous, current = (current if runs[current[0]][0] == y - 1 else []), []
        for j in previous:  # 8-connectivity: runs touch when they overlap after widening by one pixel
            if runs[j][1] <= b + 1 and a <= runs[j][2] + 1:
                parent[root(i)] = root(j)
        current.append(i)
    sizes: dict[int, int] = {}
    for i, (_, a, b) in enumerate(runs):
        sizes[root(i)] = sizes.get(root(i), 0) + b - a + 1
    out = np.zeros_like(mask)
    if sizes:
        best = max(sizes, key=sizes.__getitem__)
        for i, (y, a, b) in enumerate(runs):
            if root(i) == best:
                out[y, a : b + 1] = True
    return out


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Andrew's monotone chain; ``points`` is (n, 2) as (x, y); returns hull vertices counter-clockwise."""
    pts = sorted(set(map(tuple, points.tolist())))
    if len(pts) < 3:
        return np.array(pts, dtype=np.float64)

    def half(seq: list[tuple[float, float]]) -> list[tuple[float, float]]:
        chain: list[tuple[float, float]] = []
        for p in seq:
            while len(chain) >= 2:
                (ax, ay), (bx, by) = chain[-2], chain[-1]
                if (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax) > 0:
                    break
                chain.pop()
            chain.append(p)
        return chain

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1], dtype=np.float64)


def _polygon_area(vertices: np.ndarray) -> float:
    if len(vertices) < 3:
        return 0.0
    x, y = vertices[:, 0], vertices[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def _inside_hull(vertices: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centre lies inside the convex polygon ``vertices`` (counter-clockwise)."""
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]] + 0.5
    inside = np.ones(shape, dtype=bool)
    for (ax, ay), (bx, by) in zip(vertices, np.roll(vertices, -1, axis=0), strict=True):
        inside &= (bx - ax) * (ys - ay) - (by - ay) * (xs - ax) >= 0
    return inside


def read_image(image: Image.Image | np.ndarray) -> Reading:
    """Read the attributes of one image (PIL or uint8 HxWx3 array, any size; resized to 32x32)."""
    pixels = _as_array(image)
    # 1. background from the border
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    median = np.median(border, axis=0)
    bg_index = int(np.argmin(((_BG_RGB - median) ** 2).sum(1)))
    # 2. nearest palette label per pixel; label len(COLOURS) means background
    palette = np.concatenate([_COLOUR_RGB, _BG_RGB[bg_index : bg_index + 1]])
    labels = np.argmin(((pixels[:, :, None, :] - palette) ** 2).sum(-1), axis=-1)
    foreground = labels < len(_COLOUR_NAMES)
    # 3. the shape: largest blob after bridging 1-pixel gaps, restricted to real shape pixels
    blob = _largest_component(_dilate(foreground)) & foreground
    count = int(blob.sum())
    if count < 3:
        return Reading(None, 0.0, 0.0, count, f"no shape: {count} shape-coloured pixels")
    # 4. colour by majority vote
    colour = _COLOUR_NAMES[int(np.bincount(labels[blob], minlength=len(_COLOUR_NAMES)).argmax())]
    # 5. shape from the convex hull of the blob's pixel squares; each row's end pixels suffice
    rows = np.flatnonzero(blob.any(1))
    lefts = blob[rows].argmax(1)
    rights = blob.shape[1] - 1 - blob[rows, ::-1].argmax(1)
    xs, ys = np.concatenate([lefts, rights + 1]), np.concatenate([rows, rows])
    corners = np.concatenate([np.stack([xs, ys + dy], 1) for dy in (0, 1)])
    hull = _convex_hull(corners)
    bbox_area = float((rights.max() + 1 - lefts.min()) * (rows.max() + 1 - rows.min()))
    ratio = _polygon_area(hull) / bbox_area
    # 6. style from the hull's interior, eroded past the outline; closure from the enclosed background
    interior = _erode(_inside_hull(hull, blob.shape), OUTLINE_WIDTH)
    enclosed = max(_enclosed(_grow(blob, gap)) for gap in BRIDGED_GAPS)
    if int(interior.sum()) < MIN_INTERIOR_PIXELS:
        reason = f"fragment: {int(interior.sum())} pixels inside the hull past the outline, too few to judge"
        return Reading(None, ratio, 0.0, count, reason, enclosed)
    interior_fill = float(foreground[interior].mean())
    if interior_fill < FILLED_MIN_INTERIOR and enclosed < MIN_ENCLOSED_PIXELS:
        reason = (
            f"no closed outline: a hollow shape enclosing {enclosed} background pixels (an arc, a corner)"
        )
        return Reading(None, ratio, interior_fill, count, reason, enclosed)
    if ratio >= SQUARE_MIN_RATIO:
        shape = "square"
    elif CIRCLE_MIN_RATIO <= ratio <= CIRCLE_MAX_RATIO:
        shape = "circle"
    elif ratio <= TRIANGLE_MAX_RATIO:
        shape = "triangle"
    else:
        between = ("a circle", "a square") if ratio > CIRCLE_MAX_RATIO else ("a triangle", "a circle")
        reason = f"ambiguous hull: it fills {ratio:.3f} of its box, between {between[0]} and {between[1]}"
        return Reading(None, ratio, interior_fill, count, reason, enclosed)
    if interior_fill >= FILLED_MIN_INTERIOR:
        style = "filled"
    elif interior_fill <= OUTLINED_MAX_INTERIOR:
        style = "outlined"
    else:
        style = "striped"
    return Reading(
        ShapeAttrs(colour, shape, _BG_NAMES[bg_index], style), ratio, interior_fill, count, None, enclosed
    )


def _expected(target: ShapeAttrs | str) -> ShapeAttrs:
    return parse_caption(target) if isinstance(target, str) else target


def adherence(image: Image.Image | np.ndarray, target: ShapeAttrs | str) -> dict[str, bool]:
    """Per-attribute agreement between an image and a caption (or attributes).

    Keys: ``colour``, ``shape``, ``background``, ``style``, and ``all`` = colour and shape and background
    (the headline prompt-adherence score; style is scored separately because base models are filled-only).
    """
    return agreement(read_image(image).attrs, target)


def agreement(seen: ShapeAttrs | None, target: ShapeAttrs | str) -> dict[str, bool]:
    """``adherence`` of attributes already read (``Reading.attrs``; None, unreadable, misses all)."""
    expected = _expected(target)
    if seen is None:
        return {"colour": False, "shape": False, "background": False, "style": False, "all": False}
    hits = {key: getattr(seen, key) == value for key, value in asdict(expected).items()}
    hits["all"] = hits["colour"] and hits["shape"] and hits["background"]
    return hits


def adherence_rates(
    images: Iterable[Image.Image | np.ndarray], targets: Iterable[ShapeAttrs | str]
) -> dict[str, float]:
    """Mean of ``adherence`` over pairs of images and targets, plus ``n``."""
    rows = [adherence(image, target) for image, target in zip(images, targets, strict=True)]
    return aggregate(rows)


def aggregate(rows: list[dict[str, bool]]) -> dict[str, float]:
    """Rates per key over rows from ``adherence``; an empty list gives ``{"n": 0}``."""
    if not rows:
        return {"n": 0}
    rates = {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}
    rates["n"] = len(rows)
    return rates
