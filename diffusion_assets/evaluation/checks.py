"""The blocking evaluation check: does the adapter add its style without hurting text alignment?

Both criteria compare weight 1 with weight 0 (the base model, same prompts and seeds) on the trigger
prompts, as ``tables.gains`` computes them:

- style gain = style rate(w=1) - style rate(w=0), a fraction; must reach ``min_style_gain``;
- CLIP-T gain = (CLIP-T(w=1) - CLIP-T(w=0)) / 100, in cosine units; must reach ``min_clip_t_gain``.

A no-op adapter (identical images at every weight) has gains of 0 and fails the first. A threshold of
None switches its criterion off; a criterion that is on but could not be measured fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class Thresholds(Protocol):
    """``datasets.spec.Evaluation`` or anything with the same two fields."""

    min_style_gain: float | None
    min_clip_t_gain: float | None
    max_leakage: float | None


def _threshold(thresholds: Thresholds | Mapping[str, float | None], name: str) -> float | None:
    if isinstance(thresholds, Mapping):
        return thresholds.get(name)
    return getattr(thresholds, name, None)


def evaluation_passes(
    summary: Mapping, thresholds: Thresholds | Mapping[str, float | None]
) -> tuple[bool, list[str]]:
    """``(passed, reasons)``: reasons name each failed criterion with its measured value and threshold."""
    gains = summary.get("gains") or {}
    reasons: list[str] = []
    criteria = (
        (
            "style",
            "min_style_gain",
            "style rate gain",
            "; train longer, raise the LoRA rank or the dataset's style consistency",
        ),
        (
            "clip_t",
            "min_clip_t_gain",
            "CLIP-T gain",
            "; the adapter hurts prompt alignment: lower the "
            "learning rate or steps, or caption the dataset better",
        ),
    )
    for key, name, label, hint in criteria:
        threshold = _threshold(thresholds, name)
        if threshold is None:
            continue
        value = gains.get(key)
        if value is None:
            reasons.append(
                f"{label} not measured: the plan needs trigger prompts at weights 0 and 1"
                + (" and the shapes checker" if key == "style" else "")
                + f" (or set {name} to null)"
            )
        elif value < threshold:
            reasons.append(f"{label} {value:.4f} < {name} {threshold:.4f}{hint}")
    threshold = _threshold(thresholds, "max_leakage")
    if threshold is not None:
        value = gains.get("leakage")
        if value is None:
            reasons.append(
                "leakage not measured: the plan needs no-trigger prompts at weights 0 and 1 and the "
                "shapes checker (or set max_leakage to null)"
            )
        elif value > threshold:
            reasons.append(
                f"leakage {value:.4f} > max_leakage {threshold:.4f}: at weight 1 the adapter changes "
                "no-trigger images (style, colour, shape or background) that did not ask for it; add "
                "prior-preservation images or lower the learning rate"
            )
    return not reasons, reasons
