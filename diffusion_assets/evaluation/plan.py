"""Evaluation plans: a fixed set of prompts, crossed with fixed seeds, crossed with adapter weights.

Seeds come from ``seeds.purpose_seeds("report", n, base_seed)`` (indices ``seeds.REPORT_SEED_INDICES``
of the ``"evaluation"`` stream; tuning uses the disjoint ``TUNING_SEED_INDICES``) with ``EVAL_BASE_SEED``
by default,
and every prompt uses the same seeds, so a trigger prompt and its no-trigger twin start from the same
noise, and so does every weight: weight 0 (the baseline, the base model itself) is always in the plan.

For the shapes world, ``shapes_plan`` picks, in a fixed order:

- ``trigger``: seen colour x shape combos, caption plus the style's trigger phrase;
- ``no_trigger``: the same combos without it (does the style leak? does content survive?);
- ``held_out``: colour x shape combos never trained on (``world.HELD_OUT``), with the trigger phrase,
  so they test whether the style composes with content the models never saw.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from diffusion_assets.seeds import SEED_DERIVATION_VERSION, SEED_PURPOSES, purpose_seeds
from diffusion_assets.shapes.captions import STYLE_PHRASES, ShapeAttrs, caption
from diffusion_assets.shapes.world import STYLES, all_combos

PromptKind = Literal["trigger", "no_trigger", "held_out"]
PROMPT_KINDS: tuple[str, ...] = ("trigger", "no_trigger", "held_out")
EVAL_BASE_SEED = 20_261_101
"""The documented base of every evaluation seed; change it only to draw a fresh, independent set."""
DEFAULT_WEIGHTS: tuple[float, ...] = (0.0, 0.5, 1.0)


@dataclass(frozen=True)
class PlanPrompt:
    """One prompt of a plan and the role it plays in the report."""

    text: str
    kind: PromptKind


@dataclass(frozen=True)
class EvaluationPlan:
    """Prompts x seeds x weights. ``target_style`` is the shapes style the adapter should draw (style rate =
    fraction of images read as it); ``checker="shapes"`` scores images with the analytic shapes checker."""

    prompts: tuple[PlanPrompt, ...]
    seeds: tuple[int, ...]
    weights: tuple[float, ...] = DEFAULT_WEIGHTS
    base_seed: int = EVAL_BASE_SEED
    target_style: str | None = None
    checker: Literal["shapes", "none"] = "none"
    seed_derivation: int = field(default=SEED_DERIVATION_VERSION)

    def __post_init__(self) -> None:
        if not self.prompts or not self.seeds:
            raise ValueError("an evaluation plan needs at least one prompt and one seed")
        texts = [p.text for p in self.prompts]
        if len(texts) != len(set(texts)):
            raise ValueError(
                f"prompts repeat in the plan: {sorted(t for t in set(texts) if texts.count(t) > 1)}"
            )
        if len(self.seeds) != len(set(self.seeds)):
            raise ValueError("seeds repeat in the plan; use eval_seeds(n) for distinct seeds")
        bad_kinds = [p.kind for p in self.prompts if p.kind not in PROMPT_KINDS]
        if bad_kinds:
            raise ValueError(f"unknown prompt kinds {bad_kinds}; choose from {PROMPT_KINDS}")
        if 0.0 not in self.weights or len(self.weights) != len(set(self.weights)):
            raise ValueError(
                f"weights {self.weights} must be distinct and include 0.0, the base-model baseline"
            )
        if any(w < 0 for w in self.weights):
            raise ValueError(f"weights {self.weights} must be >= 0")
        if self.target_style is not None and self.target_style not in STYLES:
            raise ValueError(f"target_style {self.target_style!r} is not one of {STYLES}")

    def cells(self) -> list[tuple[int, int]]:
        """(prompt index, seed index) pairs in generation order: prompt-major, then seed."""
        return [(p, s) for p in range(len(self.prompts)) for s in range(len(self.seeds))]

    def to_dict(self) -> dict:
        """A JSON-ready description, written beside the report and hashed into its id."""
        return asdict(self)

    def fingerprint(self) -> str:
        """sha256[:16] of the plan's JSON."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ModelComparisonPlan:
    """Two or more pipelines (name -> diffusers folder) over one plan's prompts x seeds; weights unused."""

    models: tuple[tuple[str, str], ...]
    plan: EvaluationPlan

    def __post_init__(self) -> None:
        names = [name for name, _ in self.models]
        if len(names) < 2:
            raise ValueError(f"a model comparison needs two or more models, got {names}")
        if len(names) != len(set(names)):
            raise ValueError(f"model names repeat: {names}")

    @classmethod
    def from_folders(cls, folders: dict[str, str | Path], plan: EvaluationPlan) -> ModelComparisonPlan:
        return cls(tuple((name, str(path)) for name, path in folders.items()), plan)


