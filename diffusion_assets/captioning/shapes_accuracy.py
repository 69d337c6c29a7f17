"""Score a captioner on the shapes world: parse each caption and compare it to the image's exact labels."""

from __future__ import annotations

from collections.abc import Sequence

from diffusion_assets.captioning.captioner import Captioner
from diffusion_assets.shapes.captions import ShapeAttrs, caption, parse_caption
from diffusion_assets.shapes.world import STYLES, all_combos, sample, to_pil

ATTRIBUTES = ("colour", "shape", "background", "style")


def score_captions(captions: Sequence[str], truth: Sequence[ShapeAttrs]) -> dict[str, float]:
    """Per-attribute and exact (all four right) accuracy; a caption that does not parse counts as wrong."""
    hits = dict.fromkeys(ATTRIBUTES, 0)
    exact = unparsed = 0
    for text, attrs in zip(captions, truth, strict=True):
        try:
            read = parse_caption(text)
        except ValueError:
            unparsed += 1
            continue
        right = [getattr(read, a) == getattr(attrs, a) for a in ATTRIBUTES]
        for name, ok in zip(ATTRIBUTES, right, strict=True):
            hits[name] += ok
        exact += all(right)
    n = max(1, len(truth))
    return {"exact": exact / n, **{a: hits[a] / n for a in ATTRIBUTES}, "unparsed": unparsed / n}


def shapes_accuracy(
    captioner: Captioner, seed: int, per_combo: int = 2, indices: Sequence[int] | None = None
) -> dict[str, float]:
    """Caption images of the world drawn with ``seed`` and score them against their labels.

    By default: the first ``per_combo`` x 162 images, i.e. every (colour, shape, background, style)
    ``per_combo`` times; a seed not used in training gives unseen jitter. ``indices`` picks the images
    instead (e.g. the ones a training run saw).
    """
    combos = all_combos(STYLES)
    chosen = range(per_combo * len(combos)) if indices is None else indices
    samples = [sample(seed, i, combos) for i in chosen]
    captions = captioner.caption([to_pil(s.image) for s in samples], [caption(s.attrs) for s in samples])
    return score_captions(captions, [s.attrs for s in samples]) | {"n": float(len(samples))}