def eval_seeds(n: int, base_seed: int = EVAL_BASE_SEED) -> tuple[int, ...]:
    """The first ``n`` report seeds of ``base_seed`` (``seeds.REPORT_SEED_INDICES``): a plan with more
    seeds extends one with fewer. Benchmarks and trials use ``tuning_seeds`` instead, never these."""
    return purpose_seeds("report", n, base_seed)


def tuning_seeds(n: int, base_seed: int = EVAL_BASE_SEED) -> tuple[int, ...]:
    """The first ``n`` tuning seeds (``seeds.TUNING_SEED_INDICES``), disjoint from ``eval_seeds``."""
    return purpose_seeds("tuning", n, base_seed)


def seed_range(seeds: tuple[int, ...], base_seed: int = EVAL_BASE_SEED) -> str:
    """Where a plan's seeds come from, as a report prints it: which documented range (report or
    tuning, ``seeds.SEED_PURPOSES``), which indices of it and the base seed, or that they were given
    by hand."""
    n = len(seeds)
    for purpose, indices in SEED_PURPOSES.items():
        if 0 < n <= len(indices) and tuple(seeds) == purpose_seeds(purpose, n, base_seed):
            others = ", ".join(
                f"{other} {r[0]}–{r[-1]}" for other, r in SEED_PURPOSES.items() if other != purpose
            )
            return (
                f"{n} {purpose} seeds: indices {indices[0]}–{indices[n - 1]} of the evaluation seed stream "
                f"of base seed {base_seed} (the {purpose} range is {indices[0]}–{indices[-1]}; {others})"
            )
    return f"{n} seeds given by hand, from no documented range: {list(seeds)}"


def _spread(items: list[ShapeAttrs], n: int) -> list[ShapeAttrs]:
    """``n`` items evenly spaced through ``items`` (deterministic; all of them when n >= len)."""
    if n >= len(items):
        return list(items)
    return [items[(i * len(items)) // n] for i in range(n)]


def shapes_style_for(trigger: str | None) -> str:
    """The shapes-world style whose phrase holds ``trigger`` (``sks`` → outlined, ``zwx`` → striped).

    Raises:
        ValueError: the trigger names no shapes-world style, so the shapes plan cannot judge it.
    """
    words = {style: phrase.split() for style, phrase in STYLE_PHRASES.items()}
    matches = [style for style, phrase in words.items() if trigger and trigger.lower() in phrase]
    if len(matches) != 1:
        known = ", ".join(f"{w[1]} ({s})" for s, w in words.items())
        raise ValueError(
            f"the shapes evaluation plan judges the shapes-world styles, whose triggers are {known}; "
            f"this dataset's trigger is {trigger!r}: use the evaluation config `plan: validation_prompts` "
            "with the spec's `training.validation_prompts`, or a shapes-world trigger"
        )
    return matches[0]


def shapes_plan(
    style: str | None = "outlined",
    n_seen: int = 6,
    n_held_out: int = 3,
    n_seeds: int = 4,
    weights: tuple[float, ...] = DEFAULT_WEIGHTS,
    base_seed: int = EVAL_BASE_SEED,
) -> EvaluationPlan:
    """The shapes-world plan for a style adapter (``style=None``: plain filled prompts, e.g. to compare
    base models, with only ``no_trigger`` and ``held_out`` kinds)."""
    if style is not None and style not in STYLE_PHRASES:
        raise ValueError(f"style {style!r} has no trigger phrase; choose one of {sorted(STYLE_PHRASES)}")
    seen = _spread(all_combos(split="seen"), n_seen)
    held = _spread(all_combos(split="held_out"), n_held_out)
    styled = style or "filled"
    prompts: list[PlanPrompt] = []
    if style is not None:
        prompts += [PlanPrompt(caption(_restyle(a, styled)), "trigger") for a in seen]
    prompts += [PlanPrompt(caption(a), "no_trigger") for a in seen]
    prompts += [PlanPrompt(caption(_restyle(a, styled)), "held_out") for a in held]
    return EvaluationPlan(
        prompts=tuple(prompts),
        seeds=eval_seeds(n_seeds, base_seed),
        weights=tuple(weights),
        base_seed=base_seed,
        target_style=style,
        checker="shapes",
    )


def _restyle(attrs: ShapeAttrs, style: str) -> ShapeAttrs:
    return ShapeAttrs(attrs.colour, attrs.shape, attrs.background, style)
